"""Check every exchange a fake-Alpaca test made against the spec (when the spec is at hand)."""

from __future__ import annotations

from tests.adapters.spec_check import load_spec, spec_path, validate_exchange
from tests.fakes.alpaca import FakeAlpaca


def spec_problems(fake: FakeAlpaca) -> dict[str, list[str]]:
    path = spec_path()
    if path is None:  # test_spec_conformance.py fails or skips on its absence
        return {}
    spec = load_spec(path)
    return {
        f"#{index} {e.method} {e.path} {e.status}": errors
        for index, e in enumerate(fake.requests)
        if e.status is not None
        and (errors := validate_exchange(
            spec, e.method, e.path, e.query, e.json, e.status, e.response_json))
    }

"""Every Alpaca answer is bounded (issue 24): a total deadline, not a per-read timeout (an answer
dripping a byte at a time ends at ALPACA_TIMEOUT); a size cap; a compressed answer inflated
only up to that cap, in a fresh process whose peak memory is measured; a chained
Content-Encoding refused. A normal gzip answer still reads."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
import zlib
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import Cli, broker_env
from tests.fakes.alpaca import FakeAlpaca
from tradectl.broker.alpaca import AlpacaBroker
from tradectl.errors import BrokerTimeout
from tradectl.net import MAX_ANSWER_BYTES

REPO = Path(__file__).resolve().parents[2]
BOMB_INFLATED = 256 * 1024 * 1024  # what the bomb below inflates to


def broker(fake: FakeAlpaca, timeout: float = 2) -> AlpacaBroker:
    return AlpacaBroker(api_key=fake.api_key, secret_key=fake.secret_key, base_url=fake.url,
                        data_url=fake.url, timeout=timeout, sleep=lambda _s: None)


def gzip_bomb(size: int) -> bytes:
    """A gzip member of `size` zero bytes (about size / 220 bytes at level 1, the quick one)."""
    squeeze = zlib.compressobj(1, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    parts = [squeeze.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, squeeze.flush()])


def test_an_answer_dripping_a_byte_at_a_time_ends_at_the_timeout(fake: FakeAlpaca) -> None:
    fake.inject("GET", r"^/v2/account$", drip=0.2, times=None)
    started = time.monotonic()
    with pytest.raises(BrokerTimeout) as caught:
        broker(fake, timeout=1.5).account()
    elapsed = time.monotonic() - started
    assert "did not answer in time" in caught.value.message
    assert elapsed < 3.0  # a per-read timeout never fires on a drip: ~60 s for this answer
    assert fake.count("GET", "/v2/account") == 1  # the bound is spent: not tried again


@pytest.mark.postgres
def test_status_and_halt_end_within_the_bound_while_every_answer_drips(
    cli: Cli, fake: FakeAlpaca,
) -> None:
    cli.env.update(broker_env(fake))  # ALPACA_TIMEOUT=2
    fake.inject(None, r"^/v2/", drip=0.5, times=None)
    started = time.monotonic()
    status = cli("status", "--json")
    status_took = time.monotonic() - started
    started = time.monotonic()
    halt = cli("halt", "--reason", "drip", "--json")
    halt_took = time.monotonic() - started

    assert "in time" in json.loads(status.stdout)["broker"]["error"]
    assert halt.code == 4, halt.stdout
    # 40 s and 45 s before the bound (issue 24); each request now ends at ALPACA_TIMEOUT
    assert (status_took, halt_took) < (6, 15), (status_took, halt_took)


def test_a_gzip_answer_is_inflated(fake: FakeAlpaca) -> None:
    account = json.dumps(fake.account()).encode()
    fake.inject("GET", r"^/v2/account$", status=200, raw=gzip.compress(account),
                headers={"Content-Encoding": "gzip"})
    assert broker(fake).account().equity == Decimal(fake.account()["equity"])


def test_a_chained_content_encoding_is_refused(fake: FakeAlpaca) -> None:
    account = json.dumps(fake.account()).encode()
    fake.inject("GET", r"^/v2/account$", status=200, raw=gzip.compress(gzip.compress(account)),
                headers={"Content-Encoding": "gzip, gzip"}, times=None)
    with pytest.raises(BrokerTimeout) as caught:
        broker(fake).account()
    assert "encoded 2 times over" in caught.value.message


def test_an_answer_over_the_cap_is_refused(fake: FakeAlpaca) -> None:
    fake.inject("GET", r"^/v2/account$", status=200, raw=b" " * (MAX_ANSWER_BYTES + 1),
                times=None)
    with pytest.raises(BrokerTimeout) as caught:
        broker(fake).account()
    assert "larger than" in caught.value.message


BOMB_READER = """
import json, resource, sys
from tradectl.broker.alpaca import AlpacaBroker
from tradectl.errors import BrokerError
url, key, secret = sys.argv[1:4]
broker = AlpacaBroker(api_key=key, secret_key=secret, base_url=url, data_url=url, timeout=20)
try:
    broker.account()
    error = None
except BrokerError as err:
    error = err.message
# The process's own peak (VmHWM). getrusage's ru_maxrss also carries the peak of the process
# that forked it (Linux keeps it across exec): a pytest worker's 200 MB would show here.
try:
    status = open("/proc/self/status").read()
    peak = int(status.split("VmHWM:")[1].split()[0])
except (OSError, IndexError):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"error": error, "max_rss_kb": peak}))
"""


def test_a_gzip_bomb_is_refused_without_inflating_it(fake: FakeAlpaca) -> None:
    bomb = gzip_bomb(BOMB_INFLATED)
    assert len(bomb) < 2 * 1024 * 1024  # under 2 MB on the wire, and under the cap
    fake.inject("GET", r"^/v2/account$", status=200, raw=bomb,
                headers={"Content-Encoding": "gzip"}, times=None)
    result = subprocess.run([sys.executable, "-c", BOMB_READER, fake.url, fake.api_key,
                             fake.secret_key], capture_output=True, text=True, timeout=60,
                            check=True, cwd=REPO)
    outcome = json.loads(result.stdout)
    assert "larger than" in (outcome["error"] or ""), outcome
    assert outcome["max_rss_kb"] < 150 * 1024, outcome  # inflated whole: 256 MB or more


HELP_THEN_MODULES = """
import json, runpy, sys
sys.argv = ["tradectl", "--help"]
try:
    runpy.run_module("tradectl", run_name="__main__")
except SystemExit:
    pass
import tradectl.broker.alpaca, tradectl.notify.webhook  # the adapters' modules, not yet used
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_the_http_client_is_imported_only_when_a_request_is_made(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", HELP_THEN_MODULES], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=True,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    imported = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "tradectl" in imported
    assert imported & {"httpx", "httpcore", "h11", "certifi", "requests", "urllib3"} == set()

"""Each exit code, pinned through the installed `tradectl` executable (a real process, as a
script sees it), with and without --json: with it, every outcome is exactly one JSON object."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import broker_env, closed_port, live_env, tradectl_command
from tests.fakes.alpaca import FakeAlpaca
from tests.support.tls import LocalCertificate
from tradectl.config import DEFAULTS
from tradectl.errors import ExitCode

OPEN = ("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160")


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'tradectl.db'}",
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.update(settings)
    return env


def run(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tradectl_command(), *args], env=environment(tmp_path, **settings),
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


def one_object(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.stdout.count("\n") == 1, result.stdout
    document = json.loads(result.stdout)
    assert document.get("exit_code", 0) == result.returncode
    return document


@pytest.mark.parametrize("as_json", [False, True])
def test_exit_codes_0_2_3_4_5(tmp_path: Path, fake: FakeAlpaca, as_json: bool) -> None:
    flag = ("--json",) if as_json else ()
    broker = broker_env(fake)
    cases = [
        (ExitCode.OK, ("resume", "--reason", "nothing to resume", *flag), {}),
        (ExitCode.BAD_INPUT, ("open", "AAPL", "--qty", "0", "--stop", "145", "--target", "160",
                              *flag), {}),
        (ExitCode.REFUSED, (*OPEN, "--qty", "1", *flag), {"MAX_RISK_PER_TRADE": "1"}),
        (ExitCode.BROKER, (*OPEN, *flag),
         {**broker, "ALPACA_BASE_URL": f"http://127.0.0.1:{closed_port()}",
          "ALPACA_DATA_URL": f"http://127.0.0.1:{closed_port()}"}),
        (ExitCode.DATABASE, ("status", *flag),
         {"DATABASE_URL": f"postgresql://nobody@127.0.0.1:{closed_port()}/tradectl"}),
    ]
    for code, args, settings in cases:
        result = run(tmp_path, *args, **settings)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        if code:
            assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        if as_json:
            document = one_object(result)
            assert ("error" in document) == bool(code)
        elif code:
            assert result.stdout == ""
        if code == ExitCode.REFUSED and as_json:
            assert document["rule"] == "max_risk_per_trade" and document["figures"]["risk"]


@pytest.mark.parametrize("as_json", [False, True])
def test_exit_code_1_is_a_declined_live_confirmation(
        tmp_path: Path, tls_fake: FakeAlpaca, local_certificate: LocalCertificate,
        as_json: bool) -> None:
    """Live mode asks on the terminal; answering no sends nothing and exits 1."""
    fake = tls_fake
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [*tradectl_command(), *OPEN, *(("--json",) if as_json else ())],
        env=environment(tmp_path, **live_env(fake, local_certificate)), cwd=tmp_path,
        stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.close(slave)
    deadline = time.monotonic() + 30
    while fake.count("GET", "/v2/account") == 0:  # its reads are done: the question is next
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    time.sleep(0.3)
    os.write(master, b"n\n")
    out, err = process.communicate(timeout=30)
    os.close(master)
    assert process.returncode == ExitCode.ABORTED, (out, err)
    assert "not confirmed" in err and fake.count("POST") == 0
    if as_json:
        assert json.loads(out)["exit_code"] == ExitCode.ABORTED


@pytest.mark.parametrize("as_json", [False, True])
def test_exit_code_130_is_an_interrupted_command(tmp_path: Path, fake: FakeAlpaca,
                                                 as_json: bool) -> None:
    fake.inject("POST", r"^/v2/orders$", hang=True)
    process = subprocess.Popen(
        [*tradectl_command(), *OPEN, *(("--json",) if as_json else ())],
        env=environment(tmp_path, **{**broker_env(fake), "ALPACA_TIMEOUT": "30"}),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not any(r.status is None for r in fake.requests):  # the order is on the wire
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == ExitCode.INTERRUPTED, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    if as_json:
        assert json.loads(out) == {"error": "interrupted", "exit_code": 130, "hint": None}


def test_every_code_has_a_row_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} |" in readme, code


def test_bare_tradectl_prints_its_help_and_no_error(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == ExitCode.OK
    assert "Usage: tradectl" in result.stdout and result.stderr == ""

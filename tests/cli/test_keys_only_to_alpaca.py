"""Keys only to Alpaca, end to end: a planted `.env` cannot redirect the keys (nothing reaches
the host it names), a mode that contradicts the endpoint is refused before any request, and
`check-alpaca` says where orders go and why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.test_hostile_input import assert_one_error_line
from tests.conftest import Cli, broker_env
from tests.fakes.alpaca import FakeAlpaca

OPEN = ("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160")


@pytest.fixture
def planted() -> Iterator[FakeAlpaca]:
    """Whoever planted the .env: a server that would take the keys."""
    server = FakeAlpaca().start()
    server.set_price("AAPL", "150")
    yield server
    server.stop()


@pytest.mark.parametrize("setting", ["ALPACA_BASE_URL", "ALPACA_DATA_URL"])
def test_a_planted_env_cannot_redirect_keys_from_the_environment(
        trader: Cli, fake: FakeAlpaca, planted: FakeAlpaca, setting: str) -> None:
    trader.env.pop(setting)
    dotenv = trader.cwd / ".env"
    dotenv.write_text(f"{setting}={planted.url}\nDAILY_LOSS_LIMIT=999999\n")
    named = ", ".join(sorted(["DAILY_LOSS_LIMIT", setting]))
    for command in (OPEN, ("status", "--json"), ("halt", "--reason", "x")):
        result = trader(*command)
        assert result.code == 2, (command, result.output)
        line = assert_one_error_line(result)
        assert line.startswith(f"error: {dotenv} sets {named}, but ALPACA_API_KEY comes from "
                               "outside it")
    checked = trader("check-alpaca", "--json")
    assert checked.code == 2 and f"{dotenv} sets {named}" in checked.stdout
    assert planted.requests == [] and fake.requests == []


def test_keys_from_tradectls_own_env_are_guarded_too(cli: Cli, fake: FakeAlpaca,
                                                     planted: FakeAlpaca) -> None:
    own = cli.cwd / "config" / "tradectl" / ".env"
    own.parent.mkdir(parents=True)
    own.write_text("".join(f"{k}={v}\n" for k, v in broker_env(fake).items()))
    assert cli("status", "--json").code == 0  # the keys from tradectl's own .env work
    assert fake.count("GET", "/v2/account") > 0
    (cli.cwd / ".env").write_text(f"ALERT_WEBHOOK_URL={planted.url}/hook\n")
    result = cli("status", "--json")
    assert result.code == 2 and "sets ALERT_WEBHOOK_URL, but ALPACA_API_KEY" in result.stderr
    assert planted.requests == []


def test_an_env_with_keys_of_its_own_is_the_users_set_up(cli: Cli, fake: FakeAlpaca) -> None:
    """The first-use flow: `cp .env.example .env`, keys and settings in it."""
    (cli.cwd / ".env").write_text("".join(f"{k}={v}\n" for k, v in broker_env(fake).items())
                                  + "DAILY_LOSS_LIMIT=1500\n")
    result = cli(*OPEN, "--json")
    assert result.code == 0, result.output
    assert fake.count("POST", "/v2/orders") == 1


def test_a_mode_that_contradicts_the_endpoint_is_refused_before_any_request(cli: Cli) -> None:
    env = {"ALPACA_API_KEY": "PKX" * 6, "ALPACA_SECRET_KEY": "s" * 40,
           "TRADING_MODE": "paper", "ALPACA_BASE_URL": "https://api.alpaca.markets"}
    for command in (OPEN, (*OPEN, "--yes"), ("halt", "--reason", "x"), ("status",)):
        result = cli(*command, env=env)
        assert result.code == 2, (command, result.output)
        assert assert_one_error_line(result).startswith(
            "error: TRADING_MODE=paper but ALPACA_BASE_URL https://api.alpaca.markets is "
            "Alpaca's live endpoint")


def test_alpacas_live_host_asks_for_the_live_confirmation_without_the_label(cli: Cli) -> None:
    env = {"ALPACA_API_KEY": "AKX" * 6, "ALPACA_SECRET_KEY": "s" * 40,
           "ALPACA_BASE_URL": "https://api.alpaca.markets"}
    result = cli(*OPEN, env=env)  # no terminal to ask at: refused before any request
    assert result.code == 2
    assert "live mode (real money, orders to api.alpaca.markets): pass --yes" in result.stderr


def test_check_alpaca_shows_where_orders_go(trader: Cli, fake: FakeAlpaca) -> None:
    port = fake.url.rsplit(":", 1)[1]
    text = trader("check-alpaca").stdout
    assert ("orders go to 127.0.0.1 (paper; this machine (a local stand-in), paper mode), "
            "market data from 127.0.0.1") in text
    configuration = trader("check-alpaca", "--json").json()["configuration"]
    assert configuration["orders_host"] == "127.0.0.1"
    assert configuration["orders_trusted"] == "this machine (a local stand-in), paper mode"
    assert configuration["base_url"] == f"http://127.0.0.1:{port}"


def test_check_alpaca_names_a_trusted_host(live_trader: Cli) -> None:
    configuration = live_trader("check-alpaca", "--json").json()["configuration"]
    assert configuration["trading_mode"] == "live"
    assert configuration["orders_trusted"] == "named in ALPACA_TRUSTED_HOSTS, https"

"""Telegram alerts end to end: the real commands, the fake Alpaca, an SMTP sink and a local server
playing the Telegram Bot API, through the outbox, on both databases."""

from __future__ import annotations

import pytest

from tests.conftest import Cli, SmtpSink, closed_port, rows
from tests.fakes.alpaca import FakeAlpaca
from tests.support.telegram import BOT_TOKEN, CHAT_ID, BotApi
from tradectl.db.models import Alert

OPEN_AAPL = ("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160")
SECRET = BOT_TOKEN.partition(":")[2]


def body_text(message: object) -> str:
    from email.message import Message

    assert isinstance(message, Message)
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode().replace("\r\n", "\n")  # SMTP lines end in CRLF


@pytest.mark.usefixtures("fake")
def test_a_stop_reaches_telegram_with_what_the_email_says_and_a_refusal_is_retried(
    trader: Cli, smtp: SmtpSink, bot_api: BotApi,
) -> None:
    trader.env.update({**smtp.env(), **bot_api.env()})
    assert trader(*OPEN_AAPL).code == 0
    bot_api.refuse(400, "Bad Request: chat not found")
    halt = trader("halt", "--reason", "news", "--json")
    assert halt.code == 0, halt.output  # a failed alert never fails the stop
    assert halt.json()["alert"] == ("e-mail sent; telegram queued, not sent (HTTP 400: Bad "
                                    "Request: chat not found); retried by watch, halt or resume")
    assert len(smtp.messages) == 1 and bot_api.messages == []
    url = trader.env["DATABASE_URL"]
    assert [(a.channel, a.status, a.last_error) for a in rows(url, Alert)] == [
        ("e-mail", "sent", None),
        ("telegram", "pending", "HTTP 400: Bad Request: chat not found")]
    tick = trader("watch", "--once", "--json")
    assert tick.code == 0, tick.output
    (message,) = bot_api.messages
    mail = smtp.messages[0]
    assert message["chat_id"] == CHAT_ID
    assert message["text"] == f"{mail['Subject']}\n\n{body_text(mail).strip()}"
    assert "AAPL" in message["text"] and "news" in message["text"]
    assert len(smtp.messages) == 1  # the e-mail was not sent again
    assert [(a.channel, a.status, a.attempts) for a in rows(url, Alert)] == [
        ("e-mail", "sent", 1), ("telegram", "sent", 2)]
    (stored,) = [a for a in rows(url, Alert) if a.channel == "telegram"]
    assert stored.recipients == f"chat {CHAT_ID} via http://127.0.0.1:{bot_api.port}/…"


def test_a_rate_limit_is_recorded_and_a_slow_api_never_holds_the_stop(
    trader: Cli, fake: FakeAlpaca, bot_api: BotApi,
) -> None:
    trader.env.update({**bot_api.env(), "ALERT_TELEGRAM_TIMEOUT": "0.5"})
    assert trader(*OPEN_AAPL).code == 0
    bot_api.rate_limit(3)
    halt = trader("halt", "--reason", "news", "--json")
    assert halt.code == 0 and fake.positions_list() == []
    assert halt.json()["alert"] == (
        "queued, not sent (telegram: HTTP 429: Too Many Requests: retry after 3; Telegram asks "
        "to wait 3s); retried by watch, halt or resume")
    bot_api.slow(5.0)
    tick = trader("watch", "--once", "--json")
    assert tick.code == 0, tick.output
    (alert,) = rows(trader.env["DATABASE_URL"], Alert)
    assert alert.status == "pending"
    assert alert.last_error == "no answer within 0.5s (ALERT_TELEGRAM_TIMEOUT)"
    bot_api.slow(0)
    assert trader("resume", "--reason", "reviewed").code == 0  # resume delivers the outbox
    assert [m["text"].split("\n")[0] for m in bot_api.messages] == [alert.subject]


def test_alert_test_sends_through_telegram_and_check_alpaca_names_it(
    cli: Cli, bot_api: BotApi,
) -> None:
    cli.env.update(bot_api.env())
    result = cli("alert", "test")
    assert result.code == 0, result.output
    where = f"chat {CHAT_ID} via http://127.0.0.1:{bot_api.port}/…"
    assert result.stdout.splitlines() == [f"telegram {where}  ✓ sent",
                                          "every channel took the test alert"]
    assert bot_api.messages[0]["text"].startswith("tradectl test alert: alerts reach you here")
    down = cli("alert", "test", "--json",
               env={"ALERT_TELEGRAM_API_URL": f"http://127.0.0.1:{closed_port()}"})
    assert down.code == 4
    assert down.json()["channels"][0]["error"] == "could not connect (refused, or unknown host)"
    checked = cli("check-alpaca", "--json")
    (alerts,) = [c for c in checked.json()["checks"] if c["name"] == "alerts"]
    assert f"telegram chat {CHAT_ID} via http://127.0.0.1:{bot_api.port}/…" in alerts["detail"]
    assert rows(cli.env["DATABASE_URL"], Alert) == []  # a test is not queued
    assert all(SECRET not in r.output for r in (result, down, checked))


@pytest.mark.parametrize("env, named", [
    ({"ALERT_TELEGRAM_BOT_TOKEN": BOT_TOKEN}, "ALERT_TELEGRAM_CHAT_ID"),
    ({"ALERT_TELEGRAM_CHAT_ID": CHAT_ID}, "ALERT_TELEGRAM_BOT_TOKEN"),
    ({"ALERT_TELEGRAM_BOT_TOKEN": f"x{SECRET}", "ALERT_TELEGRAM_CHAT_ID": CHAT_ID},
     "ALERT_TELEGRAM_BOT_TOKEN"),
    ({"ALERT_TELEGRAM_BOT_TOKEN": BOT_TOKEN, "ALERT_TELEGRAM_CHAT_ID": CHAT_ID,
      "ALERT_TELEGRAM_API_URL": f"api.telegram.org/{SECRET}"}, "ALERT_TELEGRAM_API_URL"),
])
def test_half_or_bad_telegram_settings_stop_every_command_naming_the_setting(
    cli: Cli, bot_api: BotApi, env: dict[str, str], named: str,
) -> None:
    for command in (("alert", "test"), ("watch", "--once"), ("check-alpaca", "--json")):
        result = cli(*command, env=env)
        assert result.code == 2, result.output
        assert named in result.output and SECRET not in result.output
    assert bot_api.attempts == 0

"""The Telegram channel against a local server playing the Bot API: what it sends, how Telegram's
refusals and rate limits are read, the deadline, and that the bot's token stays out of every
error text, repr and log record."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import closed_port
from tests.support.network import SilentServer
from tests.support.telegram import BOT_TOKEN, CHAT_ID, BotApi
from tradectl.notify import Notice
from tradectl.notify.telegram import CUT_NOTE, TEXT_LIMIT, TelegramChannel, message_text

STOP = Notice(7, "EMERGENCY STOP - trading halted: all closed or closing",
              "tradectl emergency stop at ...\nReason: test\n  AAPL  closed\n",
              kind="emergency_stop", created_at=datetime(2026, 12, 2, 15, 30, tzinfo=UTC))
WARNING = Notice(8, "80% of the daily loss limit", "body", kind="loss_warning")
SECRET = BOT_TOKEN.partition(":")[2]


def channel(api: BotApi | str, timeout: float = 3) -> TelegramChannel:
    url = api.url if isinstance(api, BotApi) else api
    return TelegramChannel(BOT_TOKEN, CHAT_ID, url, timeout)


def no_token(*texts: object) -> bool:
    return all(SECRET.lower() not in str(text).lower() for text in texts)


def test_each_alert_is_one_plain_message_to_the_chat(bot_api: BotApi) -> None:
    assert channel(bot_api).send([STOP, WARNING]) == {7: None, 8: None}
    assert bot_api.paths == [f"/bot{BOT_TOKEN}/sendMessage"] * 2
    first, second = bot_api.messages
    assert first == {"chat_id": CHAT_ID, "text": f"{STOP.subject}\n\n{STOP.body.strip()}"}
    assert "parse_mode" not in first  # plain text: a reason cannot become markup
    assert second["text"] == "80% of the daily loss limit\n\nbody"


def test_a_self_hosted_api_url_with_a_path_is_honoured(bot_api: BotApi) -> None:
    # a Bot API server behind a prefix: the prefix is kept, and the fake answers 404 there
    results = channel(f"{bot_api.url}/telegram/").send([WARNING])
    assert bot_api.paths == [f"/telegram/bot{BOT_TOKEN}/sendMessage"]
    assert results == {8: "HTTP 404: Not Found"}


def test_ok_false_is_a_failure_with_telegrams_description(bot_api: BotApi) -> None:
    bot_api.refuse(400, "Bad Request: chat not found")
    results = channel(bot_api).send([STOP, WARNING])
    assert results == {7: "HTTP 400: Bad Request: chat not found", 8: None}  # the batch goes on


def test_a_description_quoting_the_token_is_scrubbed(bot_api: BotApi) -> None:
    bot_api.refuse(401, f"Unauthorized: bot{BOT_TOKEN.upper()} unknown")
    (error,) = channel(bot_api).send([STOP]).values()
    assert error == "HTTP 401: Unauthorized: bot… unknown" and no_token(error)


def test_a_200_without_ok_true_is_not_taken_for_a_delivery(bot_api: BotApi) -> None:
    bot_api.refuse(200, "odd proxy")
    (error,) = channel(bot_api).send([STOP]).values()
    assert error == "Telegram did not confirm it (ok is not true): HTTP 200: odd proxy"


def test_a_rate_limit_holds_the_rest_of_the_batch_and_says_how_long(bot_api: BotApi) -> None:
    bot_api.rate_limit(7)
    results = channel(bot_api).send([STOP, WARNING])
    said = "HTTP 429: Too Many Requests: retry after 7; Telegram asks to wait 7s"
    assert results == {7: said, 8: f"not tried: {said}"}
    assert bot_api.attempts == 1 and bot_api.messages == []


def test_after_a_rate_limit_nothing_is_sent_until_the_wait_is_over(bot_api: BotApi) -> None:
    telegram = channel(bot_api)
    bot_api.rate_limit(1)
    assert str(telegram.send([STOP])[7]).startswith("HTTP 429")
    assert telegram.send([WARNING]) == {8: "not tried: Telegram asked to wait 1s more (HTTP 429)"}
    assert bot_api.attempts == 1  # the second send never reached the server
    time.sleep(1.1)
    assert telegram.send([STOP, WARNING]) == {7: None, 8: None}
    assert bot_api.attempts == 3


def test_a_slow_server_is_bounded_by_the_timeout_and_the_rest_is_not_tried(
    bot_api: BotApi,
) -> None:
    bot_api.slow(3.0)
    results = channel(bot_api, timeout=0.3).send([STOP, WARNING])
    assert results == {7: "no answer within 0.3s (ALERT_TELEGRAM_TIMEOUT)",
                       8: "not tried: no answer within 0.3s (ALERT_TELEGRAM_TIMEOUT)"}
    assert bot_api.attempts == 1


def test_a_server_that_never_answers_is_bounded_too() -> None:
    with SilentServer() as silent:
        results = channel(f"http://127.0.0.1:{silent.port}", timeout=0.3).send([STOP])
    assert results == {7: "no answer within 0.3s (ALERT_TELEGRAM_TIMEOUT)"}


def test_an_unreachable_api_says_so() -> None:
    results = channel(f"http://127.0.0.1:{closed_port()}", timeout=1).send([STOP])
    assert results == {7: "could not connect (refused, or unknown host)"}


def test_a_long_alert_is_cut_to_one_message_and_says_so(bot_api: BotApi) -> None:
    long = Notice(9, "EMERGENCY STOP", "x" * 10_000)
    text = message_text(long)
    assert len(text) == TEXT_LIMIT and text.endswith(CUT_NOTE)
    assert message_text(WARNING) == "80% of the daily loss limit\n\nbody"
    assert channel(bot_api).send([long]) == {9: None}
    assert len(bot_api.messages[0]["text"]) == TEXT_LIMIT


def test_the_token_is_out_of_the_repr_and_the_debug_log(
    bot_api: BotApi, caplog: pytest.LogCaptureFixture,
) -> None:
    telegram = channel(bot_api)
    assert telegram.recipients == f"chat {CHAT_ID} via http://127.0.0.1:{bot_api.port}/…"
    assert no_token(repr(telegram), telegram.recipients)
    bot_api.refuse(403, "Forbidden: bot was blocked by the user")
    with caplog.at_level(logging.DEBUG):
        telegram.send([STOP, WARNING])
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # the log was really on
    assert no_token(caplog.text)

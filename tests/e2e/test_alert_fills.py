"""ALERT_FILLS=true: `watch` alerts an entry's fill and an exit's fill (symbol, side, qty, price,
the trade's P&L and R), through the outbox, here to a local Telegram Bot API; on both
databases."""

from __future__ import annotations

from tests.conftest import Cli, rows
from tests.fakes.alpaca import FakeAlpaca
from tests.support.telegram import BotApi
from tradectl.db.models import Alert

OPEN_AAPL = ("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160")


def test_an_entry_fill_and_an_exit_fill_are_alerted_once_each(
    trader: Cli, fake: FakeAlpaca, bot_api: BotApi,
) -> None:
    trader.env.update({**bot_api.env(), "ALERT_FILLS": "true"})
    assert trader(*OPEN_AAPL).code == 0
    assert bot_api.messages == []  # `open` sent the order; the fill is seen by watch
    assert trader("watch", "--once").code == 0  # the entry filled at 150
    assert trader("watch", "--once").code == 0  # nothing new: no second alert
    fake.set_price("AAPL", "161")  # the take-profit fills
    assert trader("watch", "--once").code == 0
    assert trader("watch", "--once").code == 0
    texts = [m["text"] for m in bot_api.messages]
    assert texts == [
        "Entry filled: AAPL buy 2 @ 150.00\n\nAAPL: the entry (buy) filled 2 held at an average "
        "150.00.\nStop 145.00, target 160.00; at risk to the stop: $10.00.",
        "Exit filled: AAPL sell 2 @ 161.00, P&L $22.00 (+2.20R)\n\nAAPL: closed (take_profit), "
        "sell 2 at 161.00; entry 150.00, initial stop 145.00.\nP&L $22.00, +2.20R."]
    alerts = rows(trader.env["DATABASE_URL"], Alert)
    assert [(a.kind, a.channel, a.status) for a in alerts] == [
        ("entry_filled", "telegram", "sent"), ("exit_filled", "telegram", "sent")]
    facts = alerts[1].facts or {}
    assert facts == {"symbol": "AAPL", "side": "sell", "qty": "2", "price": "161.00",
                     "position_id": facts.get("position_id"), "realized_pl": "22.00",
                     "r_multiple": "2.20", "close_reason": "take_profit"}


def test_a_refused_fill_alert_is_retried_by_the_next_tick(
    trader: Cli, bot_api: BotApi,
) -> None:
    trader.env.update({**bot_api.env(), "ALERT_FILLS": "true"})
    assert trader(*OPEN_AAPL).code == 0
    bot_api.refuse(500, "Internal Server Error")
    assert trader("watch", "--once").code == 0
    (alert,) = rows(trader.env["DATABASE_URL"], Alert)
    assert (alert.kind, alert.status, alert.last_error) == (
        "entry_filled", "pending", "HTTP 500: Internal Server Error")
    assert trader("watch", "--once").code == 0
    assert [m["text"].split("\n")[0] for m in bot_api.messages] == [
        "Entry filled: AAPL buy 2 @ 150.00"]


def test_without_alert_fills_a_fill_alerts_nobody(
    trader: Cli, fake: FakeAlpaca, bot_api: BotApi,
) -> None:
    trader.env.update(bot_api.env())
    assert trader(*OPEN_AAPL).code == 0
    assert trader("watch", "--once").code == 0
    fake.set_price("AAPL", "161")
    assert trader("watch", "--once").code == 0
    assert rows(trader.env["DATABASE_URL"], Alert) == [] and bot_api.messages == []
    bad = trader("watch", "--once", env={"ALERT_FILLS": "sometimes"})
    assert bad.code == 2 and bad.stderr.startswith("error: ALERT_FILLS must be true or false")

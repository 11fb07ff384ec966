"""The plans the dry runs show, on the in-process fakes: they read (never inside a transaction),
they never write to the broker, the database or an alert channel."""

from __future__ import annotations

from decimal import Decimal

from tests.fakes.broker import FakeBroker, FakeChannel
from tests.services.conftest import LIMITS
from tests.support.db import orm_session
from tradectl.broker import BracketRequest
from tradectl.db.models import Alert, Cycle, Event, Position
from tradectl.db.session import Database
from tradectl.notify import Channels
from tradectl.services.halt.halt_plan import halt_dry_run, plan_halt
from tradectl.services.open.open_plan import open_dry_run, plan_open
from tradectl.services.open.open_position import place_open, quote_open
from tradectl.services.open.pre_trade import send_pre_trade_reads
from tradectl.services.position.adjust_plan import adjust_dry_run, plan_adjust
from tradectl.services.position.close_plan import close_dry_run, plan_close

READS = {"account", "list_positions", "list_orders", "clock", "latest_trade_price"}


def rows(db: Database) -> list[int]:
    with orm_session(db) as session:
        return [session.query(model).count() for model in (Cycle, Position, Event, Alert)]


def test_the_previews_only_read(db: Database, broker: FakeBroker, channel: FakeChannel,
                                channels: Channels) -> None:
    spec = BracketRequest("AAPL", "buy", 0, Decimal(145), Decimal(160), None, "day")
    place_open(db, broker, LIMITS, quote_open(db, send_pre_trade_reads(
        broker, BracketRequest("MSFT", "buy", 2, Decimal(390), Decimal(420), None, "day"))))
    before, calls = rows(db), len(broker.calls)
    quote = quote_open(None, send_pre_trade_reads(broker, spec), risk_budget=Decimal(100))
    opened = open_dry_run(plan_open(db, broker, LIMITS, quote), trading_mode="paper")
    halted = halt_dry_run(plan_halt(db, broker, channels, "checking"), trading_mode="paper")
    assert set(broker.calls[calls:]) <= READS
    assert rows(db) == before and channel.sent == []
    # 100 / |150 - 145| = 20 shares; the book holds MSFT, not AAPL
    assert opened.plan.qty == 20 and opened.exit_code == 0
    assert opened.requests[0].body is not None and opened.requests[0].body["qty"] == "20"
    assert [p.symbol for p in halted.plan.positions] == ["MSFT"]
    assert halted.plan.alerts == ("e-mail to trader@example.test",)


def test_close_and_adjust_previews_judge_a_row_alpaca_has_moved_on_and_leave_it_as_it_was(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    """MSFT's entry filled at Alpaca; no tick has recorded it: the row is still pending. The
    previews bring it in line to judge (as the real commands do) and write none of it."""
    place_open(db, broker, LIMITS, quote_open(db, send_pre_trade_reads(
        broker, BracketRequest("MSFT", "buy", 2, Decimal(390), Decimal(420), None, "day"))))
    before, calls = rows(db), len(broker.calls)
    closed = close_dry_run(plan_close(db, broker, "MSFT"), trading_mode="paper")
    adjusted = adjust_dry_run(plan_adjust(db, broker, "MSFT", stop=Decimal(395), target=None),
                              trading_mode="paper")
    assert set(broker.calls[calls:]) <= READS
    assert rows(db) == before and channel.sent == []
    with orm_session(db) as session:
        assert session.query(Position).one().status == "pending"
    assert (closed.plan.status, closed.plan.action, closed.plan.qty) == ("open", "close", 2)
    assert closed.notes[0].startswith("Alpaca's orders show what the database does not say yet")
    assert [r.method for r in closed.requests] == ["DELETE", "DELETE"]
    (leg,) = adjusted.plan.legs
    assert (leg.action, leg.old_price, leg.new_price) == ("replace", 390, 395)
    assert adjusted.requests[0].body == {"stop_price": "395"}

"""Plan then execute: for each write command, the requests its `--dry-run` shows are the requests
the real command sends (the in-process fake broker keeps each write's request as the adapter
describes it), and a plan the world has moved past is refused when executed, with nothing sent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fakes.broker import FakeBroker, FakeChannel
from tests.services.conftest import LIMITS, bracket, open_position
from tests.services.test_protection import tick
from tests.support.db import orm_session
from tradectl.broker import BrokerRequest
from tradectl.db.models import Event, Position
from tradectl.db.session import Database
from tradectl.errors import CycleStoppedError, RefusedError
from tradectl.notify import Channels
from tradectl.services.dry_run import CLIENT_ORDER_ID_PLACEHOLDER
from tradectl.services.halt.emergency_stop import emergency_stop
from tradectl.services.halt.first_close import start_stop
from tradectl.services.halt.halt_plan import halt_dry_run, plan_halt
from tradectl.services.open.open_plan import open_dry_run, plan_open, quote_open
from tradectl.services.open.open_position import CHANGED, execute_open
from tradectl.services.open.pre_trade import send_pre_trade_reads
from tradectl.services.position.adjust import adjust_position, execute_adjust
from tradectl.services.position.adjust_plan import adjust_dry_run, plan_adjust
from tradectl.services.position.close_plan import close_dry_run, locate, plan_close, plan_located
from tradectl.services.position.close_position import close_position, execute_close
from tradectl.services.position.interrupted_close import exit_lock


def sent_after(broker: FakeBroker, mark: int) -> list[BrokerRequest]:
    return broker.writes[mark:]


def test_open_sends_the_bracket_its_dry_run_shows(db: Database, broker: FakeBroker) -> None:
    quote = quote_open(db, send_pre_trade_reads(broker, bracket()))
    plan = plan_open(db, broker, LIMITS, quote)
    (shown,) = open_dry_run(plan, trading_mode="paper").requests
    outcome = execute_open(db, broker, LIMITS, plan)
    assert outcome.broker_error is None
    (sent,) = broker.writes
    assert sent == plan.request  # the very request, client_order_id included
    assert shown.body is not None and sent.body is not None
    assert shown.body["client_order_id"] == CLIENT_ORDER_ID_PLACEHOLDER
    assert {**shown.body, "client_order_id": sent.body["client_order_id"]} == sent.body
    assert (shown.method, shown.url) == (sent.method, sent.url)
    with orm_session(db) as session:  # the row written ahead is the plan's
        assert session.query(Position).one().client_order_id == plan.bracket.client_order_id


def test_an_open_planned_before_a_halt_is_refused_and_says_the_book_changed(
    db: Database, broker: FakeBroker, channels: Channels,
) -> None:
    plan = plan_open(db, broker, LIMITS,
                     quote_open(db, send_pre_trade_reads(broker, bracket())))
    assert plan.refusal is None
    emergency_stop(db, broker, channels, "news")
    mark = len(broker.writes)
    with pytest.raises(CycleStoppedError, match=CHANGED):
        execute_open(db, broker, LIMITS, plan)
    assert sent_after(broker, mark) == []
    with orm_session(db) as session:
        assert session.query(Position).count() == 0
        assert session.query(Event).filter_by(kind="refused").count() == 1


def test_close_sends_the_cancels_and_the_close_its_dry_run_shows(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    open_position(db, broker, bracket())
    tick(db, broker, channel)
    shown = close_dry_run(plan_close(db, broker, "AAPL"), trading_mode="paper")
    assert [r.method for r in shown.requests] == ["DELETE", "DELETE"]
    mark = len(broker.writes)
    outcome = close_position(db, broker, Channels((channel,)), "AAPL")
    assert outcome.state in ("closing", "closed")
    assert sent_after(broker, mark) == list(shown.requests)


def test_close_of_an_unfilled_entry_sends_the_one_cancel_its_dry_run_shows(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    open_position(db, broker, bracket(entry="140", stop="135", target="150"))
    shown = close_dry_run(plan_close(db, broker, "AAPL"), trading_mode="paper")
    assert shown.plan.action == "cancel_entry"
    mark = len(broker.writes)
    close_position(db, broker, Channels((channel,)), "AAPL")
    assert sent_after(broker, mark) == list(shown.requests)
    assert [r.method for r in shown.requests] == ["DELETE"]


def test_a_close_planned_before_the_stop_filled_is_refused_and_sends_nothing(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    open_position(db, broker, bracket())
    tick(db, broker, channel)
    dry = plan_close(db, broker, "AAPL")  # a dry run's plan: made without the lock
    located = locate(db, "AAPL")
    with exit_lock(db, located.position_id):
        plan = plan_located(db, broker, located, lock_held=True)
        assert plan.action == "close"
        broker.set_price("AAPL", "144")  # the stop fills; the next tick records it
        tick(db, broker, channel)
        mark = len(broker.writes)
        with pytest.raises(RefusedError, match="changed since the plan"):
            execute_close(db, broker, Channels((channel,)), plan)
    assert sent_after(broker, mark) == []
    with pytest.raises(ValueError, match="exit lock"):  # and never executed
        execute_close(db, broker, Channels((channel,)), dry)
    assert sent_after(broker, mark) == []


def test_adjust_sends_the_patch_its_dry_run_shows(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    open_position(db, broker, bracket())
    tick(db, broker, channel)
    shown = adjust_dry_run(plan_adjust(db, broker, "AAPL", stop=Decimal(147),
                                       target=Decimal(165)), trading_mode="paper")
    assert [r.method for r in shown.requests] == ["PATCH", "PATCH"]
    mark = len(broker.writes)
    report = adjust_position(db, broker, "AAPL", stop=Decimal(147), target=Decimal(165))
    assert [leg.state for leg in report.legs] == ["replaced", "replaced"]
    assert sent_after(broker, mark) == list(shown.requests)


def test_adjust_executes_its_plan_and_nothing_else(
    db: Database, broker: FakeBroker, channel: FakeChannel,
) -> None:
    """A plan that leaves the target alone sends one PATCH, though the target's order is
    working too."""
    open_position(db, broker, bracket())
    tick(db, broker, channel)
    plan = plan_adjust(db, broker, "AAPL", stop=Decimal(146), target=None)
    mark = len(broker.writes)
    execute_adjust(db, broker, plan)
    (sent,) = sent_after(broker, mark)
    assert sent == plan.requests[0] and sent.body == {"stop_price": "146"}


def test_halt_sends_first_the_close_all_its_dry_run_shows(
    db: Database, broker: FakeBroker, channels: Channels,
) -> None:
    open_position(db, broker, bracket())
    shown = halt_dry_run(plan_halt(db, broker, channels, "news"), trading_mode="paper")
    (close_all,) = shown.requests
    mark = len(broker.writes)
    start = start_stop(broker, None, "news")  # as `halt` sends it, before the database loads
    report = emergency_stop(db, broker, channels, "news", start=start)
    assert report.exit_code == 0
    assert sent_after(broker, mark) == [close_all]  # nothing to sweep: nothing else went
    assert close_all.params == {"cancel_orders": "true"}  # it cancels the orders first

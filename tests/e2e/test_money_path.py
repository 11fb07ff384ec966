"""The money path: Decimal from the command line to the broker, the database and --json, and
realized P&L recorded from fills that matches the fake broker's cash ledger (exact Decimals)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from tests.conftest import Cli, broker_env
from tests.fakes.alpaca import FakeAlpaca
from tests.strategies import ticks
from tests.support.db import orm_session
from tradectl.db.models import Event, Money, Position
from tradectl.db.session import Database

CAP = "999999999999"
NO_LIMITS = {"MAX_POSITION_NOTIONAL": CAP, "MAX_RISK_PER_TRADE": CAP, "DAILY_LOSS_LIMIT": CAP}
HALF_CENT = Decimal("0.005")
MONEY_COLUMNS = [c.name for c in Position.__table__.columns if isinstance(c.type, Money)]
SYMBOLS = ("AAPL", "PENNY", "BRK.B", "XYZ")


@dataclass(frozen=True)
class Trip:
    """One round trip. `fills` None: a market entry filled at `entry` (the last trade); else a
    limit entry at `entry` filled in these (qty, price) chunks, maybe not all of `qty` (then the
    halt cancels the rest and closes what was bought). `exit` is the price the market moves to:
    past the target, past the stop, or between them for `halt`."""

    symbol: str
    side: str
    qty: int
    entry: Decimal
    stop: Decimal
    target: Decimal
    how: str  # take_profit | stop_loss | halt
    exit: Decimal
    fills: tuple[tuple[int, Decimal], ...] | None = None

    @property
    def chunks(self) -> tuple[tuple[int, Decimal], ...]:
        return self.fills or ((self.qty, self.entry),)

    @property
    def partial(self) -> bool:
        return sum(q for q, _ in self.chunks) < self.qty

    def expected_pl(self) -> Decimal:
        """From the fills alone: what the trip made, exactly."""
        cost = sum((q * p for q, p in self.chunks), Decimal(0))
        made = self.exit * sum(q for q, _ in self.chunks) - cost
        return made if self.side == "buy" else -made




def units(value: Decimal) -> int:
    return int(value * 10000)


def tick_between(low: int, high: int) -> bool:
    """Is there a price on the tick in [low, high] (ten-thousandths)?"""
    return low <= min(high, 9999) or -(-max(low, 10000) // 100) * 100 <= high


@st.composite
def trips(draw: st.DrawFn, symbol: str) -> Trip:
    side = draw(st.sampled_from(["buy", "sell"]))
    qty = draw(st.integers(1, 50))
    entry = draw(st.one_of(ticks(201, 9999), ticks(10000, 5_000_000)))  # $0.0201 to $500
    e = units(entry)
    above, below = ticks(e + 100, e + 2_000_000), ticks(1, e - 100)
    stop, target = (draw(below), draw(above)) if side == "buy" else (draw(above), draw(below))
    s, t = units(stop), units(target)
    how = draw(st.sampled_from(["take_profit", "stop_loss", "halt"]))
    fills = None
    if draw(st.booleans()):
        parts = draw(st.integers(1, min(3, qty)))
        cuts = sorted(draw(st.lists(st.integers(1, qty - 1), min_size=parts - 1,
                                    max_size=parts - 1, unique=True))) if parts > 1 else []
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, qty], strict=True)]
        better = ticks(max(1, e - 5000), e) if side == "buy" else ticks(e, e + 5000)
        fills = tuple((size, draw(better)) for size in sizes)
    # between the entry and the target: the unfilled rest of a partial entry stays unfilled
    away = (e + 1, t - 1) if side == "buy" else (t + 1, e - 1)
    if fills and len(fills) > 1 and how == "halt" and tick_between(*away) and draw(st.booleans()):
        fills = fills[:-1]
        exit_ = draw(ticks(*away))
    elif how == "halt":
        exit_ = draw(ticks(min(s, t) + 1, max(s, t) - 1))
    elif (how == "take_profit") == (side == "buy"):
        exit_ = draw(ticks(max(s, t), max(s, t) + 500_000))  # up through the higher leg
    else:
        exit_ = draw(ticks(1, min(s, t)))  # down through the lower leg
    return Trip(symbol, side, qty, entry, stop, target, how, exit_, fills)


@st.composite
def books(draw: st.DrawFn) -> list[Trip]:
    symbols = draw(st.permutations(SYMBOLS))[: draw(st.integers(1, 3))]
    return [draw(trips(symbol)) for symbol in symbols]


# -- running a book of round trips against the fake ----------------------------------------------


def no_floats(document: str) -> Any:
    """Parse --json output; a JSON float (money as a binary number) fails the test."""
    def refuse(literal: str) -> None:
        raise AssertionError(f"a float in --json output: {literal} in {document}")

    return json.loads(document, parse_float=refuse)


def run_book(cli: Cli, fake: FakeAlpaca, book: list[Trip]) -> Decimal:
    """Open every trip, move the market through its exit, let watch / halt record it.
    Returns the fake's cash change."""
    for trip in book:
        fake.set_price(trip.symbol, trip.entry)
    cash_before = Decimal(fake.account()["cash"])
    for trip in book:
        args = ["open", trip.symbol, "--qty", str(trip.qty), "--stop", str(trip.stop),
                "--target", str(trip.target), "--side", trip.side, "--json"]
        if trip.fills is not None:
            fake.set_market_open(False)  # the limit rests until the chunks below fill it
            args += ["--entry", str(trip.entry)]
        result = cli(*args)
        assert result.code == 0, (trip, result.output)
        if trip.fills is not None:
            order_id = no_floats(result.stdout)["alpaca_order_id"]
            for qty, at in trip.fills:
                fake.partial_fill(order_id, qty, at)
            if trip.partial:  # a price at which the rest of the limit does not fill
                fake.set_price(trip.symbol, trip.exit)
            fake.set_market_open(True)
    for trip in book:
        if trip.how != "halt":
            fake.set_price(trip.symbol, trip.exit)
    tick = cli("watch", "--once", "--json")
    assert tick.code == 0, tick.output
    assert no_floats(tick.stdout)["emergency_stop"] is None
    if any(trip.how == "halt" for trip in book):
        for trip in book:
            if trip.how == "halt":
                fake.set_price(trip.symbol, trip.exit)
        halt = cli("halt", "--reason", "money path", "--json")
        assert halt.code == 0, halt.output
        no_floats(halt.stdout)
    assert fake.positions_list() == []
    cash_change = Decimal(fake.account()["cash"]) - cash_before
    final = cli("watch", "--once", "--json")
    assert final.code == 0, final.output
    # nothing held: the day's P&L is the cash change, carried through tradectl as text
    assert Decimal(no_floats(final.stdout)["day_pnl"]) == cash_change
    return cash_change


def stored_positions(url: str) -> list[Position]:
    db = Database(url)
    with orm_session(db) as session:
        rows = list(session.scalars(select(Position).order_by(Position.id)))
    db.dispose()
    return rows


def walk(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)
    else:
        yield value


def check_ledger(url: str, book: list[Trip], cash_change: Decimal) -> None:
    rows = {row.symbol: row for row in stored_positions(url)}
    assert sorted(rows) == sorted(trip.symbol for trip in book)
    one_fill_each = all(trip.fills is None or len(trip.fills) == 1 for trip in book)
    for trip in book:
        row = rows[trip.symbol]
        assert row.status == "closed", (trip, row.status, row.alpaca_error)
        assert row.close_reason == ("emergency_stop" if trip.how == "halt" else trip.how)
        assert row.exit_price == trip.exit
        for column in MONEY_COLUMNS:
            value = getattr(row, column)
            assert value is None or type(value) is Decimal, (column, type(value))
        assert row.realized_pl is not None
        if trip.fills is None or len(trip.fills) == 1:
            assert row.realized_pl == trip.expected_pl(), trip
        else:  # an average of several fills may not terminate: it agrees to the cent
            assert abs(row.realized_pl - trip.expected_pl()) < HALF_CENT, trip
    realized = sum((row.realized_pl for row in rows.values() if row.realized_pl is not None),
                   Decimal(0))
    assert type(realized) is Decimal
    if one_fill_each:
        assert realized == cash_change, (realized, cash_change)
    else:
        assert abs(realized - cash_change) < HALF_CENT, (realized, cash_change)
    db = Database(url)
    with orm_session(db) as session:
        details = [e.details for e in session.scalars(select(Event)) if e.details]
    with db.engine.connect() as connection:
        # on disk too: exact text in SQLite (a REAL is a binary float), NUMERIC in Postgres
        if db.dialect == "sqlite":
            kinds = {kind for c in MONEY_COLUMNS for kind in connection.execute(
                text(f"SELECT DISTINCT typeof({c}) FROM positions")).scalars()}
            assert kinds <= {"text", "null"}, kinds
        else:
            kinds = set(connection.execute(text(
                "SELECT DISTINCT data_type FROM information_schema.columns WHERE table_name = "
                "'positions' AND column_name = ANY(:names)"), {"names": MONEY_COLUMNS}).scalars())
            assert kinds == {"numeric"}, kinds
    db.dispose()
    floats = [v for d in details for v in walk(d) if isinstance(v, float)]
    assert floats == [], floats


# -- the property, on SQLite ----------------------------------------------------------------------


@pytest.fixture
def sqlite_trader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str,
                  fake: FakeAlpaca) -> Cli:
    database = Database(sqlite_url)
    database.upgrade()
    database.dispose()
    cli = Cli(monkeypatch, tmp_path)
    cli.env.update({"DATABASE_URL": sqlite_url, **broker_env(fake), **NO_LIMITS})
    return cli


def empty(url: str) -> None:
    db = Database(url)
    with db.engine.begin() as connection:
        for table in ("events", "alerts", "positions", "cycles"):
            connection.execute(text(f"DELETE FROM {table}"))
    db.dispose()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(book=books())
def test_realized_pl_from_fills_matches_the_brokers_cash_change(
    sqlite_trader: Cli, fake: FakeAlpaca, book: list[Trip]
) -> None:
    fake.reset()
    empty(sqlite_trader.env["DATABASE_URL"])
    for trip in book:
        chunks = " partly filled" if trip.partial else " in chunks" if trip.fills else ""
        event(f"{trip.side} {trip.how}{chunks}{' sub-dollar' if trip.entry < 1 else ''}")
    cash_change = run_book(sqlite_trader, fake, book)
    # the fake's ledger is exact: its cash moved by exactly what the fills say
    assert sum((trip.expected_pl() for trip in book), Decimal(0)) == cash_change
    check_ledger(sqlite_trader.env["DATABASE_URL"], book, cash_change)


# -- explicit books, on both databases ------------------------------------------------------------

D = Decimal
EXPLICIT = {
    "sub-dollar buy stopped out": [
        Trip("PENNY", "buy", 37, D("0.5123"), D("0.4001"), D("0.6789"), "stop_loss", D("0.3999"))],
    "sub-dollar short taken profit in three fills": [
        Trip("PENNY", "sell", 7, D("0.5123"), D("0.6001"), D("0.4321"), "take_profit",
             D("0.4000"), ((2, D("0.5124")), (2, D("0.5125")), (3, D("0.5199"))))],
    "three symbols, one each way": [
        Trip("AAPL", "buy", 3, D("150.00"), D("145.55"), D("160.10"), "take_profit", D("161.37")),
        Trip("XYZ", "sell", 11, D("12.34"), D("13.01"), D("11.11"), "stop_loss", D("13.07")),
        Trip("BRK.B", "buy", 50, D("0.9999"), D("0.0100"), D("1.01"), "halt", D("0.7777"))],
    "short filled 7 of 10 in two chunks, then halted": [
        Trip("XYZ", "sell", 10, D("12.34"), D("13.01"), D("11.11"), "halt", D("12.00"),
             ((3, D("12.35")), (4, D("12.40"))))],
}


@pytest.mark.parametrize("name", list(EXPLICIT))
def test_explicit_books_on_both_databases(trader: Cli, fake: FakeAlpaca, name: str) -> None:
    trader.env.update(NO_LIMITS)
    book = EXPLICIT[name]
    cash_change = run_book(trader, fake, book)
    assert sum((trip.expected_pl() for trip in book), Decimal(0)) == cash_change
    check_ledger(trader.env["DATABASE_URL"], book, cash_change)


def test_the_expected_pl_helper_is_right() -> None:
    """The oracle pinned by hand: buy 3 at 150, out at 161.37 is +34.11; short 7 in three fills
    (2 at 0.5124, 2 at 0.5125, 3 at 0.5199) covered at 0.40 is +0.8095; short 3 at 12.35 and 4
    at 12.40, covered at 12.00, is +2.65."""
    (aapl, _, _) = EXPLICIT["three symbols, one each way"]
    assert aapl.expected_pl() == Decimal("34.11")
    (short,) = EXPLICIT["sub-dollar short taken profit in three fills"]
    assert short.expected_pl() == Decimal("0.8095")
    (partial,) = EXPLICIT["short filled 7 of 10 in two chunks, then halted"]
    assert partial.partial and partial.expected_pl() == Decimal("2.65")  # 86.65 in, 84 out

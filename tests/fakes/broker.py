"""In-process fakes for the service tests: a broker (the Broker Protocol over the HTTP fake's own
state and fill engine, without HTTP) and an alert channel. Both fail the test when they are
called while a transaction of the watched Database is open: the rule that no network wait
happens inside a transaction is checked on every call, not trusted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event

from tests.fakes.alpaca.broker import Broker as AlpacaState
from tests.fakes.alpaca.model import ApiError
from tradectl.broker import (
    Account,
    BracketRequest,
    BrokerPosition,
    BrokerRequest,
    Clock,
    EquityPoint,
    OcoExitRequest,
    Order,
    SymbolOutcome,
    wire,
)
from tradectl.broker.alpaca import bracket_order_body, replace_order_body
from tradectl.db.session import Database
from tradectl.errors import BrokerError, BrokerTimeout
from tradectl.notify import Notice

FAKE_URL = "http://fake-alpaca.test"


class OpenTransactions:
    """Counts the transactions open on a Database's connections, through SQLAlchemy's events."""

    def __init__(self, db: Database) -> None:
        self._open: set[int] = set()
        self._lock = threading.Lock()
        event.listen(db.engine, "begin", self._began)
        event.listen(db.engine, "commit", self._ended)
        event.listen(db.engine, "rollback", self._ended)

    def _began(self, connection: Any) -> None:
        with self._lock:
            self._open.add(id(connection))

    def _ended(self, connection: Any) -> None:
        with self._lock:
            self._open.discard(id(connection))

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._open)

    def check(self, call: str) -> None:
        if self.count:
            raise AssertionError(f"{call} was called while a database transaction is open")


class FakeBroker:
    """The Broker Protocol in-process. `fail(method, error, times)` makes a call raise before
    it acts; `lose_answer(method, times)` lets it act and then raise BrokerTimeout, as a lost
    answer does. Every call is logged in `calls`, and every write as the request it describes
    (`*_request`) in `writes`; a call inside a transaction fails the test."""

    def __init__(self, transactions: OpenTransactions | None = None) -> None:
        self.state = AlpacaState()
        self.transactions = transactions
        self.calls: list[str] = []
        self.writes: list[BrokerRequest] = []  # each write's request, sent or refused
        self._faults: dict[str, list[BrokerError]] = {}
        self._lost: dict[str, int] = {}
        self._lock = threading.RLock()

    # -- steering -----------------------------------------------------------------------------

    def set_price(self, symbol: str, price: str) -> None:
        with self._lock:
            self.state.set_price(symbol, Decimal(price))

    def set_clock(self, timestamp: datetime, *, next_close: datetime,
                  next_open: datetime | None = None, is_open: bool = True) -> None:
        """Pin Alpaca's clock (what `clock()` answers), as FakeAlpaca.set_clock does."""
        from tests.fakes.alpaca.market_clock import MarketClock

        with self._lock:
            self.state.clock = MarketClock(timestamp, next_open or next_close, next_close)
            self.state.market_open = is_open

    def fail(self, method: str, error: BrokerError, times: int = 1) -> None:
        self._faults.setdefault(method, []).extend([error] * times)

    def lose_answer(self, method: str, times: int = 1) -> None:
        self._lost[method] = self._lost.get(method, 0) + times

    def _enter(self, method: str) -> None:
        if self.transactions is not None:
            self.transactions.check(f"broker.{method}")
        self.calls.append(method)
        faults = self._faults.get(method)
        if faults:
            raise faults.pop(0)

    def _do(self, method: str, action: Any) -> Any:
        """The fake's answer as the adapter would see it: JSON text, decoded strictly."""
        with self._lock:
            self._enter(method)
            try:
                answer = action()
            except ApiError as err:
                raise BrokerError(f"Alpaca {err.status}: {err.body['message']}",
                                  status=err.status) from None
            if self._lost.get(method):
                self._lost[method] -= 1
                raise BrokerTimeout("Alpaca did not answer in time")
            return wire.decode(json.dumps(answer).encode())

    # -- the Protocol -------------------------------------------------------------------------

    def bracket_order_request(self, request: BracketRequest) -> BrokerRequest:
        return BrokerRequest("POST", f"{FAKE_URL}/v2/orders", "/v2/orders",
                             body=bracket_order_body(request))

    def close_all_request(self, *, cancel_orders: bool) -> BrokerRequest:
        query = "?cancel_orders=true" if cancel_orders else ""
        return BrokerRequest("DELETE", f"{FAKE_URL}/v2/positions{query}", "/v2/positions",
                             {"cancel_orders": "true"} if cancel_orders else {})

    def close_position_request(self, symbol: str, qty: Decimal | None = None) -> BrokerRequest:
        params = {"qty": format(qty, "f")} if qty is not None else {}
        query = f"?qty={params['qty']}" if params else ""
        return BrokerRequest("DELETE", f"{FAKE_URL}/v2/positions/{symbol}{query}",
                             f"/v2/positions/{symbol}", params)

    def replace_order_request(self, order_id: str, *, stop_price: Decimal | None = None,
                              limit_price: Decimal | None = None) -> BrokerRequest:
        return BrokerRequest("PATCH", f"{FAKE_URL}/v2/orders/{order_id}",
                             f"/v2/orders/{order_id}",
                             body=replace_order_body(stop_price, limit_price))

    def cancel_order_request(self, order_id: str) -> BrokerRequest:
        return BrokerRequest("DELETE", f"{FAKE_URL}/v2/orders/{order_id}",
                             f"/v2/orders/{order_id}")

    def _write(self, request: BrokerRequest) -> BrokerRequest:
        with self._lock:
            self.writes.append(request)
        return request

    def submit_bracket(self, request: BracketRequest) -> Order:
        body = self._write(self.bracket_order_request(request)).body
        assert body is not None
        return wire.parse_order(self._do("submit_bracket", lambda: self.state.submit(body)))

    def submit_oco_exit(self, request: OcoExitRequest) -> Order:
        body = {
            "symbol": request.symbol, "qty": format(request.qty, "f"), "side": request.side,
            "type": "limit", "time_in_force": request.time_in_force, "order_class": "oco",
            "client_order_id": request.client_order_id,
            "take_profit": {"limit_price": str(request.target)},
            "stop_loss": {"stop_price": str(request.stop)},
        }
        return wire.parse_order(self._do("submit_oco_exit", lambda: self.state.submit(body)))

    def replace_order(self, order_id: str, *, stop_price: Decimal | None = None,
                      limit_price: Decimal | None = None) -> Order:
        request = self._write(self.replace_order_request(order_id, stop_price=stop_price,
                                                         limit_price=limit_price))
        body = request.body or {}
        return wire.parse_order(
            self._do("replace_order", lambda: self.state.replace(order_id, body)))

    def get_order(self, order_id: str) -> Order:
        return wire.parse_order(self._do("get_order", lambda: self.state.order_dict(
            self.state.get_order(order_id), nested=True)))

    def find_order_by_client_id(self, client_order_id: str) -> Order | None:
        try:
            raw = self._do("find_order_by_client_id", lambda: self.state.order_dict(
                self.state.by_client_order_id(client_order_id), nested=True))
        except BrokerError as err:
            if err.status == 404:
                return None
            raise
        return wire.parse_order(raw)

    # wanted and deadline_seconds are the Broker Protocol's: the fake answers every order at once.
    def list_orders(self, *, status: str = "open", after: datetime | None = None,
                    wanted: Collection[str] = (), deadline_seconds: float = 60.0,  # noqa: ARG002
                    ) -> list[Order]:
        raw = self._do("list_orders", lambda: self.state.list_orders(
            status=status, limit=10**9, after=after, nested=True))
        return wire.parse_orders(raw)

    def list_positions(self) -> list[BrokerPosition]:
        return wire.parse_positions(self._do("list_positions", self.state.positions_list))

    def cancel_all_orders(self) -> list[SymbolOutcome]:
        return wire.parse_canceled_orders(self._do("cancel_all_orders", self.state.cancel_all))

    def cancel_order(self, order_id: str) -> None:
        self._write(self.cancel_order_request(order_id))
        self._do("cancel_order", lambda: self.state.cancel(order_id))

    def close_all_positions(self, *, cancel_orders: bool) -> list[SymbolOutcome]:
        request = self._write(self.close_all_request(cancel_orders=cancel_orders))
        cancel = request.params.get("cancel_orders") == "true"
        return wire.parse_closed_positions(
            self._do("close_all_positions", lambda: self.state.close_all(cancel)))

    def close_position(self, symbol: str, qty: Decimal | None = None) -> Order:
        request = self._write(self.close_position_request(symbol, qty))  # as described
        sent = Decimal(request.params["qty"]) if "qty" in request.params else None
        return wire.parse_order(
            self._do("close_position", lambda: self.state.close_position(symbol, qty=sent)))

    def account(self) -> Account:
        return wire.parse_account(self._do("account", self.state.account))

    def clock(self) -> Clock:
        """The fake's market clock (market_clock.py), as /v2/clock answers it."""
        with self._lock:
            self._enter("clock")
            return wire.parse_clock(self.state.clock.v2(self.state.market_open))

    def equity_history(self, start: datetime) -> list[EquityPoint]:
        """What GET /v2/account/portfolio/history answers (history.py), from `set_equity_history`
        points (none set: one point, the current equity)."""
        from tests.fakes.alpaca.routes import history

        query = {"start": start.isoformat(), "timeframe": "1Min",
                 "intraday_reporting": "extended_hours"}
        return wire.parse_equity_history(
            self._do("equity_history", lambda: history(self.state, query, None)))

    def set_equity_history(self, points: Sequence[tuple[datetime, str]]) -> None:
        with self._lock:
            self.state.equity_points = [(moment, Decimal(value)) for moment, value in points]

    def latest_trade_price(self, symbol: str) -> Decimal:
        with self._lock:
            self._enter("latest_trade_price")
            return self.state.prices[symbol]


class FakeChannel:
    """An alert channel that keeps what it was asked to send (or fails with `error`). Named
    "e-mail" unless told otherwise: rows seeded without a channel are e-mails."""

    recipients = "trader@example.test"

    def __init__(self, transactions: OpenTransactions | None = None, *,
                 name: str = "e-mail") -> None:
        self.name = name
        self.transactions = transactions
        self.sent: list[Notice] = []
        self.error: str | None = None

    def send(self, notices: Sequence[Notice]) -> dict[int, str | None]:
        if self.transactions is not None:
            self.transactions.check("channel.send")
        if self.error is not None:
            return {n.key: self.error for n in notices}
        self.sent.extend(notices)
        return {n.key: None for n in notices}

    def send_budget(self, count: int) -> float:
        return float(count)

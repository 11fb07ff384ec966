"""`--dry-run`: a command run up to its first write. It validates, makes its reads (broker and
database), judges the risk rules with their figures and describes the exact requests it would
send (`Broker.*_request`: method, URL, body; never the keys), then stops. Nothing is written to
the database and nothing is sent to the broker or to an alert channel.

Every command's preview returns the same envelope, `DryRun`, around its own `plan` (what it
would do: `OpenPlan`, `HaltPlan`, ...), so one renderer draws them all and a new command plugs
in by writing its plan and its preview (see docs/architecture.md, "Where a new command goes").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from tradectl.broker import BrokerRequest, Order
from tradectl.domain.money import Price, Quantity
from tradectl.domain.pre_trade import RuleCheck
from tradectl.errors import ExitCode

P = TypeVar("P")

# A dry run makes no client_order_id: the real command makes a new one when it writes ahead.
CLIENT_ORDER_ID_PLACEHOLDER = "tradectl-<new id, made when the order is written ahead>"


@dataclass(frozen=True)
class DryRun(Generic[P]):
    """What `command` would do. `exit_code` is the one the real command would exit with:
    3 when a rule refuses, 4 when the broker could not be read, 5 the database."""

    command: str
    trading_mode: str
    plan: P
    checks: tuple[RuleCheck, ...] = ()
    requests: tuple[BrokerRequest, ...] = ()
    refusal: str | None = None  # the first rule that refuses, in the real command's words
    notes: tuple[str, ...] = ()
    exit_code: ExitCode = ExitCode.OK
    dry_run: bool = True  # for the JSON reader: nothing was written or sent


@dataclass(frozen=True)
class OrderToCancel:
    """An order working at Alpaca that the command would cancel (`halt`, `close`)."""

    id: str
    symbol: str
    side: str
    type: str
    qty: Quantity | None
    status: str
    price: Price | None  # the limit, or the stop
    leg: bool  # a bracket's (or an OCO's) take-profit or stop-loss
    tracked: bool  # an order of a position tradectl opened

    @classmethod
    def of(cls, order: Order, *, leg: bool, tracked: bool) -> OrderToCancel:
        return cls(order.id, order.symbol, order.side, order.type, order.qty, order.status,
                   order.limit_price or order.stop_price, leg, tracked)

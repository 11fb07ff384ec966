"""The fake's account state and fill engine (callers hold FakeAlpaca's lock).

Money is Decimal throughout, so cash/equity arithmetic in tests is exact. The fill
engine runs after every state change while the market is open: market orders at
the current price, limits when the price crosses them (at the better of limit and
price), stops at the current price once triggered. Bracket legs wait in status
"held" until the parent fills, then go "new"; when one leg fills the other is
canceled (OCO). Shares reserved by open closing-side orders are "held" and make a
plain close fail with 403, as on Alpaca.

What is modelled beyond that, and from which source ([orders.md] = alpacahq/alpaca-docs
content/trading/orders.md, Alpaca's "Understand Orders" page; [spec] = the OpenAPI spec):
- Order groups [orders.md "Bracket Orders"]: "If any one of the orders is canceled, any
  remaining open order in the group is canceled" (cancel a leg of an unfilled bracket and
  the entry goes too); "If the take-profit order is partially filled, the stop-loss order
  will be adjusted to the remaining quantity" (applied to any partly filled OCO member).
- Brackets are entry-only: one that would reduce a position is refused 422 "bracket
  orders must be entry orders" (42210000, quoted in many public client repositories).
- OCO [orders.md "OCO Orders"]: an exit pair on an existing position; the take-profit
  limit is the parent, the stop (limit) its leg, both working at once; one filling
  cancels the other. Without a position to exit: 422 "oco orders must be exit orders"
  (quoted in public repositories); more than the unheld shares: the usual 403.
- Cancel: a non-open order answers 422 {"code": 42210000, "message": "order is already
  in \"filled\" state"} (the message quoted in bennycode/trading-signals#1079 and
  other repositories). set_cancels_pending(True) makes a cancel leave routed orders
  "pending_cancel": the forum answer "Orders are showing PENDING CANCEL"
  (forum.alpaca.markets/t/orders-are-showing-pending-cancel/813) says such an order
  then ends "cancelled or filled (if the order could not be cancelled)" or expires, so
  the engine keeps filling it and its shares stay held. Held legs and "accepted"
  (not yet routed) orders cancel at once, as Alpaca cancels what it has not sent to a
  venue (ttt733 in alpacahq/alpaca-trade-api-python#135). A second cancel of a
  pending_cancel order answers 422 'order is already in "pending_cancel" state': no
  report states this; it follows the message above, and alpacahq/Alpaca-API#111
  reports pending_cancel orders one "can neither cancel nor do anything with".
  DELETE /v2/orders answers 207 with one {"id", "status": 200, "body": order} entry per
  order it cancels [spec deleteAllOrders]; orders whose cancel is already pending are
  left out of it (the fake's choice: the spec only says an order that is "no longer
  cancelable" gets status 500, and no report shows what a pending one gets).
- Replace (PATCH) [spec patchOrderByOrderId, orders.md]: the old order becomes
  "replaced" (replaced_at, replaced_by), a new order with a new id and client_order_id
  "replaces" it, in the same place of its group (the legs move to a new parent).
  Refused: terminal orders (422 'order is already in "<status>" state', which Alpaca
  sends for "modify or cancel" of a final order), pending_cancel / pending_replace
  (spec), accepted / pending_new (spec; message from
  alpacahq/alpaca-trade-api-python#306 "unable to replace order, order isn't sent to
  exchange yet"), unchanged parameters (alpacahq/alpaca-py#412). Held bracket legs CAN
  be replaced: the spec's list of statuses that cannot be replaced leaves "held" out
  and [orders.md] says replacing limit_price / stop_price of bracket and OCO orders is
  supported; no report confirms or refutes it for a leg whose entry is unfilled. The
  new order's qty is the old qty unless the PATCH sets one, even after a partial fill,
  as alpacahq/Alpaca-API#165 reports.
- The trading day [spec TimeInForce, orders.md "Time in Force"]: at the close every open
  day order expires (status "expired", expired_at), bracket legs and OCO orders
  included; gtc orders stay; orders queued while the market was closed ("accepted")
  wait for the next session. Alpaca reports the close as an "expired" event
  (QuantConnect/Lean.Brokerages.Alpaca#50). The legs of a day bracket whose entry filled
  go too: "if order is 'day' and filled, there will be no brackets the next day"
  (alpacahq/alpaca-trade-api-python#357, also iAmGiG/AutoTrader-AgentEdge#355); a
  time_in_force inside take_profit / stop_loss is ignored, the legs take the entry's
  (alpacahq/Alpaca-API#283). last_equity and the positions' lastday prices roll over to
  the closing values.

Trade updates (the websocket stream, see stream.py) [streaming.md = alpacahq/alpaca-docs
content/api-references/trading-api/streaming.md]: every state change the engine makes is handed
to on_trade_update as the data of one trade_updates message, in the order it happened:
{"event", "execution_id", "timestamp", "order"} plus, for fill and partial_fill, "price" and
"qty" of that execution (alpacahq/Alpaca-API#103: "qty ... equals to the quantity of shares
filled in that update along with price which equals to the price it was filled at") and
"position_qty" after it [streaming.md]. "order" is the order as GET /v2/orders/{id}?nested=true
answers it at that moment (a bracket entry with its legs; a leg alone); "timestamp" is the time
of the change (the order's updated_at). "execution_id" is a new uuid per event (the fake's choice
for events other than fills; alpacahq/alpaca-docs#23: two executions get two ids).
- new: an order routed to the market: at submission while the market is open, at the open for
  an order queued while it was closed ("Sent when an order has been routed to exchanges for
  execution" [streaming.md]; an order "accepted" with the market closed sends nothing until
  then), a bracket leg when its entry fills, the successor of a replaced working order.
- fill / partial_fill: each execution, before what it sets off (legs going "new", the OCO
  sibling "canceled").
- canceled, pending_cancel, expired (the close, expire()), replaced (the OLD order, replaced_by
  set: alpacahq/alpaca-trade-api-csharp#149 reports the event carries "old order and old price"),
  then new for its successor.
- Not sent: rejected (the fake refuses bad orders with a 422 answer, it never rejects an order
  it accepted), done_for_day, pending_new, pending_replace and the other rare events; no event
  when a partial fill of one OCO member shrinks the other's qty. Alpaca has been reported to
  leave out the cancel of a held stop-loss leg when the take-profit fills
  (alpacahq/alpaca-py#198); the fake sends it, and FakeAlpaca.pause_stream() loses events on
  purpose.

Known differences from Alpaca: after a bracket entry fills, Alpaca may keep the stop-loss
leg "held" until it triggers (forum.alpaca.markets/t/bracket-order-exit-trades-not-executing/3697);
the fake makes both legs "new". Replaces and cancels are synchronous (no pending_replace,
no rejection of a replacement that lost a race with a fill).
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from . import validation
from .market_clock import MarketClock
from .model import (
    ApiError,
    JsonObject,
    Order,
    Position,
    account_dict,
    asset_id,
    money,
    now,
    rfc3339,
)

START_CASH = Decimal("100000")


class Broker:
    def __init__(self) -> None:
        # Receives the data of each trade update (stream.TradeStream.publish); kept by reset().
        self.on_trade_update: Callable[[JsonObject], None] | None = None
        self.reset()

    def reset(self) -> None:
        self.cash = START_CASH
        self.last_equity = START_CASH
        self.buying_power_override: Decimal | None = None
        self.orders: dict[str, Order] = {}
        self.order_ids_by_symbol: dict[str, list[str]] = {}  # so a close need not scan them all
        self.positions: dict[str, Position] = {}
        self.prices: dict[str, Decimal] = {}
        self.lastday: dict[str, Decimal] = {}
        self.trades: dict[str, tuple[int, datetime]] = {}
        self.market_open = True
        self.clock = MarketClock()  # what /v2/clock and /v3/clock answer (market_clock.py)
        self.equity_points: list[tuple[datetime, Decimal]] = []  # portfolio history (history.py)
        self.history_base: Decimal | None = None
        self.auto_fill = True
        self.fail_close: dict[str, tuple[int, str]] = {}
        self.cancels_pending = False
        self.ignore_paging = False
        self.account_id = str(uuid.uuid4())
        self.created_at = now()

    # ----- queries -------------------------------------------------------------

    def market_values(self) -> tuple[Decimal, Decimal]:
        long_mv = short_mv = Decimal(0)
        for pos in self.positions.values():
            value = pos.qty * self.prices[pos.symbol]
            if value >= 0:
                long_mv += value
            else:
                short_mv += value
        return long_mv, short_mv

    def buying_power(self) -> Decimal:
        if self.buying_power_override is not None:
            return self.buying_power_override
        long_mv, short_mv = self.market_values()  # Reg-T style: 2x equity minus margin in use
        return max(Decimal(0), 2 * (self.cash + long_mv + short_mv) - (long_mv - short_mv))

    def account(self) -> JsonObject:
        long_mv, short_mv = self.market_values()
        return account_dict(
            self.account_id,
            self.created_at,
            self.cash,
            self.last_equity,
            long_mv,
            short_mv,
            self.buying_power(),
        )

    def holding(
        self, symbol: str, side: str, exclude_group: str | None = None
    ) -> tuple[Decimal, list[str]]:
        """Qty reserved by live orders on one side, and their ids; an OCO pair counts once."""
        by_group: dict[str, Decimal] = {}
        ids = []
        for order in (self.orders[i] for i in self.order_ids_by_symbol.get(symbol, ())):
            if order.side == side and order.is_open and order.status != "held":
                group = order.parent_id or order.id
                if group == exclude_group:
                    continue
                by_group[group] = max(by_group.get(group, Decimal(0)), order.remaining)
                ids.append(order.id)
        return sum(by_group.values(), Decimal(0)), ids

    def held(self, symbol: str, side: str) -> Decimal:
        return self.holding(symbol, side)[0]

    def root(self, order: Order) -> Order:
        return self.orders[order.parent_id] if order.parent_id else order

    def group(self, order: Order) -> list[Order]:
        """The order's whole group: the parent first, then its legs (just itself if simple)."""
        root = self.root(order)
        return [root] + [self.orders[i] for i in root.leg_ids]

    def oco_siblings(self, order: Order) -> list[Order]:
        """The orders one fill of `order` cancels: the other bracket leg, the other OCO order."""
        if order.order_class == "oco":
            return [o for o in self.group(order) if o is not order]
        if order.order_class == "bracket" and order.parent_id:
            return [o for o in self.group(order)[1:] if o is not order]
        return []

    def find_position(self, symbol_or_asset_id: str) -> Position:
        by_symbol = self.positions.get(symbol_or_asset_id.upper())
        if by_symbol is not None:
            return by_symbol
        for pos in self.positions.values():
            if asset_id(pos.symbol) == symbol_or_asset_id.lower():
                return pos
        raise ApiError(404, "position does not exist")

    def position_dict(self, pos: Position) -> JsonObject:
        closing_side = "sell" if pos.qty > 0 else "buy"
        held = min(abs(pos.qty), self.held(pos.symbol, closing_side))
        price = self.prices[pos.symbol]
        return pos.to_dict(price, self.lastday.get(pos.symbol, price), held)

    def positions_list(self) -> list[JsonObject]:
        return [self.position_dict(self.positions[s]) for s in sorted(self.positions)]

    def order_dict(self, order: Order, nested: bool) -> JsonObject:
        legs = (
            [self.orders[i].to_dict() for i in order.leg_ids] if nested and order.leg_ids else None
        )
        return order.to_dict(legs)

    def get_order(self, order_id: str) -> Order:
        if order_id not in self.orders:
            raise ApiError(404, "order not found")
        return self.orders[order_id]

    def by_client_order_id(self, client_order_id: str) -> Order:
        for order in self.orders.values():
            if order.client_order_id == client_order_id:
                return order
        raise ApiError(404, "order not found")

    def list_orders(
        self,
        status: str = "open",
        limit: int = 50,
        after: datetime | None = None,
        until: datetime | None = None,
        direction: str = "desc",
        nested: bool = False,
        symbols: list[str] | None = None,
        side: str | None = None,
        before_order_id: str | None = None,
        after_order_id: str | None = None,
    ) -> list[JsonObject]:
        def matches(order: Order) -> bool:
            return status == "all" or (order.is_open == (status == "open"))

        # Submitted before / after the order with this id (exclusive): by submission sequence.
        below = self.get_order(before_order_id).seq if before_order_id else None
        above = self.get_order(after_order_id).seq if after_order_id else None
        found = []
        for order in sorted(self.orders.values(), key=lambda o: o.seq, reverse=direction == "desc"):
            if (below is not None and order.seq >= below) or (
                above is not None and order.seq <= above
            ):
                continue
            if nested and order.parent_id:
                continue  # shown under its parent
            group = ([order] + [self.orders[i] for i in order.leg_ids]) if nested else [order]
            if not any(matches(o) for o in group):
                continue
            if (symbols and order.symbol not in symbols) or (side and order.side != side):
                continue
            if (after and order.created_at <= after) or (until and order.created_at >= until):
                continue
            found.append(self.order_dict(order, nested))
        return found[:limit]

    # ----- commands --------------------------------------------------------------

    def set_price(self, symbol: str, price: Decimal) -> None:
        if price <= 0:
            raise ValueError(f"price must be > 0, got {price}")
        symbol = symbol.upper()
        self.prices[symbol] = price
        self.lastday.setdefault(symbol, price)
        trade_id = self.trades.get(symbol, (0, None))[0] + 1
        self.trades[symbol] = (trade_id, now())
        self.run_engine()

    def add_position(self, symbol: str, qty: Decimal, avg_price: Decimal) -> None:
        """An "external" position: shares appear without an order or a cash change."""
        symbol = symbol.upper()
        if symbol not in self.prices:
            self.set_price(symbol, avg_price)
        self.positions[symbol] = Position(symbol, qty, qty * avg_price)

    def submit(self, body: object, *, run_engine: bool = True) -> JsonObject:
        """Accept an order and answer with it as accepted, before the engine fills it."""
        req = validation.parse_order(body, self.prices.get)
        if req.client_order_id is not None and any(
            o.client_order_id == req.client_order_id for o in self.orders.values()
        ):
            raise ApiError(422, "client_order_id must be unique", code=40010001)
        pos = self.positions.get(req.symbol)
        closing = pos is not None and (pos.qty > 0) == (req.side == "sell")
        if req.order_class == "bracket" and closing:
            raise ApiError(422, "bracket orders must be entry orders")
        if req.order_class == "oco" and not closing:
            raise ApiError(422, "oco orders must be exit orders")
        if closing:
            self._check_available(req.symbol, req.side, req.qty)
        else:
            self._check_buying_power(req.symbol, req.qty, req.limit_price or req.stop_price)
        intent = f"{req.side}_to_{'close' if closing else 'open'}"
        status = "new" if self.market_open or self._extended_live(req) else "accepted"
        order = Order(
            req.symbol,
            req.qty,
            req.side,
            req.type,
            req.time_in_force,
            req.order_class,
            req.limit_price,
            req.stop_price,
            status=status,
            position_intent=intent,
            extended_hours=req.extended_hours,
        )
        if req.client_order_id is not None:
            order.client_order_id = req.client_order_id
        self._add_order(order)
        if req.order_class == "bracket":
            self._add_legs(order, req)
        elif req.order_class == "oco":
            self._add_stop_leg(order, req)
        for routed in self.group(order):
            if routed.status == "new":
                self._emit("new", routed)
        answer = self.order_dict(order, nested=True)
        if run_engine:
            self.run_engine()
        return answer

    def _check_available(
        self, symbol: str, side: str, qty: Decimal, exclude_group: str | None = None
    ) -> None:
        """403 unless `qty` closing shares are neither missing nor held by other orders."""
        pos = self.positions.get(symbol)
        existing = abs(pos.qty) if pos is not None else Decimal(0)
        held, holders = self.holding(symbol, side, exclude_group)
        available = max(Decimal(0), existing - held)
        if qty > available:
            raise ApiError(
                403,
                f"insufficient qty available for order (requested: {money(qty)}, "
                f"available: {money(available)})",
                symbol=symbol,
                available=money(available),
                existing_qty=money(existing),
                held_for_orders=money(existing - available),
                related_orders=holders,
            )

    def _check_buying_power(self, symbol: str, qty: Decimal, price: Decimal | None) -> None:
        if qty * (price or self.prices[symbol]) > self.buying_power():
            raise ApiError(403, "insufficient buying power")

    def _add_stop_leg(self, parent: Order, req: validation.OrderRequest) -> None:
        """The stop-loss of an OCO pair: working at once, beside its take-profit parent."""
        leg = Order(
            symbol=parent.symbol,
            qty=parent.qty,
            side=parent.side,
            type="stop_limit" if req.stop_loss_limit else "stop",
            time_in_force=parent.time_in_force,
            order_class="oco",
            stop_price=req.stop_loss,
            limit_price=req.stop_loss_limit,
            status=parent.status,
            position_intent=parent.position_intent,
            parent_id=parent.id,
        )
        self._add_order(leg)
        parent.leg_ids.append(leg.id)

    def _add_order(self, order: Order) -> None:
        self.orders[order.id] = order
        self.order_ids_by_symbol.setdefault(order.symbol, []).append(order.id)

    def _add_legs(self, parent: Order, req: validation.OrderRequest) -> None:
        side = "sell" if parent.side == "buy" else "buy"

        def bracket_leg(
            order_type: str, limit_price: Decimal | None, stop_price: Decimal | None
        ) -> Order:
            return Order(
                symbol=parent.symbol,
                qty=parent.qty,
                side=side,
                type=order_type,
                time_in_force=parent.time_in_force,
                order_class="bracket",
                limit_price=limit_price,
                stop_price=stop_price,
                status="held",
                position_intent=f"{side}_to_close",
                parent_id=parent.id,
            )

        legs = [
            bracket_leg("limit", req.take_profit, None),
            bracket_leg(
                "stop_limit" if req.stop_loss_limit else "stop", req.stop_loss_limit, req.stop_loss
            ),
        ]
        for leg in legs:
            self._add_order(leg)
            parent.leg_ids.append(leg.id)

    def cancel(self, order_id: str) -> None:
        """Cancel an order with the rest of its group (bracket or OCO) [orders.md]."""
        order = self.get_order(order_id)
        if not order.is_open or order.status in ("pending_cancel", "pending_replace"):
            raise ApiError(422, f'order is already in "{order.status}" state')
        for other in self.group(order):
            if other.is_open and other.status != "pending_cancel":
                self._request_cancel(other)

    def cancel_all(self) -> list[JsonObject]:
        """Every open order whose cancel is not already pending, oldest first."""
        entries = []
        for order in sorted(self.orders.values(), key=lambda o: o.seq):
            if order.is_open and order.status not in ("pending_cancel", "pending_replace"):
                self._request_cancel(order)
                entries.append({"id": order.id, "status": 200, "body": order.to_dict()})
        return entries

    def _request_cancel(self, order: Order) -> None:
        if self.cancels_pending and order.status not in ("held", "accepted"):
            order.status, order.updated_at = "pending_cancel", now()
            self._emit("pending_cancel", order)
        else:
            self._mark_canceled(order)

    def release_cancels(self) -> list[str]:
        """The venue confirms every pending cancel: pending_cancel -> canceled."""
        released = []
        for order in sorted(self.orders.values(), key=lambda o: o.seq):
            if order.status == "pending_cancel":
                self._mark_canceled(order)
                released.append(order.id)
        return released

    def replace(self, order_id: str, body: object) -> JsonObject:
        """PATCH /v2/orders/{id}: a new order takes the old one's place (see the docstring)."""
        old = self.get_order(order_id)
        if old.status in ("accepted", "pending_new"):
            raise ApiError(422, "unable to replace order, order isn't sent to exchange yet")
        if not old.is_open or old.status in ("pending_cancel", "pending_replace"):
            raise ApiError(422, f'order is already in "{old.status}" state')
        req = validation.parse_replace(body, old.type, old.qty)
        if req.client_order_id is not None and any(
            o.client_order_id == req.client_order_id for o in self.orders.values()
        ):
            raise ApiError(422, "client_order_id must be unique", code=40010001)
        qty = old.qty if req.qty is None else req.qty
        tif = req.time_in_force or old.time_in_force
        limit_price = old.limit_price if req.limit_price is None else req.limit_price
        stop_price = old.stop_price if req.stop_price is None else req.stop_price
        if (qty, tif, limit_price, stop_price) == (
            old.qty,
            old.time_in_force,
            old.limit_price,
            old.stop_price,
        ):
            raise ApiError(422, "order parameters are not changed")
        if old.type == "stop_limit" and old.triggered and stop_price != old.stop_price:
            raise ApiError(422, "stop_price of a triggered stop_limit order cannot be changed")
        if old.status != "held":  # a held leg's shares do not exist yet
            if old.position_intent.endswith("_to_close"):
                self._check_available(old.symbol, old.side, qty, self.root(old).id)
            else:
                self._check_buying_power(old.symbol, qty, limit_price or stop_price)
        new = Order(
            old.symbol,
            qty,
            old.side,
            old.type,
            tif,
            old.order_class,
            limit_price,
            stop_price,
            status="held" if old.status == "held" else "new",
            position_intent=old.position_intent,
            extended_hours=old.extended_hours,
            parent_id=old.parent_id,
            replaces=old.id,
        )
        if req.client_order_id is not None:
            new.client_order_id = req.client_order_id
        new.leg_ids, old.leg_ids = old.leg_ids, []
        for leg_id in new.leg_ids:
            self.orders[leg_id].parent_id = new.id
        if old.parent_id:
            legs = self.orders[old.parent_id].leg_ids
            legs[legs.index(old.id)] = new.id
        old.status = "replaced"
        old.replaced_at = old.updated_at = now()
        old.replaced_by = new.id
        self._add_order(new)
        self._emit("replaced", old)
        if new.status == "new":
            self._emit("new", new)
        answer = self.order_dict(new, nested=True)
        self.run_engine()
        return answer

    def expire(self, order_id: str) -> None:
        """Test hook: the order expires now; the rest of its group is canceled [orders.md]."""
        order = self.get_order(order_id)
        if not order.is_open:
            raise ValueError(f"order {order_id} is {order.status}, it cannot expire")
        self._mark_expired(order)
        for other in self.group(order):
            if other.is_open:
                self._mark_canceled(other)

    def end_day(self) -> list[str]:
        """The close: open day orders expire (except what waits for the next session), and
        last_equity / lastday prices roll over to the closing values. Answers expired ids."""
        self.market_open = False
        expired = []
        ordered = sorted(self.orders.values(), key=lambda o: o.seq)
        for order in ordered:
            waiting = order.status == "accepted" or (
                order.status == "held" and self.root(order).status == "accepted"
            )  # queued for the next session, with the legs of such an entry
            if order.is_open and order.time_in_force == "day" and not waiting:
                self._mark_expired(order)
                expired.append(order.id)
        for order in ordered:  # held legs of an entry that is gone (a gtc leg of a day entry)
            if order.status == "held" and not self.root(order).is_open:
                self._mark_expired(order)
                expired.append(order.id)
        long_mv, short_mv = self.market_values()
        self.last_equity = self.cash + long_mv + short_mv
        self.lastday.update(self.prices)
        return expired

    def close_position(
        self,
        symbol: str,
        qty: Decimal | None = None,
        percentage: Decimal | None = None,
        *,
        run_engine: bool = True,
    ) -> JsonObject:
        """Submit a market order for the opposite side; answers that order."""
        pos = self.find_position(symbol)
        if pos.symbol in self.fail_close:
            status, message = self.fail_close[pos.symbol]
            raise ApiError(status, message)
        if qty is not None and percentage is not None:
            raise ApiError(422, "qty and percentage cannot be used together")
        amount = abs(pos.qty)
        if percentage is not None:
            if not 0 < percentage <= 100:
                raise ApiError(422, "percentage must be between 0 and 100")
            amount = amount * percentage / 100
            if pos.qty == pos.qty.to_integral_value():  # only fractional if it already was
                amount = amount.to_integral_value(rounding=ROUND_DOWN)
        elif qty is not None:
            amount = qty
        side = "sell" if pos.qty > 0 else "buy"
        return self.submit(
            {
                "symbol": pos.symbol,
                "qty": money(amount),
                "side": side,
                "type": "market",
                "time_in_force": "day",
            },
            run_engine=run_engine,
        )

    def close_all(self, cancel_orders: bool) -> list[JsonObject]:
        if cancel_orders:
            self.cancel_all()
        entries = []
        for symbol in sorted(self.positions):
            try:
                body = self.close_position(symbol, run_engine=False)
                entries.append({"symbol": symbol, "status": 200, "body": body})
            except ApiError as error:
                entries.append({"symbol": symbol, "status": error.status, "body": error.body})
        # The answers are the orders as accepted; the fills follow, once for the whole batch
        # (each close is its own symbol, so no close changes what another may do).
        self.run_engine()
        return entries

    def fill(self, order_id: str, qty: Decimal | None, price: Decimal | None) -> None:
        """Test hook: fill part (or the rest) of an order, whatever the market state."""
        order = self.get_order(order_id)
        if not order.is_open or order.status == "held":
            raise ValueError(f"order {order_id} is {order.status}, it cannot fill")
        qty = order.remaining if qty is None else qty
        if not 0 < qty <= order.remaining:
            raise ValueError(f"fill qty {qty} not in (0, {order.remaining}]")
        self._fill(
            order,
            qty,
            price if price is not None else order.limit_price or self.prices[order.symbol],
        )
        self.run_engine()

    # ----- fill engine -----------------------------------------------------------------

    def run_engine(self) -> None:
        """Fill what the prices allow, oldest order first. Prices do not move while it runs, so
        a fill can only make its own legs fillable: they join the queue, nothing is rescanned."""
        if not self.market_open:
            self._run_extended_session()
            return
        queue = []
        for order in self.orders.values():
            if order.is_open and order.status != "held":
                if order.status == "accepted":  # the market has opened since submission
                    order.status, order.updated_at = "new", now()
                    self._emit("new", order)
                queue.append((order.seq, order.id))
        heapq.heapify(queue)
        while queue:
            order = self.orders[heapq.heappop(queue)[1]]
            if not order.is_open:  # cancelled meanwhile as a filled leg's OCO sibling
                continue
            price = self._fill_price(order)
            if price is None:
                continue
            self._fill(order, order.remaining, price)
            for leg in (self.orders[i] for i in order.leg_ids):
                if leg.is_open and leg.status != "held":
                    heapq.heappush(queue, (leg.seq, leg.id))

    # ----- extended hours (pre / post: only extended_hours limit orders execute) --------

    def _extended_session(self) -> bool:
        return self.clock.phase(self.market_open)[0] in ("pre", "post")

    def _extended_live(self, req: validation.OrderRequest) -> bool:
        return req.extended_hours and req.type == "limit" and self._extended_session()

    def _run_extended_session(self) -> None:
        """Outside core, in pre or post: extended_hours limit orders go "new" and fill at their
        limit or better against the price; everything else waits for the regular session."""
        if not self._extended_session():
            return
        for order in sorted(self.orders.values(), key=lambda o: o.seq):
            if not (order.is_open and order.extended_hours and order.type == "limit"):
                continue
            if order.status == "held":
                continue
            if order.status == "accepted":
                order.status, order.updated_at = "new", now()
                self._emit("new", order)
            price = self._fill_price(order)
            if price is not None:
                self._fill(order, order.remaining, price)

    def _fill_price(self, order: Order) -> Decimal | None:
        price = self.prices[order.symbol]
        buy = order.side == "buy"
        if order.type == "market":
            return price if self.auto_fill else None
        if order.type in ("stop", "stop_limit") and not order.triggered:
            stop = _required(order.stop_price, order)
            if not (price >= stop if buy else price <= stop):
                return None
            if order.type == "stop":
                return price
            order.triggered = True
        if order.type in ("limit", "stop_limit"):
            limit = _required(order.limit_price, order)
            if buy and price <= limit:
                return min(limit, price)
            if not buy and price >= limit:
                return max(limit, price)
        return None

    def _fill(self, order: Order, qty: Decimal, price: Decimal) -> None:
        stamp = now()
        total = order.filled_qty + qty
        previous = (order.filled_avg_price or Decimal(0)) * order.filled_qty
        order.filled_avg_price = (previous + price * qty) / total
        order.filled_qty = total
        order.updated_at = order.filled_at = stamp
        if order.remaining == 0:
            order.status = "filled"
        elif order.status != "pending_cancel":  # a pending cancel stays pending until it lands
            order.status = "partially_filled"
        self._apply_to_position(order.symbol, qty if order.side == "buy" else -qty, price)
        position = self.positions.get(order.symbol)
        self._emit(
            "fill" if order.status == "filled" else "partial_fill",
            order,
            price=money(price),
            qty=money(qty),
            position_qty=money(position.qty if position else Decimal(0)),
        )
        siblings = [o for o in self.oco_siblings(order) if o.is_open]
        if order.status != "filled":
            for sibling in siblings:  # the other exit shrinks to what is left [orders.md]
                sibling.qty = sibling.filled_qty + order.remaining
                sibling.updated_at = stamp
            return
        for leg in (self.orders[i] for i in order.leg_ids):
            if leg.status == "held":
                leg.status, leg.updated_at = "new", stamp
                self._emit("new", leg)
        for sibling in siblings:
            self._mark_canceled(sibling)

    def _apply_to_position(self, symbol: str, signed_qty: Decimal, price: Decimal) -> None:
        self.cash -= signed_qty * price
        pos = self.positions.get(symbol)
        if pos is None:
            self.positions[symbol] = Position(symbol, signed_qty, signed_qty * price)
            return
        new_qty = pos.qty + signed_qty
        if new_qty == 0:
            del self.positions[symbol]
        elif (pos.qty > 0) == (signed_qty > 0):  # adding to the position
            pos.qty, pos.cost_basis = new_qty, pos.cost_basis + signed_qty * price
        elif (new_qty > 0) == (pos.qty > 0):  # reducing: the average entry price stays
            pos.qty, pos.cost_basis = new_qty, pos.cost_basis * new_qty / pos.qty
        else:  # flipped side: the remainder is a new position at this price
            self.positions[symbol] = Position(symbol, new_qty, new_qty * price)

    def _mark_canceled(self, order: Order) -> None:
        order.status = "canceled"
        order.canceled_at = order.updated_at = now()
        self._emit("canceled", order)

    def _mark_expired(self, order: Order) -> None:
        order.status = "expired"
        order.expired_at = order.updated_at = now()
        self._emit("expired", order)

    def _emit(self, event: str, order: Order, **fields: object) -> None:
        """Hand one trade update to the stream (see the docstring for its fields)."""
        if self.on_trade_update is None:
            return
        self.on_trade_update(
            {
                "event": event,
                "execution_id": str(uuid.uuid4()),
                "order": self.order_dict(order, nested=True),
                "timestamp": rfc3339(order.updated_at),
                **fields,
            }
        )


def _required(price: Decimal | None, order: Order) -> Decimal:
    """A price validation guarantees for the order's type (stop_price of a stop, ...)."""
    if price is None:
        raise TypeError(f"{order.type} order {order.id} has no price to fill at")
    return price

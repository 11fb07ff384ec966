"""Which of Alpaca's shares are tradectl's (issue 23). Alpaca nets one position per symbol; the
journal may hold one or more rows on it, and the trader may have bought more by hand. Each row is
priced on its own fill for the shares Alpaca holds for it (oldest row first); what Alpaca holds
beyond the rows is external, with the rest of Alpaca's unrealized P&L, so the rows plus the
external part add up to Alpaca's figure exactly. Shared by `status` and `watch`. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from tradectl.broker import BrokerPosition
from tradectl.domain.loss_limit import position_pnl
from tradectl.domain.money import CENT
from tradectl.services.protection import account_shares
from tradectl.views import ExternalPositionView, PositionView, overlaid


def _shares(view: PositionView) -> Decimal:
    """The shares a live row accounts for (filled, less what was exited outside tradectl)."""
    if view.status not in ("open", "closing") or view.local_only or not view.filled_qty \
            or view.filled_avg_price is None:
        return Decimal(0)
    return view.filled_qty - (view.outside_qty or Decimal(0))


def split_holdings(views: Sequence[PositionView], held: Sequence[BrokerPosition]
                   ) -> tuple[tuple[PositionView, ...], tuple[ExternalPositionView, ...]]:
    """The views marked to Alpaca's price on their own shares, and the external part of each
    of Alpaca's positions (the whole position for a symbol no live row is in)."""
    market = {p.symbol: p for p in held}
    room = {p.symbol: abs(p.qty) for p in held}
    tracked: dict[str, tuple[Decimal, Decimal, Decimal]] = {}  # shares, cost, unrealized
    marked = []
    for view in views:
        holding, shares = market.get(view.symbol), _shares(view)
        if holding is None or shares <= 0 or holding.current_price is None:
            marked.append(view)
            continue
        assert view.filled_avg_price is not None
        mine = min(shares, account_shares(holding, view.side), room[view.symbol])
        room[view.symbol] -= mine
        pl = position_pnl(view.side, view.filled_avg_price, holding.current_price,
                          mine).quantize(CENT)
        was = tracked.get(view.symbol, (Decimal(0), Decimal(0), Decimal(0)))
        tracked[view.symbol] = (was[0] + mine, was[1] + mine * view.filled_avg_price,
                                was[2] + pl)
        marked.append(overlaid(view, {"last_price": holding.current_price,
                                      "unrealized_pl": pl}))
    # A row whose entry the journal has not seen fill yet may own all of Alpaca's shares.
    unsettled = {v.symbol for v in views if v.status == "pending" and not v.local_only}
    external = tuple(_external(market[s], tracked.get(s)) for s in market if s not in unsettled
                     and tracked.get(s, (Decimal(0),))[0] < abs(market[s].qty))
    return tuple(marked), external


def _external(holding: BrokerPosition, tracked: tuple[Decimal, Decimal, Decimal] | None
              ) -> ExternalPositionView:
    whole = ExternalPositionView.of(holding)
    if tracked is None or tracked[0] == 0:
        return whole
    shares, cost, pl = tracked
    qty = abs(holding.qty) - shares
    average = None if holding.avg_entry_price is None else \
        (holding.avg_entry_price * abs(holding.qty) - cost) / qty
    return replace(whole, qty=qty if holding.qty > 0 else -qty, avg_entry_price=average,
                   unrealized_pl=None if holding.unrealized_pl is None
                   else holding.unrealized_pl - pl, tracked_qty=shares)

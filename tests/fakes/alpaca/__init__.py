"""A stateful local fake of Alpaca's Trading API, its trade_updates stream and stock latest trades.

See server.FakeAlpaca for the steering API, broker.Broker for the fill rules and the trade
updates, stream.TradeStream for the websocket protocol.
"""

from .server import Exchange, FakeAlpaca
from .stream import StreamClients, StreamEvent

__all__ = ["Exchange", "FakeAlpaca", "StreamClients", "StreamEvent"]

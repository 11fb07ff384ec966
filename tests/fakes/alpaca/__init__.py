"""A stateful local fake of Alpaca's Trading API and stock latest-trade endpoints.

See server.FakeAlpaca for the steering API and broker.Broker for the fill rules.
"""

from .server import Exchange, FakeAlpaca

__all__ = ["Exchange", "FakeAlpaca"]

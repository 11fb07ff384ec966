"""Talking to the fake Alpaca over real HTTP in its tests: a requests client and order bodies."""

from __future__ import annotations

import requests

from tests.fakes.alpaca import FakeAlpaca


class Client:
    """A thin requests wrapper that adds the auth headers and the base URL."""

    def __init__(self, fake: FakeAlpaca, key: str | None = None, secret: str | None = None):
        self.base = fake.url
        self.session = requests.Session()
        self.session.headers.update(
            {
                "APCA-API-KEY-ID": key or fake.api_key,
                "APCA-API-SECRET-KEY": secret or fake.secret_key,
            }
        )

    def __getattr__(self, method: str):
        def call(path: str, **kwargs) -> requests.Response:
            kwargs.setdefault("timeout", 5)
            return self.session.request(method.upper(), self.base + path, **kwargs)

        return call


def bracket(symbol="AAPL", qty="10", side="buy", tp="160", sl="140", **extra) -> dict:
    return {
        "symbol": symbol,
        "qty": qty,
        "side": side,
        "type": "market",
        "time_in_force": "gtc",
        "order_class": "bracket",
        "take_profit": {"limit_price": tp},
        "stop_loss": {"stop_price": sl},
        **extra,
    }


def market(symbol="AAPL", qty="10", side="buy", **extra) -> dict:
    return {
        "symbol": symbol,
        "qty": qty,
        "side": side,
        "type": "market",
        "time_in_force": "day",
        **extra,
    }


def submit(api: Client, body: dict) -> dict:
    response = api.post("/v2/orders", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def statuses(api: Client, order_id: str) -> tuple[str, list[str]]:
    order = api.get(f"/v2/orders/{order_id}", params={"nested": "true"}).json()
    return order["status"], [leg["status"] for leg in order["legs"] or []]


def limit(symbol="AAPL", qty="10", side="buy", price="149", tif="gtc", **extra) -> dict:
    return {
        "symbol": symbol,
        "qty": qty,
        "side": side,
        "type": "limit",
        "limit_price": price,
        "time_in_force": tif,
        **extra,
    }


def oco(symbol="AAPL", qty="10", side="sell", tp="160", sl="140", sl_limit=None, **extra) -> dict:
    """An OCO exit pair as Alpaca's docs show it (type limit, no top-level limit_price)."""
    stop_loss = {"stop_price": sl}
    if sl_limit is not None:
        stop_loss["limit_price"] = sl_limit
    return {
        "symbol": symbol,
        "qty": qty,
        "side": side,
        "type": "limit",
        "time_in_force": "gtc",
        "order_class": "oco",
        "take_profit": {"limit_price": tp},
        "stop_loss": stop_loss,
        **extra,
    }

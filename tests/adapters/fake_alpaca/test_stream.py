"""The fake Alpaca's trade_updates websocket, through a plain websockets client and through
alpaca-trade-api's own Stream: authentication, listening, the events the order engine sends, and
the faults tests steer (drops, gaps, refused upgrades). The protocol's sources are written in
tests/fakes/alpaca/stream.py, the events' in tests/fakes/alpaca/broker.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from alpaca_trade_api.common import URL
from alpaca_trade_api.stream import Stream

# websockets 10 exports these lazily at the top level, out of a type checker's sight.
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatusCode
from websockets.legacy import client as websocket_client

from tests.adapters.fake_alpaca.client import Client, bracket, limit, market, submit
from tests.fakes.alpaca import FakeAlpaca

WAIT = 15.0  # generous bound for anything that should take milliseconds (a loaded CI box)
AUTHORIZED = {"stream": "authorization", "data": {"status": "authorized", "action": "authenticate"}}
UNAUTHORIZED = {
    "stream": "authorization",
    "data": {
        "status": "unauthorized",
        "action": "authenticate",
        "message": "access key verification failed",
    },
}
LISTENING = {"stream": "listening", "data": {"streams": ["trade_updates"]}}
# alpaca-trade-api 3.2.0 logs its reconnects with the deprecated Logger.warn.
pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated")


class WsClient:
    """A plain websockets client driven synchronously: its event loop runs in a thread."""

    def __init__(self, url: str):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        try:
            self.ws = self._run(self._connect(url))
        except BaseException:
            self._stop_loop()
            raise

    @staticmethod
    async def _connect(url: str) -> websocket_client.WebSocketClientProtocol:
        return await websocket_client.connect(url, close_timeout=1)

    def _run(self, coroutine, timeout: float = WAIT):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def send(self, message: object) -> None:
        self._run(self.ws.send(json.dumps(message)))

    def recv_raw(self, timeout: float = WAIT) -> str | bytes:
        return self._run(asyncio.wait_for(self.ws.recv(), timeout), timeout + 1)

    def recv(self, timeout: float = WAIT) -> dict:
        return json.loads(self.recv_raw(timeout))

    def nothing_within(self, seconds: float) -> bool:
        try:
            self.recv_raw(seconds)
        except TimeoutError:
            return True
        return False

    def authenticate(self, key: str, secret: str) -> dict:
        self.send({"action": "authenticate", "data": {"key_id": key, "secret_key": secret}})
        return self.recv()

    def listen(self, streams: list[str]) -> dict:
        self.send({"action": "listen", "data": {"streams": streams}})
        return self.recv()

    def updates(self, count: int) -> list[dict]:
        """The data of the next `count` trade updates."""
        messages = [self.recv() for _ in range(count)]
        assert all(m["stream"] == "trade_updates" for m in messages), messages
        return [m["data"] for m in messages]

    def ping(self) -> None:
        pong = self._run(self.ws.ping())
        self._run(asyncio.wait_for(pong, WAIT))

    def close(self) -> None:
        try:
            self._run(self.ws.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(WAIT)
        self._loop.close()



@pytest.fixture
def connect(fake) -> Iterator[Callable[..., WsClient]]:
    """Open a client; listening=True also authenticates and listens to trade_updates."""
    clients: list[WsClient] = []

    def open_client(listening: bool = False, path: str = "/stream") -> WsClient:
        client = WsClient(fake.stream_url.removesuffix("/stream") + path)
        clients.append(client)
        if listening:
            assert client.authenticate(fake.api_key, fake.secret_key) == AUTHORIZED
            assert client.listen(["trade_updates"]) == LISTENING
        return client

    yield open_client
    for client in clients:
        client.close()


def events(updates: list[dict]) -> list[tuple[str, str]]:
    return [(u["event"], u["order"]["id"]) for u in updates]


def rest_order(api: Client, order_id: str) -> dict:
    response = api.get(f"/v2/orders/{order_id}", params={"nested": "true"})
    assert response.status_code == 200, response.text
    return response.json()


# ----- the protocol ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/stream", "/stream/"])
def test_authenticate_and_listen_are_answered_in_binary_json_frames(fake, connect, path):
    client = connect(path=path)
    assert fake.wait_for_stream(lambda c: c.connected == 1).authorized == 0

    client.send({"action": "authenticate",
                 "data": {"key_id": fake.api_key, "secret_key": fake.secret_key}})
    answer = client.recv_raw()
    assert isinstance(answer, bytes)  # binary frames, as Alpaca's paper stream sends
    assert json.loads(answer) == AUTHORIZED
    assert fake.stream_clients().authorized == 1
    assert fake.stream_clients().listening == 0

    client.send({"action": "listen", "data": {"streams": ["trade_updates"]}})
    answer = client.recv_raw()
    assert isinstance(answer, bytes)
    assert json.loads(answer) == LISTENING
    assert fake.stream_clients().listening == 1
    assert fake.stream_url.endswith("/stream")


def test_wrong_keys_are_unauthorized_and_the_connection_stays_open(fake, api, connect):
    client = connect()
    assert client.authenticate(fake.api_key, "not-the-secret") == UNAUTHORIZED
    assert client.listen(["trade_updates"]) == {
        "stream": "authorization", "data": {"status": "unauthorized", "action": "listen"}
    }
    submit(api, market())
    assert client.nothing_within(0.3)
    assert [e.delivered for e in fake.stream_events] == [0, 0]
    assert fake.stream_clients().connected == 1

    assert client.authenticate(fake.api_key, fake.secret_key) == AUTHORIZED
    assert client.listen(["trade_updates"]) == LISTENING
    order = submit(api, market(qty="1"))
    assert events(client.updates(2)) == [("new", order["id"]), ("fill", order["id"])]


def test_keys_of_the_other_mode_are_unauthorized_on_the_stream(fake, connect):
    fake.set_forbidden(True)
    assert connect().authenticate(fake.api_key, fake.secret_key) == UNAUTHORIZED
    fake.set_forbidden(False)
    assert connect().authenticate(fake.api_key, fake.secret_key) == AUTHORIZED


def test_listen_lists_only_known_streams_and_an_empty_list_stops_updates(fake, api, connect):
    client = connect()
    client.authenticate(fake.api_key, fake.secret_key)
    assert client.listen(["trade_updates", "account_updates", "trade_updates"]) == LISTENING
    first = submit(api, market(qty="1"))
    assert events(client.updates(2)) == [("new", first["id"]), ("fill", first["id"])]

    assert client.listen([]) == {"stream": "listening", "data": {"streams": []}}
    assert fake.stream_clients().listening == 0
    submit(api, market(qty="1"))
    assert client.nothing_within(0.3)


def test_malformed_messages_get_an_error_and_the_connection_survives(fake, connect):
    client = connect()
    client.send("not an object")
    assert client.recv()["stream"] == "error"
    client._run(client.ws.send(b"{not json"))
    assert client.recv()["stream"] == "error"
    client.send({"action": "subscribe", "data": {}})
    assert client.recv() == {"stream": "error", "data": {"message": "unknown action: 'subscribe'"}}
    client.send({"action": "listen", "data": {"streams": "trade_updates"}})
    assert client.recv()["stream"] == "error"
    assert client.authenticate(fake.api_key, fake.secret_key) == AUTHORIZED


def test_pings_are_answered(connect):
    connect(listening=True).ping()


# ----- the events -----------------------------------------------------------------------------


def test_a_bracket_entry_fill_arrives_well_within_a_second(fake, api, connect):
    client = connect(listening=True)
    fake.auto_fill = False
    entry = submit(api, bracket())
    take_profit, stop_loss = (leg["id"] for leg in entry["legs"])
    [new] = client.updates(1)
    assert new["event"] == "new"
    assert new["order"] == rest_order(api, entry["id"])  # the REST answer, legs included
    assert [leg["status"] for leg in new["order"]["legs"]] == ["held", "held"]
    assert set(new) == {"event", "execution_id", "order", "timestamp"}

    changed = time.monotonic()
    fake.fill(entry["id"])
    fill = client.updates(1)[0]
    assert time.monotonic() - changed < 1.0
    now = rest_order(api, entry["id"])
    assert {k: v for k, v in fill["order"].items() if k != "legs"} == {
        k: v for k, v in now.items() if k != "legs"
    }
    assert fill["event"] == "fill"
    assert fill["order"]["status"] == "filled"
    assert (fill["price"], fill["qty"], fill["position_qty"]) == ("150", "10", "10")
    assert fill["timestamp"] == now["filled_at"]
    uuid.UUID(fill["execution_id"])
    # Then the legs go to the market, each announced alone.
    legs = client.updates(2)
    assert events(legs) == [("new", take_profit), ("new", stop_loss)]
    assert [leg["order"]["legs"] for leg in legs] == [None, None]
    assert [e.event for e in fake.stream_events] == ["new", "fill", "new", "new"]
    assert all(e.delivered == 1 for e in fake.stream_events)


def test_partial_fills_carry_the_execution_not_the_average(fake, api, connect):
    client = connect(listening=True)
    fake.auto_fill = False
    order = submit(api, market())
    client.updates(1)
    fake.partial_fill(order["id"], "4", "150")
    fake.fill(order["id"], "151")
    partial, fill = client.updates(2)
    assert (partial["event"], partial["qty"], partial["price"], partial["position_qty"]) == (
        "partial_fill", "4", "150", "4"
    )
    assert partial["order"]["status"] == "partially_filled"
    assert (fill["event"], fill["qty"], fill["price"], fill["position_qty"]) == (
        "fill", "6", "151", "10"
    )
    assert fill["order"]["filled_avg_price"] == "150.6"
    assert partial["execution_id"] != fill["execution_id"]


def test_a_take_profit_fill_cancels_the_stop_leg_on_the_stream(fake, api, connect):
    entry = submit(api, bracket())
    take_profit, stop_loss = (leg["id"] for leg in entry["legs"])
    client = connect(listening=True)
    fake.set_price("AAPL", "161")
    fill, canceled = client.updates(2)
    assert (fill["event"], fill["order"]["id"], fill["position_qty"]) == ("fill", take_profit, "0")
    assert fill["price"] == "161"
    assert (canceled["event"], canceled["order"]["id"]) == ("canceled", stop_loss)
    assert canceled["timestamp"] == canceled["order"]["canceled_at"]
    assert set(canceled) == {"event", "execution_id", "order", "timestamp"}


def test_the_close_expires_day_orders_on_the_stream(fake, api, connect):
    entry = submit(api, bracket(time_in_force="day"))
    resting = submit(api, limit(symbol="MSFT", price="290", tif="day"))
    submit(api, limit(symbol="MSFT", price="280", tif="gtc"))
    client = connect(listening=True)
    expired_ids = fake.end_trading_day()
    updates = client.updates(3)
    assert events(updates) == [("expired", i) for i in expired_ids]
    assert sorted(expired_ids) == sorted([resting["id"], *(leg["id"] for leg in entry["legs"])])
    assert all(u["timestamp"] == u["order"]["expired_at"] for u in updates)
    assert client.nothing_within(0.2)  # the gtc order stays, silently


def test_pending_cancels_cancels_and_replaces_on_the_stream(fake, api, connect):
    first = submit(api, limit(price="149"))
    second = submit(api, limit(price="148"))
    client = connect(listening=True)
    fake.set_cancels_pending(True)
    assert api.delete(f"/v2/orders/{first['id']}").status_code == 204
    [pending] = client.updates(1)
    assert (pending["event"], pending["order"]["status"]) == ("pending_cancel", "pending_cancel")
    fake.release_cancels()
    [canceled] = client.updates(1)
    assert (canceled["event"], canceled["order"]["id"]) == ("canceled", first["id"])

    replacement = api.patch(f"/v2/orders/{second['id']}", json={"limit_price": "147"}).json()
    replaced, new = client.updates(2)
    assert (replaced["event"], replaced["order"]["id"]) == ("replaced", second["id"])
    assert replaced["order"]["replaced_by"] == replacement["id"]
    assert replaced["timestamp"] == replaced["order"]["replaced_at"]
    assert (new["event"], new["order"]["id"]) == ("new", replacement["id"])
    assert new["order"]["replaces"] == second["id"]


def test_orders_queued_while_closed_are_announced_at_the_open(fake, api, connect):
    client = connect(listening=True)
    fake.set_market_open(False)
    order = submit(api, market())
    assert order["status"] == "accepted"
    assert client.nothing_within(0.2)
    assert fake.stream_events == []
    fake.start_trading_day()
    assert events(client.updates(2)) == [("new", order["id"]), ("fill", order["id"])]


def test_every_listening_client_gets_every_event_in_the_same_order(fake, api, connect):
    clients = [connect(listening=True) for _ in range(3)]
    entry = submit(api, bracket())
    submit(api, market(symbol="MSFT", qty="2"))
    fake.set_price("AAPL", "139")  # the stop leg fills, the take-profit is canceled
    sent = [(e.event, e.order_id) for e in fake.stream_events]
    assert len(sent) == 8  # entry: new, fill, 2 legs new; MSFT: new, fill; stop fill, cancel
    assert sent[:2] == [("new", entry["id"]), ("fill", entry["id"])]
    for client in clients:
        assert events(client.updates(len(sent))) == sent
    assert all(e.delivered == 3 for e in fake.stream_events)


# ----- faults ---------------------------------------------------------------------------------


def test_a_dropped_connection_is_seen_by_the_client_and_its_gap_is_not_replayed(
    fake, api, connect
):
    client = connect(listening=True)
    assert fake.drop_stream_connections() == 1
    with pytest.raises(ConnectionClosedError) as closed:
        client.recv(WAIT)
    assert closed.value.code == 1006  # no close frame: a network drop
    fake.wait_for_stream(lambda c: c.connected == 0)

    lost = submit(api, market(qty="1"))
    assert [e.delivered for e in fake.stream_events] == [0, 0]
    again = connect(listening=True)
    kept = submit(api, market(qty="2"))
    assert events(again.updates(2)) == [("new", kept["id"]), ("fill", kept["id"])]
    assert lost["id"] not in {e.order_id for e in fake.stream_events if e.delivered}
    assert fake.stream_clients().accepted == 2


def test_a_paused_stream_loses_events_until_resumed(fake, api, connect):
    client = connect(listening=True)
    fake.pause_stream()
    lost = submit(api, market(qty="1"))
    assert client.nothing_within(0.3)
    fake.resume_stream()
    kept = submit(api, market(qty="2"))
    assert events(client.updates(2)) == [("new", kept["id"]), ("fill", kept["id"])]
    assert [(e.order_id, e.delivered) for e in fake.stream_events] == [
        (lost["id"], 0), (lost["id"], 0), (kept["id"], 1), (kept["id"], 1)
    ]


def test_reset_clears_the_event_log_and_resumes_the_stream_but_keeps_clients(fake, api, connect):
    client = connect(listening=True)
    fake.pause_stream()
    submit(api, market(qty="1"))
    fake.reset()
    assert fake.stream_events == []
    assert fake.stream_clients().listening == 1
    fake.set_price("AAPL", "150")
    order = submit(api, market(qty="1"))
    assert events(client.updates(2)) == [("new", order["id"]), ("fill", order["id"])]


def test_an_injected_fault_refuses_the_upgrade_outside_the_request_log(fake, connect):
    fake.inject("GET", r"^/stream", status=503, times=1)
    with pytest.raises(InvalidStatusCode) as refused:
        connect()
    assert refused.value.status_code == 503
    connect(listening=True)
    assert fake.requests == []
    assert fake.stream_clients().accepted == 1


def test_latency_delays_what_the_stream_sends(fake, connect):
    client = connect()
    fake.latency = 0.2
    sent = time.monotonic()
    assert client.authenticate(fake.api_key, fake.secret_key) == AUTHORIZED
    assert time.monotonic() - sent >= 0.2


def test_stopping_the_fake_closes_stream_clients_cleanly():
    fake = FakeAlpaca().start()
    clients = [WsClient(fake.stream_url) for _ in range(2)]
    try:
        fake.wait_for_stream(lambda c: c.connected == 2)
        fake.stop()
        for client in clients:
            with pytest.raises(ConnectionClosedOK) as closed:
                client.recv(WAIT)
            assert closed.value.code == 1001
        assert fake.stream_clients().connected == 0
    finally:
        for client in clients:
            client.close()
        fake.stop()


# ----- alpaca-trade-api's Stream --------------------------------------------------------------


class SdkStream:
    """alpaca-trade-api's Stream, subscribed to trade_updates and run in a thread."""

    def __init__(self, fake: FakeAlpaca, secret: str | None = None, raw_data: bool = True):
        self.updates: queue.Queue = queue.Queue()
        self.stream = Stream(
            key_id=fake.api_key,
            secret_key=secret or fake.secret_key,
            base_url=URL(fake.url),  # the SDK connects to ws://host:port/stream/
            data_stream_url=URL(fake.url),  # never used: nothing subscribes to market data
            raw_data=raw_data,
        )

        async def on_update(update) -> None:
            self.updates.put((time.monotonic(), update))

        self.stream.subscribe_trade_updates(on_update)
        self.thread = threading.Thread(target=self.stream.run, name="sdk-stream", daemon=True)
        self.thread.start()

    def next(self, timeout: float = WAIT):
        return self.updates.get(timeout=timeout)

    def stop(self, fake: FakeAlpaca) -> None:
        """Stream.stop() only takes effect when the SDK's receive wakes up (it waits up to 5 s
        for a message), so the fake cuts the connections until the thread is gone."""
        self.stream.stop()
        deadline = time.monotonic() + WAIT
        while self.thread.is_alive() and time.monotonic() < deadline:
            fake.drop_stream_connections()
            self.thread.join(0.05)
        assert not self.thread.is_alive()


@contextmanager
def sdk_stream(fake: FakeAlpaca, **kwargs) -> Iterator[SdkStream]:
    sdk = SdkStream(fake, **kwargs)
    try:
        yield sdk
    finally:
        if sdk.thread.is_alive():
            sdk.stop(fake)


def test_the_sdk_stream_gets_a_bracket_fill_at_once_and_the_expiry_at_the_close(fake, api):
    with sdk_stream(fake) as sdk:
        fake.wait_for_stream(lambda c: c.listening == 1)
        posted = time.monotonic()
        entry = submit(api, bracket(time_in_force="day"))
        arrivals = [sdk.next() for _ in range(4)]
        received = [(u["data"]["event"], u["data"]["order"]["id"]) for _, u in arrivals]
        legs = [leg["id"] for leg in entry["legs"]]
        assert received == [("new", entry["id"]), ("fill", entry["id"]),
                            ("new", legs[0]), ("new", legs[1])]
        assert arrivals[1][0] - posted < 1.0
        assert arrivals[1][1]["stream"] == "trade_updates"  # raw_data hands over the envelope

        fake.end_trading_day()
        expired = [sdk.next()[1]["data"] for _ in range(2)]
        assert [(u["event"], u["order"]["id"]) for u in expired] == [("expired", i) for i in legs]
        # Stream.stop() returns once the SDK's receive wakes; the fake's close 1001 wakes it.
        sdk.stream.stop()
        fake.stop()
        sdk.thread.join(WAIT)
        assert not sdk.thread.is_alive()


def test_the_sdk_stream_reconnects_after_a_drop_and_the_gap_stays_lost(fake, api, caplog):
    caplog.set_level(logging.CRITICAL, logger="alpaca_trade_api.stream")  # it logs each retry
    with sdk_stream(fake, raw_data=False) as sdk:
        fake.wait_for_stream(lambda c: c.listening == 1, timeout=WAIT)
        fake.inject("GET", r"^/stream", status=503, times=None)  # keep it out for a while
        fake.drop_stream_connections()
        fake.wait_for_stream(lambda c: c.connected == 0, timeout=WAIT)
        lost = submit(api, market(qty="1"))
        fake.clear_faults()
        fake.wait_for_stream(lambda c: c.listening == 1 and c.accepted >= 2, timeout=WAIT)
        kept = submit(api, market(qty="2"))
        first, second = sdk.next()[1], sdk.next()[1]
        assert (first.event, first.order["id"]) == ("new", kept["id"])  # an Entity of the data
        assert (second.event, second.order["id"], second.qty) == ("fill", kept["id"], "2")
        assert lost["id"] not in {e.order_id for e in fake.stream_events if e.delivered}
        sdk.stop(fake)


def test_the_sdk_stream_is_refused_with_bad_credentials_while_rest_works(fake, api, caplog):
    caplog.set_level(logging.CRITICAL, logger="alpaca_trade_api.stream")  # it logs each retry
    with sdk_stream(fake, secret="not-the-secret") as sdk:
        # The SDK raises "failed to authenticate" inside its loop and connects again at once.
        clients = fake.wait_for_stream(lambda c: c.accepted >= 2)
        assert clients.authorized == 0
        order = submit(api, market(qty="1"))
        assert [e.delivered for e in fake.stream_events] == [0, 0]
        assert order["status"] == "new"
        assert sdk.updates.empty()
        sdk.stop(fake)

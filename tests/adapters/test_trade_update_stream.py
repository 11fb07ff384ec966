"""tradectl's trade-updates stream (tradectl/broker/stream.py) against the fake's websocket: the
updates as Orders through the strict parser, its state, reconnection with back-off, refused keys
that are reported and retried slowly (the SDK alone retries every 10 ms), a prompt stop."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest

from tests.adapters.fake_alpaca.client import Client, bracket, market, submit
from tests.conftest import closed_port
from tests.fakes.alpaca import FakeAlpaca
from tradectl.broker import Order, StreamStatus
from tradectl.broker.stream import STOP_SECONDS, TradeUpdateStream

WAIT = 10.0  # generous bound for what takes milliseconds
pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated")


@pytest.fixture
def api(fake: FakeAlpaca) -> Client:
    return Client(fake)


@pytest.fixture
def open_stream(fake: FakeAlpaca) -> Iterator[Callable[..., TradeUpdateStream]]:
    opened: list[TradeUpdateStream] = []

    def start(secret: str | None = None, url: str | None = None,
              **backoff: float) -> TradeUpdateStream:
        stream = TradeUpdateStream(fake.api_key, secret or fake.secret_key, url or fake.url,
                                   **backoff).start()
        opened.append(stream)
        return stream

    yield start
    for stream in opened:
        stream.stop()


def orders(stream: TradeUpdateStream, count: int) -> list[Order]:
    taken: list[Order] = []
    deadline = time.monotonic() + WAIT
    while len(taken) < count and time.monotonic() < deadline:
        taken += stream.take(deadline - time.monotonic())
    assert len(taken) == count, taken
    return taken


def statuses_until(stream: TradeUpdateStream,
                   done: Callable[[StreamStatus], bool]) -> list[StreamStatus]:
    """Every status the stream showed (as take() hands them over) until `done` holds."""
    seen = [stream.status()]
    deadline = time.monotonic() + WAIT
    while not done(seen[-1]):
        assert time.monotonic() < deadline, seen
        stream.take(0.5)
        if stream.status() != seen[-1]:
            seen.append(stream.status())
    return seen


def connected(status: StreamStatus) -> bool:
    return status.state == "connected"


@pytest.mark.usefixtures("fake")
def test_a_bracket_arrives_as_orders_with_its_legs(
    api: Client, open_stream: Callable[..., TradeUpdateStream]
) -> None:
    stream = open_stream()
    statuses_until(stream, connected)
    entry = submit(api, bracket(qty="2"))
    new, fill, *legs = orders(stream, 4)
    assert (new.id, new.status, fill.id, fill.status) == (entry["id"], "new", entry["id"],
                                                        "filled")
    assert str(fill.filled_qty) == "2" and str(fill.filled_avg_price) == "150"
    assert [leg.id for leg in fill.legs] == [leg["id"] for leg in entry["legs"]]
    assert [(leg.id, leg.status) for leg in legs] == [(leg["id"], "new") for leg in entry["legs"]]
    assert stream.status() == StreamStatus("connected")


def test_an_update_tradectl_cannot_read_is_dropped_and_counted(
    fake: FakeAlpaca, api: Client, open_stream: Callable[..., TradeUpdateStream]
) -> None:
    stream = open_stream()
    statuses_until(stream, connected)
    order = submit(api, market(qty="1"))
    fake.send_trade_update({"event": "fill", "order": {**fake.order(order["id"]),
                                                       "filled_qty": "NaN"}})
    fake.send_trade_update({"event": "fill", "order": None})
    later = submit(api, market(qty="2"))
    taken = orders(stream, 4)  # the two readable orders' new and fill
    assert [o.id for o in taken] == [order["id"]] * 2 + [later["id"]] * 2
    assert stream.status() == StreamStatus("connected", dropped=2)


def test_a_dropped_connection_reconnects_and_its_gap_is_not_replayed(
    fake: FakeAlpaca, api: Client, open_stream: Callable[..., TradeUpdateStream]
) -> None:
    stream = open_stream(first_retry=0.5)
    statuses_until(stream, connected)
    fake.inject("GET", r"^/stream", status=503, times=2)  # kept out for two attempts
    fake.drop_stream_connections()
    seen = statuses_until(stream, lambda s: not connected(s))
    lost = submit(api, market(qty="1"))
    seen += statuses_until(stream, connected)[1:]
    assert seen[0].state == "connected" and seen[-1].state == "connected"
    waits = [float(m.group(1)) for s in seen if s.detail
             and (m := re.search(r"next try in ([0-9.]+) s", s.detail))]
    assert waits == [0.5, 1, 2]  # doubling: the SDK alone would retry every 10 ms
    assert all(s.state == "reconnecting" for s in seen[1:-1])
    assert "HTTP 503" in (seen[-2].detail or "")
    kept = submit(api, market(qty="2"))
    assert {o.id for o in orders(stream, 2)} == {kept["id"]}  # the lost order never arrives
    assert lost["id"] not in {e.order_id for e in fake.stream_events if e.delivered}
    assert fake.stream_clients().accepted == 2


def test_refused_keys_are_reported_and_tried_again_only_after_a_long_wait(
    fake: FakeAlpaca, api: Client, open_stream: Callable[..., TradeUpdateStream]
) -> None:
    stream = open_stream(secret="not-the-secret")
    seen = statuses_until(stream, lambda s: s.state == "unauthorized")
    assert "access key verification failed" in (seen[-1].detail or "")
    assert "next try in 60 s" in (seen[-1].detail or "")
    submit(api, market(qty="1"))  # REST takes the same keys' requests meanwhile
    assert stream.take(1.0) == []
    assert fake.stream_clients().accepted == 1  # one try, no reconnect loop
    assert fake.stream_clients().connected == 0  # and its socket is closed
    started = time.monotonic()
    stream.stop()
    assert time.monotonic() - started < STOP_SECONDS
    assert stream.status() == StreamStatus("off")


def test_an_unreachable_stream_backs_off_and_stops_at_once(
    open_stream: Callable[..., TradeUpdateStream]
) -> None:
    stream = open_stream(url=f"http://127.0.0.1:{closed_port()}", first_retry=0.2)
    seen = statuses_until(stream, lambda s: "next try in 0.4 s" in (s.detail or ""))
    assert "Connect call failed" in (seen[-1].detail or "")
    started = time.monotonic()
    stream.stop()
    assert time.monotonic() - started < STOP_SECONDS
    assert stream.status().state == "off"


def test_stopping_closes_the_connection_promptly(
    fake: FakeAlpaca, open_stream: Callable[..., TradeUpdateStream]
) -> None:
    stream = open_stream()
    statuses_until(stream, connected)
    started = time.monotonic()
    stream.stop()
    assert time.monotonic() - started < STOP_SECONDS  # the SDK alone takes up to 5 s
    fake.wait_for_stream(lambda c: c.connected == 0)
    assert stream.status() == StreamStatus("off")

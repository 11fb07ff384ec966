"""Alerts through an outbox: queued in the same transaction as the decision they report (one row
per configured channel), sent after with no transaction open, retried by the next watch tick,
halt or resume until sent. Each channel is claimed, sent and recorded on its own: an e-mail that
went out is never sent again because the webhook failed, and the reverse.

A sender claims the pending rows (one short transaction), sends them (no transaction; the
channels side by side), then records each result (another short one). A crash between sending
and recording may send an alert twice once the claim's lease runs out; an alert is never lost.

Sending and recording run on a thread of their own, and the caller waits for them at most
`delivery_wait` seconds (DELIVERY_WAIT_SECONDS, or what `waiting_at_most` sets for a loop): a
relay or webhook that stalls never holds up the stop or a watch tick. A delivery still running
then finishes (and records) in the background; if the process ends first, its rows stay claimed
until the lease runs out and the next watch, halt or resume sends them.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from tradectl.db.journal import Journal
from tradectl.db.models import Alert
from tradectl.db.session import Database
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.errors import ExitCode, InputError
from tradectl.notify import Channel, Channels, Notice

# Added to a channel's own worst case when claiming: a claim must outlive the send it covers.
LEASE_MARGIN = timedelta(seconds=30)
SETTINGS_HINT = "set SMTP_HOST and ALERT_EMAIL_TO, or ALERT_WEBHOOK_URL"
NOT_CONFIGURED = f"not configured ({SETTINGS_HINT})"
RETRIED = "retried by watch, halt or resume"
# How long halt (after its flatten and record) or resume waits for its alert to go out.
DELIVERY_WAIT_SECONDS = 5.0
# A watch tick waits this long at most (a quarter of its interval if less) for its alerts, the
# stop's included; a slower channel goes on in the background and a later tick counts it.
LOOP_WAIT_SECONDS = 2.0
DRAIN_SECONDS = 30.0  # a loop's exit waits this long at most for deliveries still under way

_T = TypeVar("_T")
_wait: ContextVar[float] = ContextVar("alert_delivery_wait", default=DELIVERY_WAIT_SECONDS)
_running: set[threading.Thread] = set()  # deliveries still under way in this process
_running_lock = threading.Lock()


@contextmanager
def waiting_at_most(seconds: float) -> Iterator[None]:
    """Deliveries started inside (including the stop's own alert) wait at most `seconds`."""
    token = _wait.set(seconds)
    try:
        yield
    finally:
        _wait.reset(token)


def loop_wait(interval: float) -> float:
    return max(0.05, min(LOOP_WAIT_SECONDS, interval / 4))


def drain(timeout: float = DRAIN_SECONDS) -> bool:
    """Wait, up to `timeout` in all, for the deliveries still under way (before a process
    that started them exits). True when none is left."""
    end = time.monotonic() + timeout
    with _running_lock:
        threads = list(_running)
    for thread in threads:
        thread.join(max(end - time.monotonic(), 0))
    return not any(t.is_alive() for t in threads)


def _within(work: Callable[[], _T], seconds: float) -> tuple[bool, _T | None]:
    """Run `work` on its own thread; (True, its result) if it ended within `seconds`, else
    (False, None) while it goes on. Its exception is raised here when it ended in time."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as err:  # handed to the waiting caller
            outcome["error"] = err
        finally:
            with _running_lock:
                _running.discard(threading.current_thread())

    thread = threading.Thread(target=run, name="tradectl-alerts", daemon=True)
    with _running_lock:
        _running.add(thread)
    thread.start()
    thread.join(max(seconds, 0.0))
    if thread.is_alive():
        return False, None
    if "error" in outcome:
        raise outcome["error"]
    return True, outcome["value"]


def _still_sending(seconds: float) -> str:
    return f"still sending after {seconds:g}s (a slow channel)"


@dataclass(frozen=True)
class ChannelDelivery:
    """One channel's part of a delivery: sent now, still pending, and why not."""

    channel: str
    sent: int
    pending: int
    last_error: str | None


@dataclass(frozen=True)
class Delivery:
    channels: tuple[ChannelDelivery, ...] = ()

    @property
    def sent(self) -> int:
        return sum(c.sent for c in self.channels)

    @property
    def pending(self) -> int:
        return sum(c.pending for c in self.channels)

    @property
    def last_error(self) -> str | None:
        return next((f"{c.channel}: {c.last_error}" for c in self.channels if c.last_error),
                    None)


def queue_alert(journal: Journal, channels: Channels | None, kind: str, subject: str,
                body: str, cycle_id: int | None = None,
                facts: Mapping[str, Any] | None = None) -> bool:
    """Write the alert to the outbox, once per channel; without a channel it is logged as
    skipped. True if queued."""
    if not channels:
        journal.record("alert_skipped", f"alert not sent, no alert channel ({SETTINGS_HINT}): "
                       f"{subject}", cycle_id=cycle_id)
        return False
    for channel in channels:
        journal.queue_alert(kind, subject, body, channel=channel.name,
                            recipients=channel.recipients, cycle_id=cycle_id,
                            facts=dict(facts) if facts else None)
    return True


def deliver_pending(db: Database, channels: Channels | None, *,
                    clock: Clock = SYSTEM_CLOCK) -> Delivery:
    """Send every queued alert nobody else is sending, oldest first, each channel on its own and
    all side by side. Never raises for channel faults: they are recorded on the alert, which
    stays pending for that channel only."""
    if not channels:
        return Delivery()
    claims: dict[str, list[Notice]] = {}
    waiting: dict[str, int] = {}
    with db.transaction() as journal:
        for channel in channels:
            count = len(journal.pending_alerts(channel.name))
            if count:
                lease = timedelta(seconds=channel.send_budget(count)) + LEASE_MARGIN
                claims[channel.name] = [notice(a) for a in
                                        journal.claim_alerts(channel.name, clock.now(), lease)]
                waiting[channel.name] = count
        journal.commit()
    sending = [c for c in channels if claims.get(c.name)]
    if not sending:  # nothing pending, or another process is sending it
        return Delivery(tuple(ChannelDelivery(name, 0, count, None)
                              for name, count in waiting.items()))
    claimed = {c.name: claims[c.name] for c in sending}
    wait = _wait.get()
    done, delivery = _within(
        lambda: record_delivery(db, claimed, _send_side_by_side(sending, claims), clock), wait)
    if done and delivery is not None:
        return delivery
    return Delivery(tuple(ChannelDelivery(name, 0, len(notices), _still_sending(wait))
                          for name, notices in claimed.items()))


def _send_side_by_side(channels: Sequence[Channel], claims: dict[str, list[Notice]],
                       ) -> dict[str, dict[int, str | None]]:
    """A slow channel (a webhook timing out) must not hold up the others."""
    if len(channels) == 1:
        only = channels[0]
        return {only.name: only.send(claims[only.name])}
    with ThreadPoolExecutor(max_workers=len(channels), thread_name_prefix="alerts") as pool:
        futures = {c.name: pool.submit(c.send, claims[c.name]) for c in channels}
        return {name: future.result() for name, future in futures.items()}


def record_delivery(db: Database, claims: dict[str, list[Notice]],
                    results: dict[str, dict[int, str | None]], clock: Clock) -> Delivery:
    deliveries = []
    with db.transaction() as journal:
        for name, notices in claims.items():
            answers = results.get(name, {})
            sent = [n.key for n in notices if n.key in answers and answers[n.key] is None]
            failed: dict[str, list[int]] = defaultdict(list)
            for n in notices:
                if n.key not in sent:
                    failed[answers.get(n.key) or "no answer from the channel"].append(n.key)
            journal.alerts_sent(sent, clock.now())
            for reason, keys in failed.items():
                journal.alerts_not_sent(keys, reason)
            first = next(iter(failed), None)
            if first is not None:
                count = sum(len(keys) for keys in failed.values())
                journal.record("alert_failed", f"{count} {name} alert(s) still queued: {first}")
            deliveries.append(ChannelDelivery(name, len(sent), len(notices) - len(sent), first))
        journal.commit()
    return Delivery(tuple(deliveries))


def notice(alert: Alert) -> Notice:
    return Notice(alert.id, alert.subject, alert.body, kind=alert.kind, facts=alert.facts,
                  created_at=alert.created_at, cycle_id=alert.cycle_id)


def send_directly(channels: Channels, subject: str, body: str, *, kind: str, clock: Clock,
                  facts: Mapping[str, Any] | None = None) -> dict[str, str | None]:
    """One alert to every channel at once, without the outbox (the database could not take
    it, or it is a test): per channel, None when sent or why not."""
    message = Notice(0, subject, body, kind=kind, facts=facts, created_at=clock.now())
    wait = _wait.get()
    done, results = _within(
        lambda: _send_side_by_side(list(channels), {c.name: [message] for c in channels}), wait)
    if not done or results is None:
        return {c.name: _still_sending(wait) for c in channels}
    return {name: answer.get(0, "no answer from the channel") for name, answer in results.items()}


def delivery_summary(delivery: Delivery) -> str:
    """How a just-queued alert fared, for a command's report: each channel's part when one
    failed."""
    if delivery.last_error is None:
        return "sent"
    if len(delivery.channels) == 1:
        return f"queued, not sent ({delivery.last_error}); {RETRIED}"
    parts = [f"{c.channel} sent" if c.last_error is None else
             f"{c.channel} queued, not sent ({c.last_error})" for c in delivery.channels]
    return "; ".join(parts) + f"; {RETRIED}"


def direct_summary(results: Mapping[str, str | None]) -> str:
    """How an alert sent without the outbox fared, channel by channel."""
    return "; ".join(f"{name} sent directly" if error is None else f"{name} NOT SENT ({error})"
                     for name, error in results.items())


@dataclass(frozen=True)
class ChannelTest:
    channel: str
    recipients: str  # as stored and shown: never a secret
    error: str | None  # None: the channel took the test alert

    @property
    def sent(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class AlertTestReport:
    channels: tuple[ChannelTest, ...]

    @property
    def exit_code(self) -> ExitCode:
        """4 when a channel did not take it: like a broker, a remote end refused or was away."""
        return ExitCode.BROKER if any(not c.sent for c in self.channels) else ExitCode.OK


def send_test_alert(channels: Channels | None, *, trading_mode: str,
                    clock: Clock = SYSTEM_CLOCK) -> AlertTestReport:
    """A test alert to every channel, directly (no outbox: a test is not retried later)."""
    if not channels:
        raise InputError(f"no alert channel is configured: {SETTINGS_HINT}")
    at = clock.now()
    subject = "tradectl test alert: alerts reach you here"
    body = (f"A test sent by `tradectl alert test` at {at:%Y-%m-%d %H:%M:%S} UTC "
            f"({trading_mode} trading).\nNothing happened to the account. An emergency stop "
            f"is alerted on every channel configured: {', '.join(channels.names)}.\n")
    # A test waits for each channel's own worst case: it is what the user asked to see.
    with waiting_at_most(max(c.send_budget(1) for c in channels) + 1):
        results = send_directly(channels, subject, body, kind="test", clock=clock,
                                facts={"test": True, "trading_mode": trading_mode})
    return AlertTestReport(tuple(ChannelTest(c.name, c.recipients, results.get(c.name))
                                 for c in channels))

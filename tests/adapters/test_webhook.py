"""The webhook channel against a local HTTP server: what it POSTs, how it fails, and that its URL
(the hook's token) stays out of every error text, repr and log record."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import closed_port
from tests.support.network import SilentServer
from tests.support.webhook import TOKEN, WebhookSink
from tradectl.notify import Notice
from tradectl.notify.webhook import MAX_REDIRECTS, WebhookChannel, _Redact, _same_host

STOP = Notice(7, "EMERGENCY STOP - trading halted: all closed or closing",
              "tradectl emergency stop at ...\nReason: test\n", kind="emergency_stop",
              facts={"reason": "test", "symbols": [{"symbol": "AAPL", "state": "closed"}]},
              created_at=datetime(2026, 12, 2, 15, 30, tzinfo=UTC), cycle_id=3)
WARNING = Notice(8, "80% of the daily loss limit", "body", kind="loss_warning")


def no_token(*texts: object) -> bool:
    secret = TOKEN.split("/")[-1]
    return all(secret not in str(text) for text in texts)


def test_the_body_suits_slack_discord_and_ntfy(webhook: WebhookSink) -> None:
    channel = WebhookChannel(webhook.url, timeout=3)
    assert channel.send([STOP, WARNING]) == {7: None, 8: None}
    first, second = webhook.received
    assert first.path == webhook.path
    body = first.json
    # Slack reads `text`, Discord `content`: the one-line summary
    assert body["text"] == body["content"] == STOP.subject
    assert body["allowed_mentions"] == {"parse": []}  # no @everyone from a reason's text
    assert body["tradectl"] == {
        "alert_id": 7, "kind": "emergency_stop", "summary": STOP.subject,
        "created_at": "2026-12-02T15:30:00+00:00", "cycle_id": 3,
        "facts": {"reason": "test", "symbols": [{"symbol": "AAPL", "state": "closed"}]},
        "body": STOP.body}
    # ntfy: the summary as the title, a stop is urgent
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["Title"] == STOP.subject and first.headers["Priority"] == "urgent"
    assert second.headers["Priority"] == "high"


def test_a_server_error_is_reported_without_the_url_it_echoed(webhook: WebhookSink) -> None:
    webhook.fail(500, times=1)
    results = WebhookChannel(webhook.url, timeout=3).send([STOP, WARNING])
    assert results[7] is not None and results[7].startswith("HTTP 500: <h1>500</h1> no hook at")
    assert no_token(results) and results[8] is None  # a 500 does not stop the batch


def test_a_slow_server_is_bounded_by_the_timeout_and_the_rest_is_not_tried(
    webhook: WebhookSink,
) -> None:
    webhook.slow(3.0)
    results = WebhookChannel(webhook.url, timeout=0.3).send([STOP, WARNING])
    assert results == {7: "no answer within 0.3s (ALERT_WEBHOOK_TIMEOUT)",
                       8: "not tried: no answer within 0.3s (ALERT_WEBHOOK_TIMEOUT)"}
    assert webhook.attempts == 1


def test_a_server_that_never_answers_is_bounded_too() -> None:
    with SilentServer() as silent:
        url = f"http://127.0.0.1:{silent.port}/services/{TOKEN}"
        results = WebhookChannel(url, timeout=0.3).send([STOP])
    assert results == {7: "no answer within 0.3s (ALERT_WEBHOOK_TIMEOUT)"}


def test_an_unreachable_hook_says_so_without_its_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}/services/{TOKEN}"
    results = WebhookChannel(url, timeout=1).send([STOP])
    assert results == {7: "could not connect (refused, or unknown host)"}


def test_a_redirect_on_the_same_host_is_followed_with_the_same_post(
    webhook: WebhookSink,
) -> None:
    moved = f"/services/{TOKEN}-moved"
    webhook.redirect(308, moved)
    assert WebhookChannel(webhook.url, timeout=3).send([STOP]) == {7: None}
    (received,) = webhook.received
    assert received.path == moved and received.json["text"] == STOP.subject


def test_a_redirect_to_another_host_is_not_followed_and_not_shown(webhook: WebhookSink) -> None:
    webhook.redirect(301, f"https://elsewhere.example.test/services/{TOKEN}")
    results = WebhookChannel(webhook.url, timeout=3).send([STOP])
    assert results[7] == ("HTTP 301: redirected to https://elsewhere.example.test/…, which is "
                          "not followed (another host, or https to http); set ALERT_WEBHOOK_URL "
                          "to the final URL")
    assert webhook.received == []


def test_a_redirect_loop_ends(webhook: WebhookSink) -> None:
    webhook.redirect(307, webhook.path)
    results = WebhookChannel(webhook.url, timeout=3).send([STOP])
    assert results[7] == f"more than {MAX_REDIRECTS} redirects; set ALERT_WEBHOOK_URL to the " \
                         "final URL"
    assert webhook.attempts == 1 + MAX_REDIRECTS


@pytest.mark.parametrize("here, there, followed", [
    ("http://h.test/a", "https://h.test/b", True),  # an upgrade to TLS on the same host
    ("https://h.test/a", "https://H.TEST/b", True),
    ("https://h.test/a", "http://h.test/a", False),  # never down to plain text
    ("https://h.test/a", "https://other.test/a", False),
    ("https://h.test/a", "ftp://h.test/a", False),
])
def test_which_redirects_are_followed(here: str, there: str, followed: bool) -> None:
    assert _same_host(here, there) is followed


def test_the_url_is_out_of_the_repr_and_the_debug_log(
    webhook: WebhookSink, caplog: pytest.LogCaptureFixture,
) -> None:
    channel = WebhookChannel(webhook.url, timeout=3)
    assert channel.recipients == f"http://127.0.0.1:{webhook.port}/…"
    assert no_token(repr(channel), vars(channel).keys())
    webhook.fail(404, times=1)
    with caplog.at_level(logging.DEBUG):
        channel.send([STOP])
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # the log was really on
    assert no_token(caplog.text)


def test_the_token_scrub_ignores_case() -> None:
    url = f"https://hooks.example.test/services/{TOKEN}"
    redact = _Redact(url)
    secret = TOKEN.split("/")[-1]
    for echoed in (url.upper(), url.lower(), f"bad token {secret.swapcase()}!"):
        scrubbed = redact.scrub(echoed)
        assert secret.lower() not in scrubbed.lower(), scrubbed
    assert redact.scrub("HTTP 500: nothing secret") == "HTTP 500: nothing secret"


def test_a_redirect_with_a_huge_body_is_read_no_further_than_its_start(
    webhook: WebhookSink,
) -> None:
    webhook.redirect(307, "https://elsewhere.test/x", body_size=200 * 1024 * 1024)
    started = time.monotonic()
    results = WebhookChannel(webhook.url, timeout=3).send([STOP])
    assert time.monotonic() - started < 2.5  # 200 MB would take far longer to read
    assert results[7] is not None and "not followed" in results[7] and no_token(results)

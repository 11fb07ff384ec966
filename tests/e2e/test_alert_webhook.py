"""Webhook alerts end to end: the real commands, the fake Alpaca, an SMTP sink and a local webhook
receiver, on both databases."""

from __future__ import annotations

import pytest

from tests.conftest import Cli, SmtpSink, closed_port, rows
from tests.fakes.alpaca import FakeAlpaca
from tests.support.webhook import TOKEN, WebhookSink
from tradectl.db.models import Alert

OPEN_AAPL = ("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160")


@pytest.mark.usefixtures("fake")
def test_a_stop_reaches_mail_and_webhook_and_a_500_is_delivered_by_the_next_tick(
    trader: Cli, smtp: SmtpSink, webhook: WebhookSink,
) -> None:
    trader.env.update({**smtp.env(), "ALERT_WEBHOOK_URL": webhook.url})
    assert trader(*OPEN_AAPL).code == 0
    webhook.fail(500, times=1)
    halt = trader("halt", "--reason", "news", "--json")
    assert halt.code == 0, halt.output  # a failed alert never fails the stop
    assert halt.json()["alert"] == ("e-mail sent; webhook queued, not sent (HTTP 500: <h1>500</h1> "
                                    "no hook at …); retried by watch, halt or resume")
    assert len(smtp.messages) == 1 and webhook.received == []
    url = trader.env["DATABASE_URL"]
    assert [(a.channel, a.status) for a in rows(url, Alert)] == [("e-mail", "sent"),
                                                                 ("webhook", "pending")]
    tick = trader("watch", "--once", "--json")
    assert tick.code == 0, tick.output
    (posted,) = webhook.received
    assert posted.json["text"] == smtp.messages[0]["Subject"]
    assert posted.json["tradectl"]["facts"]["symbols"][0] == {
        "symbol": "AAPL", "state": "closed", "external": False,
        "close_order_id": posted.json["tradectl"]["facts"]["symbols"][0]["close_order_id"],
        "error": None}
    assert len(smtp.messages) == 1  # the e-mail was not sent again
    assert [(a.channel, a.status, a.attempts) for a in rows(url, Alert)] == [
        ("e-mail", "sent", 1), ("webhook", "sent", 2)]
    assert all(TOKEN not in f"{a.recipients} {a.last_error}" for a in rows(url, Alert))


def test_a_slow_webhook_is_cut_at_its_timeout_and_the_stop_completes(
    trader: Cli, fake: FakeAlpaca, webhook: WebhookSink,
) -> None:
    trader.env.update({"ALERT_WEBHOOK_URL": webhook.url, "ALERT_WEBHOOK_TIMEOUT": "0.5"})
    assert trader(*OPEN_AAPL).code == 0
    webhook.slow(5.0)
    halt = trader("halt", "--reason", "news", "--json")
    assert halt.code == 0 and fake.positions_list() == []
    assert halt.json()["alert"] == ("queued, not sent (webhook: no answer within 0.5s "
                                    "(ALERT_WEBHOOK_TIMEOUT)); retried by watch, halt or resume")
    webhook.slow(0)
    assert trader("resume", "--reason", "reviewed").code == 0  # resume delivers the outbox
    assert [r.json["tradectl"]["kind"] for r in webhook.received] == ["emergency_stop"]


def test_alert_test_says_what_each_channel_did(cli: Cli, smtp: SmtpSink,
                                               webhook: WebhookSink) -> None:
    cli.env.update({**smtp.env(), "ALERT_WEBHOOK_URL": webhook.url})
    result = cli("alert", "test")
    assert result.code == 0, result.output
    assert result.stdout.splitlines() == [
        "e-mail   trader@example.test  ✓ sent",
        f"webhook  http://127.0.0.1:{webhook.port}/…  ✓ sent",
        "every channel took the test alert"]
    assert smtp.messages[0]["Subject"] == webhook.received[0].json["text"] == (
        "tradectl test alert: alerts reach you here")
    unreachable = f"http://127.0.0.1:{closed_port()}/services/{TOKEN}"
    failed = cli("alert", "test", "--json", env={"ALERT_WEBHOOK_URL": unreachable})
    assert failed.code == 4
    assert failed.json()["channels"][1] == {
        "channel": "webhook", "recipients": unreachable.split("/services")[0] + "/…",
        "sent": False, "error": "could not connect (refused, or unknown host)"}
    assert rows(cli.env["DATABASE_URL"], Alert) == []  # a test is not queued


def test_alert_test_without_a_channel_and_a_bad_url_are_input_errors(cli: Cli) -> None:
    none = cli("alert", "test")
    assert none.code == 2 and "no alert channel is configured" in none.stderr
    bad = cli("alert", "test", env={"ALERT_WEBHOOK_URL": f"hooks.slack.com/services/{TOKEN}"})
    assert bad.code == 2 and bad.stderr.startswith("error: ALERT_WEBHOOK_URL must be an http")
    assert TOKEN not in bad.output

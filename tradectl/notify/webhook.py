"""Alerts POSTed as JSON to a webhook (ALERT_WEBHOOK_URL): Slack and Discord incoming webhooks and
ntfy topics take the body as it is.

The URL carries the hook's token, so it is a secret: it is shown only as scheme and host
(`config.mask_url`), never in an error text, a repr or a log record (httpcore's DEBUG lines are
redacted while a send runs; the scrub ignores case). A redirect is followed only to the same
host (http -> https allowed, never back), with the same POST, at most MAX_REDIRECTS times.

Each POST is bounded whole by ALERT_WEBHOOK_TIMEOUT (connect to last byte, `tradectl.net`), and
only the first 2 KB of an answer are read: a redirect or an error page cannot be large.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

from tradectl import __version__
from tradectl.config import mask_url
from tradectl.net import BoundedHttp, HttpFailure
from tradectl.notify import Notice
from tradectl.notify.http_batch import Unreachable, post_each
from tradectl.notify.redact import Redact

MAX_REDIRECTS = 3
CONNECT_TIMEOUT_CAP = 5.0
DISCORD_CONTENT_LIMIT = 2000
_REDIRECTS = frozenset({301, 302, 307, 308})
_ERROR_TEXT_LIMIT = 160
_READ_LIMIT = 2048  # bytes of an answer read: its status, Location and the start of its text



class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._connect_timeout = min(timeout, CONNECT_TIMEOUT_CAP)
        self._redact = _Redact(url)

    def __repr__(self) -> str:
        return f"WebhookChannel({self.recipients})"

    @property
    def recipients(self) -> str:
        return mask_url(self._url)

    def send_budget(self, count: int) -> float:
        return count * (1 + MAX_REDIRECTS) * self._timeout

    def send(self, notices: Sequence[Notice]) -> dict[int, str | None]:
        return post_each(self._url, self._redact, notices, self._post)

    def _post(self, session: BoundedHttp, notice: Notice) -> str | None:
        """None when delivered, else why not (scrubbed of the URL)."""
        data = json.dumps(payload(notice)).encode()
        headers = {"Content-Type": "application/json", "User-Agent": f"tradectl/{__version__}",
                   **ntfy_headers(notice)}
        url = self._url
        for _ in range(1 + MAX_REDIRECTS):
            try:
                answer = session.request("POST", url, content=data, headers=headers,
                                         total=self._timeout, connect=self._connect_timeout,
                                         max_bytes=_READ_LIMIT, truncate=True)
            except HttpFailure as err:
                if err.kind == "url":
                    return "the request could not be made (check ALERT_WEBHOOK_URL)"
                raise Unreachable(_failure(err, self._timeout)) from None
            status, location = answer.status, answer.headers.get("location")
            text = answer.content.decode("utf-8", "replace")
            if 200 <= status < 300:
                return None
            if status in _REDIRECTS and location:
                target = urljoin(url, location)
                if not _same_host(url, target):
                    return (f"HTTP {status}: redirected to {mask_url(target)}, which is not "
                            "followed (another host, or https to http); set ALERT_WEBHOOK_URL "
                            "to the final URL")
                url = target
                continue
            detail = self._redact.scrub(" ".join(text.split()))[:_ERROR_TEXT_LIMIT]
            return f"HTTP {status}" + (f": {detail}" if detail else "")
        return f"more than {MAX_REDIRECTS} redirects; set ALERT_WEBHOOK_URL to the final URL"


def payload(notice: Notice) -> dict[str, Any]:
    """The JSON body: `text` (Slack) and `content` (Discord) carry the one-line summary; the
    structured facts ride under `tradectl`, which those services ignore."""
    summary = " ".join(notice.subject.split())
    return {
        "text": summary,
        "content": summary[:DISCORD_CONTENT_LIMIT],
        "allowed_mentions": {"parse": []},  # Discord: no @everyone from an alert's text
        "tradectl": {
            "alert_id": notice.key,
            "kind": notice.kind,
            "summary": summary,
            "created_at": notice.created_at.isoformat() if notice.created_at else None,
            "cycle_id": notice.cycle_id,
            "facts": dict(notice.facts or {}),
            "body": notice.body,
        },
    }


def ntfy_headers(notice: Notice) -> Mapping[str, str]:
    """ntfy publishes the body as the message: the summary becomes its title, and a stop is
    urgent. Others ignore these headers. Header values must be ASCII."""
    title = notice.subject.encode("ascii", "replace").decode()
    urgent = notice.kind in ("emergency_stop", "unprotected", "gap_through_stop")
    return {"Title": " ".join(title.split())[:250], "Priority": "urgent" if urgent else "high",
            "Tags": "rotating_light" if urgent else "warning"}


def in_clear(url: str) -> bool:
    """An http:// hook off this machine: its token and each alert cross the network in clear.
    Warned about (check-alpaca), not refused: a refusal at start-up would stop `halt` itself,
    and a LAN ntfy over http is a choice the user can make."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "http" and not (host == "localhost" or host == "::1"
                                           or host.startswith("127."))


def _same_host(current: str, target: str) -> bool:
    here, there = urlsplit(current), urlsplit(target)
    if there.scheme not in ("http", "https") or (here.scheme, there.scheme) == ("https", "http"):
        return False
    return (here.hostname or "").lower() == (there.hostname or "").lower()


def _failure(err: HttpFailure, timeout: float) -> str:
    if err.kind == "timeout":
        return f"no answer within {timeout:g}s (ALERT_WEBHOOK_TIMEOUT)"
    if err.kind == "broken":
        return "the connection broke off"
    return err.message  # no connection, or TLS failed: no URL in it


class _Redact(Redact):
    """Takes the URL's secret parts out of library log records and of a server's error text."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        pieces: set[str] = {url, parts.path, parts.query, parts.netloc.rpartition("@")[0]}
        pieces |= {s for s in re.split(r"[/?&=]", f"{parts.path}?{parts.query}") if len(s) >= 4}
        super().__init__(pieces)

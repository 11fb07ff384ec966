"""Alerts POSTed as JSON to a webhook (ALERT_WEBHOOK_URL): Slack and Discord incoming webhooks and
ntfy topics take the body as it is.

The URL carries the hook's token, so it is a secret: it is shown only as scheme and host
(`config.mask_url`), never in an error text, a repr or a log record (urllib3's DEBUG lines are
redacted while a send runs). A redirect is followed only to the same host (http -> https
allowed, never back), with the same POST, at most MAX_REDIRECTS times.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from tradectl import __version__
from tradectl.config import mask_url
from tradectl.notify import Notice

MAX_REDIRECTS = 3
CONNECT_TIMEOUT_CAP = 5.0
DISCORD_CONTENT_LIMIT = 2000
_REDIRECTS = frozenset({301, 302, 307, 308})
_ERROR_TEXT_LIMIT = 160


class _Unreachable(Exception):
    """No answer: the next notices of the batch would wait as long, so they are not tried."""


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
        return count * (1 + MAX_REDIRECTS) * (self._connect_timeout + self._timeout)

    def send(self, notices: Sequence[Notice]) -> dict[int, str | None]:
        results: dict[int, str | None] = {}
        with self._redact.installed(), requests.Session() as session:
            for notice in notices:
                try:
                    results[notice.key] = self._post(session, notice)
                except _Unreachable as err:
                    results[notice.key] = str(err)
                    for rest in notices:
                        results.setdefault(rest.key, f"not tried: {err}")
                    break
        return results

    def _post(self, session: requests.Session, notice: Notice) -> str | None:
        """None when delivered, else why not (scrubbed of the URL)."""
        data = json.dumps(payload(notice)).encode()
        headers = {"Content-Type": "application/json", "User-Agent": f"tradectl/{__version__}",
                   **ntfy_headers(notice)}
        url = self._url
        for _ in range(1 + MAX_REDIRECTS):
            try:
                with session.post(url, data=data, headers=headers, allow_redirects=False,
                                  timeout=(self._connect_timeout, self._timeout),
                                  stream=True) as response:  # the answer's start is enough
                    status, location = response.status_code, response.headers.get("Location")
                    text = next(response.iter_content(2048), b"").decode("utf-8", "replace")
            except requests.exceptions.ConnectTimeout:
                raise _Unreachable(f"no connection within {self._connect_timeout:g}s") from None
            except requests.exceptions.ReadTimeout:
                raise _Unreachable(f"no answer within {self._timeout:g}s "
                                   "(ALERT_WEBHOOK_TIMEOUT)") from None
            except requests.exceptions.SSLError:
                raise _Unreachable("TLS failed (certificate not trusted, or not TLS)") from None
            except requests.exceptions.ConnectionError as err:
                raise _Unreachable(_connection_error(err)) from None
            except (requests.exceptions.RequestException, ValueError):
                return "the request could not be made (check ALERT_WEBHOOK_URL)"
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


def _same_host(current: str, target: str) -> bool:
    here, there = urlsplit(current), urlsplit(target)
    if there.scheme not in ("http", "https") or (here.scheme, there.scheme) == ("https", "http"):
        return False
    return (here.hostname or "").lower() == (there.hostname or "").lower()


def _connection_error(err: requests.exceptions.ConnectionError) -> str:
    from urllib3.exceptions import NewConnectionError

    reason = getattr(err.args[0], "reason", None) if err.args else None
    if isinstance(reason, NewConnectionError):
        return "could not connect (refused, or unknown host)"
    return "the connection broke off"


class _Redact(logging.Filter):
    """Takes the URL's secret parts out of library log records and of a server's error text."""

    _LOGGERS = ("urllib3", "requests")

    def __init__(self, url: str) -> None:
        super().__init__()
        parts = urlsplit(url)
        pieces = {url, parts.path, parts.query, parts.netloc.rpartition("@")[0]}
        pieces |= {s for s in re.split(r"[/?&=]", f"{parts.path}?{parts.query}") if len(s) >= 4}
        self._pieces = sorted((p for p in pieces if p), key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for piece in self._pieces:
            text = text.replace(piece, "…")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True

    def installed(self) -> _Installed:
        return _Installed(self)


class _Installed:
    """The filter on every urllib3 / requests logger for the duration of a send."""

    def __init__(self, redact: _Redact) -> None:
        self._redact = redact
        self._loggers: list[logging.Logger] = []

    def __enter__(self) -> None:
        manager = logging.root.manager
        names = [n for n in manager.loggerDict if n.split(".")[0] in _Redact._LOGGERS]
        self._loggers = [logging.getLogger(n) for n in {*names, *_Redact._LOGGERS}]
        for logger in self._loggers:
            logger.addFilter(self._redact)

    def __exit__(self, *_exc: object) -> None:
        for logger in self._loggers:
            logger.removeFilter(self._redact)

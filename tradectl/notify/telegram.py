"""Alerts as Telegram messages: the Bot API's `sendMessage` (POST {api}/bot{token}/sendMessage,
JSON `chat_id` and `text`), to https://api.telegram.org or a self-hosted Bot API server
(ALERT_TELEGRAM_API_URL).

The bot's token sits in the URL's path, so it is a secret: it is never in an error text, a repr,
a log record (httpcore's DEBUG lines are redacted while a send runs) or a stored row; the channel is
shown as the chat and the API's host. The text is plain (no parse_mode: an alert's reason cannot
turn into markup) and cut at Telegram's 4096 characters, saying so at its end: one alert is one
message, so its delivery is one record. Telegram answers `{"ok": true, ...}`, or `ok: false`
with `error_code` and `description`; a 429 carries `parameters.retry_after`: the notices left
in the batch are not tried, and this channel sends nothing more until that wait is over (a
`watch` loop keeps its channel; the outbox keeps the alerts).

Each POST is bounded whole by ALERT_TELEGRAM_TIMEOUT (`tradectl.net`); TLS is verified; only
the first 16 KB of an answer are read.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from tradectl import __version__
from tradectl.config import mask_url
from tradectl.net import BoundedHttp, HttpFailure
from tradectl.notify import Notice
from tradectl.notify.http_batch import Unreachable, post_each
from tradectl.notify.redact import Redact

TEXT_LIMIT = 4096  # characters, Telegram's limit for one message
CUT_NOTE = "\n… (cut at Telegram's 4096 characters: `tradectl log` has the whole alert)"
CONNECT_TIMEOUT_CAP = 5.0
_READ_LIMIT = 16 * 1024  # an answer echoes the message sent: 4096 characters and its fields
_ERROR_TEXT_LIMIT = 200
MAX_QUIET = 3600.0  # seconds: a retry_after beyond this is not waited out in one process



class TelegramChannel:
    name = "telegram"

    def __init__(self, token: str, chat_id: str, api_url: str, timeout: float) -> None:
        self._token, self._chat_id = token, chat_id
        self._api = api_url.rstrip("/")
        self._timeout = timeout
        self._connect_timeout = min(timeout, CONNECT_TIMEOUT_CAP)
        secret = token.partition(":")[2]  # the part after the bot's number
        self._redact = Redact({token, quote(token, safe=""), secret})
        self._quiet_until = 0.0  # monotonic: Telegram's retry_after, honoured in this process
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TelegramChannel({self.recipients})"

    @property
    def recipients(self) -> str:
        return f"chat {self._chat_id} via {mask_url(self._api)}"

    def send_budget(self, count: int) -> float:
        return count * self._timeout

    def send(self, notices: Sequence[Notice]) -> dict[int, str | None]:
        with self._lock:
            wait = self._quiet_until - time.monotonic()
        if wait > 0:
            return {n.key: f"not tried: Telegram asked to wait {math.ceil(wait)}s more (HTTP 429)"
                    for n in notices}
        return post_each(self._api, self._redact, notices, self._post)

    def _post(self, session: BoundedHttp, notice: Notice) -> str | None:
        """None when Telegram took it, else why not (never with the token)."""
        data = json.dumps({"chat_id": self._chat_id,
                           "text": message_text(notice)}).encode()
        headers = {"Content-Type": "application/json", "User-Agent": f"tradectl/{__version__}"}
        try:
            answer = session.request("POST", f"{self._api}/bot{self._token}/sendMessage",
                                     content=data, headers=headers, total=self._timeout,
                                     connect=self._connect_timeout, max_bytes=_READ_LIMIT,
                                     truncate=True)
        except HttpFailure as err:
            if err.kind == "url":
                return "the request could not be made (check ALERT_TELEGRAM_API_URL)"
            raise Unreachable(self._failure(err)) from None
        reply = _json(answer.content)
        if 200 <= answer.status < 300 and reply.get("ok") is True:
            return None
        code = reply.get("error_code") if isinstance(reply.get("error_code"), int) else None
        description = reply.get("description")
        detail = " ".join(str(description).split()) if isinstance(description, str) else (
            " ".join(answer.content.decode("utf-8", "replace").split()))
        error = self._redact.scrub(f"HTTP {answer.status}" + (
            f" (error_code {code})" if code is not None and code != answer.status else "") + (
            f": {detail}" if detail else ""))[:_ERROR_TEXT_LIMIT]
        retry_after = _retry_after(reply)
        if answer.status == 429 or code == 429:
            with self._lock:
                self._quiet_until = time.monotonic() + min(retry_after or 1, MAX_QUIET)
            wait = f"; Telegram asks to wait {retry_after}s" if retry_after is not None else ""
            raise Unreachable(f"{error}{wait}")
        if 200 <= answer.status < 300:
            return f"Telegram did not confirm it (ok is not true): {error}"
        return error

    def _failure(self, err: HttpFailure) -> str:
        if err.kind == "timeout":
            return f"no answer within {self._timeout:g}s (ALERT_TELEGRAM_TIMEOUT)"
        if err.kind == "broken":
            return "the connection broke off"
        return self._redact.scrub(err.message)  # no connection, or TLS failed: no URL in it


def message_text(notice: Notice) -> str:
    """The subject, a blank line, the body (what the e-mail says), cut to one message."""
    text = f"{' '.join(notice.subject.split())}\n\n{notice.body.strip()}"
    if len(text) <= TEXT_LIMIT:
        return text
    return text[:TEXT_LIMIT - len(CUT_NOTE)] + CUT_NOTE


def _json(content: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(content)
    except ValueError:
        return {}
    return reply if isinstance(reply, dict) else {}


def _retry_after(reply: dict[str, Any]) -> int | None:
    parameters = reply.get("parameters")
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None

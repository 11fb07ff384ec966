"""HTTP with bounds: every request ends by a total deadline (not a per-read timeout), an answer
is read only up to a size cap, and a compressed answer is inflated only up to that cap (one
gzip or deflate layer; a chained or unknown Content-Encoding is refused).

Used by tradectl's own traffic: the Alpaca REST adapter (`broker/rest.py`) and the alert webhook
(`notify/webhook.py`). The client underneath is httpcore (httpx's connection layer, without
httpx's own import cost), imported on first use so that a command that sends nothing pays
nothing; `transport.py` bounds each socket operation by the time left. alpaca-trade-api and
its pinned urllib3 1.26 serve only the trade-updates stream.

Errors never carry the URL (a webhook's URL is its token) nor any header.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# Alpaca's largest answers (500 orders with their legs) are well under 4 MB.
MAX_ANSWER_BYTES = 8 * 1024 * 1024

Failure = Literal["connect", "tls", "url", "timeout", "broken", "too_large", "encoding"]


class HttpFailure(Exception):
    """A request that got no usable answer. `kind` says which way; `sent` is False when the
    request surely never left (no connection, TLS refused, unusable URL)."""

    def __init__(self, kind: Failure, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message

    @property
    def sent(self) -> bool:
        return self.kind not in ("connect", "tls", "url")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # lower-case names
    content: bytes
    truncated: bool = False


class BoundedHttp:
    """One connection pool. `verify`: an ssl.SSLContext, or None for the default (certifi,
    or SSL_CERT_FILE / SSL_CERT_DIR). Thread-safe: each thread's request has its own deadline."""

    def __init__(self, *urls: str, headers: Mapping[str, str] | None = None,
                 verify: Any = None) -> None:
        """`urls`: the base URLs it will be sent to (the first decides on a proxy)."""
        from tradectl.net.transport import open_client

        self._client, self._deadlines = open_client(dict(headers or {}), verify, urls)

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, url: str, *, total: float, connect: float,
                params: Mapping[str, Any] | None = None, json: Any = None,
                content: bytes | None = None, headers: Mapping[str, str] | None = None,
                max_bytes: int = MAX_ANSWER_BYTES, truncate: bool = False) -> Answer:
        """Send once (no redirect followed) and read the answer, all within `total` seconds.
        Past `max_bytes` (raw or inflated) the answer is refused, or cut there if `truncate`."""
        from tradectl.net.transport import call

        deadline = time.monotonic() + max(total, 0.0)
        self._deadlines.value = deadline
        try:
            return call(self._client, method, url, deadline=deadline, connect=connect,
                        params=params, json=json, content=content, headers=headers,
                        reader=lambda enc: _Reader(enc, max_bytes, truncate))
        finally:
            self._deadlines.value = None


class _Reader:
    """Collects an answer's raw chunks into its decoded bytes, within the cap."""

    def __init__(self, encoding: str, cap: int, truncate: bool) -> None:
        codings = [c.strip().lower() for c in encoding.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        self._inflate = None
        self._skip = False  # an answer only glanced at (truncate) and not readable: no text
        wbits = {"gzip": 31, "x-gzip": 31, "deflate": 15}.get(codings[0]) if codings else None
        if len(codings) > 1 or (codings and wbits is None):
            if not truncate:
                raise HttpFailure("encoding", _refused(codings))
            self._skip = True
        elif wbits is not None:
            self._inflate = zlib.decompressobj(wbits)
        self._cap, self._truncate = cap, truncate
        self._parts: list[bytes] = []
        self._size = self._raw = 0
        self.done = self.truncated = False
        if self._skip:
            self.truncated = True

    def feed(self, chunk: bytes) -> None:
        if self._skip:
            self.done = True
            return
        self._raw += len(chunk)
        room = self._cap - self._size
        if self._inflate is None:
            data = chunk
        else:
            try:
                data = self._inflate.decompress(chunk, room + 1)  # never more than the room
            except zlib.error:
                if self._truncate:  # only glanced at: no text rather than no answer
                    self.done = True
                    return
                raise HttpFailure("encoding", "the compressed answer is corrupt") from None
        if len(data) > room or self._raw > self._cap:
            if not self._truncate:
                raise HttpFailure("too_large", f"the answer is larger than {self._cap} bytes: "
                                  "refused")
            data, self.done, self.truncated = data[:room], True, True
        self._parts.append(data)
        self._size += len(data)

    def content(self) -> bytes:
        return b"".join(self._parts)


def _refused(codings: list[str]) -> str:
    if len(codings) > 1:
        return (f"the answer is encoded {len(codings)} times over (Content-Encoding: "
                f"{', '.join(codings)[:60]}): refused")
    return f"unknown Content-Encoding {codings[0][:30]!r}: refused"

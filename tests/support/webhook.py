"""A webhook receiver on 127.0.0.1 (as Slack, Discord or ntfy would be) that keeps every POST and
can be told to fail, to answer slowly, or to redirect.

    with WebhookSink() as hook:
        env = {"ALERT_WEBHOOK_URL": hook.url}
        hook.fail(500, times=1)          # the next POST gets a 500
        hook.slow(5.0)                   # answers after 5 s
        hook.redirect(308, "https://elsewhere.test/x")
        hook.received[0].json["text"]
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.post_server import PostServer

TOKEN = "T000/B000/WebhookPr0be-tok-97531"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    json: Any


class WebhookSink:
    def __init__(self, token: str = TOKEN) -> None:
        self.path = f"/services/{token}"
        self.received: list[Received] = []
        self.attempts = 0
        self._failures: list[int] = []
        self._delay = 0.0
        self._redirect: tuple[int, str] | None = None
        self._redirect_body = 0
        self._trickle = 0.0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._http = PostServer(self._answer)
        self.port: int = self._http.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    # -- steering ---------------------------------------------------------------------------

    def fail(self, status: int, times: int = 1) -> None:
        with self._lock:
            self._failures.extend([status] * times)

    def slow(self, seconds: float) -> None:
        self._delay = seconds

    def redirect(self, status: int, location: str | None, body_size: int = 0) -> None:
        """Answer every POST to the configured path with a redirect (None: stop), with a body
        of `body_size` bytes."""
        self._redirect = (status, location) if location is not None else None
        self._redirect_body = body_size

    def trickle(self, seconds_per_byte: float) -> None:
        """Answer each POST a byte at a time, this far apart (0: stop): a stalled proxy."""
        self._trickle = seconds_per_byte

    # -- serving ----------------------------------------------------------------------------

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        with self._lock:
            self.attempts += 1
            failure = self._failures.pop(0) if self._failures else None
        if self._delay:
            time.sleep(self._delay)
        if self._redirect is not None and request.path == self.path:
            status, location = self._redirect
            request.send_response(status)
            request.send_header("Location", location)
            request.send_header("Content-Length", str(self._redirect_body))
            request.end_headers()
            with contextlib.suppress(OSError):  # the client may leave mid-body
                for start in range(0, self._redirect_body, 65536):
                    request.wfile.write(b"x" * min(65536, self._redirect_body - start))
            return
        if self._trickle:
            answer = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
            with contextlib.suppress(OSError):
                for i in range(len(answer)):
                    if self._stopping.wait(self._trickle):
                        return
                    request.wfile.write(answer[i:i + 1])
            request.close_connection = True
            return
        if failure is not None or not request.path.startswith("/services/"):
            # an error page that echoes the path, as many servers' do
            body = f"<h1>{failure or 404}</h1> no hook at {request.path}".encode()
            request.send_response(failure or 404)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
            return
        with self._lock:
            self.received.append(Received(request.path, dict(request.headers.items()),
                                          json.loads(raw)))
        request.send_response(204)  # as Discord answers
        request.send_header("Content-Length", "0")
        request.end_headers()

    def start(self) -> WebhookSink:
        self._http.start()
        return self

    def stop(self) -> None:
        self._delay = 0.0
        self._stopping.set()
        self._http.stop()

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

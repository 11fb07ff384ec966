"""A Telegram Bot API server on 127.0.0.1 (as a self-hosted `telegram-bot-api` would be): it
takes `POST /bot<token>/sendMessage`, keeps every message and answers as Telegram does, and can be
told to refuse (`ok: false`), to rate-limit (429 with `parameters.retry_after`) or to answer
slowly.

    with BotApi() as api:
        env = api.env()
        api.refuse(400, "Bad Request: chat not found")
        api.rate_limit(7)
        api.messages[0]["text"]
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.post_server import PostServer

# A probe token in Telegram's shape: the bot's number, a colon, 35 characters
BOT_TOKEN = "123456789:TgPr0beSecret-AAbbCCddEEffGGhh_7531"
CHAT_ID = "-1001234567890"


class BotApi:
    def __init__(self, token: str = BOT_TOKEN) -> None:
        self.token = token
        self.messages: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.attempts = 0
        self._answers: list[tuple[int, dict[str, Any]]] = []
        self._delay = 0.0
        self._lock = threading.Lock()
        self._http = PostServer(self._answer)
        self.port: int = self._http.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, chat_id: str = CHAT_ID) -> dict[str, str]:
        return {"ALERT_TELEGRAM_BOT_TOKEN": self.token, "ALERT_TELEGRAM_CHAT_ID": chat_id,
                "ALERT_TELEGRAM_API_URL": self.url}

    # -- steering ---------------------------------------------------------------------------

    def refuse(self, code: int, description: str, times: int = 1) -> None:
        """The next POSTs get `{"ok": false, "error_code": code, "description": ...}`."""
        with self._lock:
            self._answers += [(code, {"ok": False, "error_code": code,
                                      "description": description})] * times

    def rate_limit(self, retry_after: int, times: int = 1) -> None:
        with self._lock:
            self._answers += [(429, {"ok": False, "error_code": 429,
                                     "description": f"Too Many Requests: retry after "
                                                    f"{retry_after}",
                                     "parameters": {"retry_after": retry_after}})] * times

    def slow(self, seconds: float) -> None:
        self._delay = seconds

    # -- serving ----------------------------------------------------------------------------

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        raw = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        with self._lock:
            self.attempts += 1
            self.paths.append(request.path)
            steered = self._answers.pop(0) if self._answers else None
        if self._delay:
            time.sleep(self._delay)
        if request.path != f"/bot{self.token}/sendMessage":
            status, reply = 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        elif steered is not None:
            status, reply = steered
        else:
            body = json.loads(raw)
            with self._lock:
                self.messages.append(body)
                message_id = len(self.messages)
            status, reply = 200, {"ok": True, "result": {
                "message_id": message_id, "date": int(time.time()), "text": body["text"],
                "chat": {"id": int(body["chat_id"]), "type": "supergroup"}}}
        data = json.dumps(reply).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        with contextlib.suppress(OSError):  # the client may have given up (a slow answer)
            request.wfile.write(data)

    def start(self) -> BotApi:
        self._http.start()
        return self

    def stop(self) -> None:
        self._delay = 0.0
        self._http.stop()

    def __enter__(self) -> BotApi:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

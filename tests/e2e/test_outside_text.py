"""Text from outside (a broker's message, a webhook's error page) reaches the terminal through
one escaping function on every path: no escape sequence, control or bidi character arrives
raw, and no rich markup in it takes effect. A broker answer that echoes the keys is shown,
stored and alerted without them."""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, CliResult, SmtpSink
from tests.e2e.test_secrets import database_dump, find_leaks
from tests.fakes.alpaca import FakeAlpaca

# clear screen, set the window title, a C1 CSI, a bell, a right-to-left override, markup
HOSTILE = "boom \x1b[2J\x1b]0;owned\x07 \x9b31m \u202eevil\u202c [red]MARKUP[/red] \x08end"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\x08")


def shown_safely(result: CliResult) -> None:
    text = result.stdout + result.stderr
    assert "boom" in text, text  # the message really was shown
    assert not [c for c in RAW if c in text], repr(text)
    assert "\\x1b" in text or result.stdout.lstrip().startswith("{"), repr(text)
    if not result.stdout.lstrip().startswith("{"):
        assert "[red]MARKUP[/red]" in text  # shown as typed, not taken as markup


def open_aapl(trader: Cli) -> None:
    result = trader("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160")
    assert result.code == 0, result.output
    assert trader("watch", "--once", "--json").code == 0


def test_broker_messages_reach_no_screen_raw(trader: Cli, fake: FakeAlpaca) -> None:
    fake.inject("POST", r"^/v2/orders$", status=422, body={"code": 42210000, "message": HOSTILE})
    shown_safely(trader("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160"))
    open_aapl(trader)
    fake.inject("PATCH", r"^/v2/orders/", status=422, body={"code": 42210000, "message": HOSTILE},
                times=None)
    shown_safely(trader("adjust", "AAPL", "--stop", "146"))
    fake.inject("GET", r"^/v2/", status=500, body={"code": 1, "message": HOSTILE}, times=None)
    for command in (("status",), ("watch", "--once"), ("close", "AAPL", "--dry-run"),
                    ("adjust", "AAPL", "--stop", "146", "--dry-run"),
                    ("halt", "--reason", "x", "--dry-run")):
        shown_safely(trader(*command))
    fake.clear_faults()
    fake.fail_close("AAPL", 403, HOSTILE)
    for command in (("close", "AAPL"), ("close", "AAPL", "--json")):
        shown_safely(trader(*command))


class HostilePage:
    """A webhook whose error page carries escape sequences."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = HOSTILE.encode()
                self.send_response(500)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T0/B0/x"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def hostile_hook() -> Iterator[HostilePage]:
    page = HostilePage()
    yield page
    page.server.shutdown()
    page.server.server_close()


def test_a_webhook_error_page_reaches_no_screen_raw(cli: Cli, hostile_hook: HostilePage) -> None:
    result = cli("alert", "test", env={"ALERT_WEBHOOK_URL": hostile_hook.url})
    assert result.code == 4
    shown_safely(result)


def test_a_broker_answer_echoing_the_keys_is_scrubbed(trader: Cli, fake: FakeAlpaca,
                                                      smtp: SmtpSink) -> None:
    trader.env.update(smtp.env())
    echo = (f"denied for {fake.api_key} / {fake.secret_key.upper()} (was "
            f"{fake.secret_key[:14]}")
    probes = {"the key id": fake.api_key, "the secret": fake.secret_key}
    outputs = []
    for extra in ((), ("--json",)):
        fake.inject("POST", r"^/v2/orders$", status=403, body={"code": 1, "message": echo})
        result = trader("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160", *extra)
        assert result.code == 4 and "denied for ***" in result.output, result.output
        outputs.append(("open", result.output))
    open_aapl(trader)
    fake.fail_close("AAPL", 403, echo)
    outputs += [("halt", trader("halt", "--reason", "x", "--json").output),
                ("status", trader("status", "--json").output),
                ("log", trader("log", "--json", "--limit", "1000").output)]
    sources = [*outputs, *database_dump(trader.env["DATABASE_URL"]),
               *((f"mail {n}", m.as_string()) for n, m in enumerate(smtp.messages))]
    assert smtp.messages
    leaks = find_leaks(sources, probes)
    assert not leaks, "\n".join(leaks)


def test_no_renderer_escapes_outside_text_its_own_way() -> None:
    """render/__init__.py's one_line (and literal, one_line for markup) is the one escaping
    function: no other renderer imports rich's escape."""
    offenders = []
    for path in sorted((Path(__file__).parents[2] / "tradectl" / "render").glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "rich.markup":
                offenders.append(path.name)
    assert offenders == []

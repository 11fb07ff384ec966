"""Secrets: the Alpaca key and secret, the SMTP password, a database password and the webhook
URL's token never reach any output, log record, database row, exception text, cassette or alert.
One run goes through every scenario with distinctive probe values; then everything it produced is
scanned for them."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from tests.conftest import Cli, CliResult, SmtpSink, broker_env
from tests.fakes.alpaca import FakeAlpaca
from tests.support.webhook import TOKEN, WebhookSink
from tradectl.broker import BracketRequest
from tradectl.broker.alpaca import AlpacaBroker
from tradectl.config import load_settings, mask_secret
from tradectl.db.session import Database
from tradectl.errors import BrokerError, ConfigError
from tradectl.notify.smtp import SmtpChannel

KEY = "PKSECRETKEYPROBE12345"
SECRET = "SeCrEtPr0be-xyz-987654321"
WRONG_SECRET = "WrongSecretPr0be-555-abcdef"
SMTP_PASSWORD = "SmtpPr0be-pass-24680"
DB_PASSWORD = "DbPasswordProbe-13579"
# The webhook URL's secret part (its path); the sink serves it at http://127.0.0.1:<port>.
WEBHOOK_TOKEN = TOKEN
WEBHOOK_URL = f"https://hooks.example.test/services/{WEBHOOK_TOKEN}"
PROBES = {"ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET, "a wrong secret": WRONG_SECRET,
          "SMTP_PASSWORD": SMTP_PASSWORD, "a database password": DB_PASSWORD,
          "the ALERT_WEBHOOK_URL token": WEBHOOK_TOKEN}
FRAGMENT = 10  # any run of this many characters of a probe counts as a leak
CASSETTES = Path(__file__).parents[1] / "adapters" / "cassettes"
DOWN = {"ALPACA_BASE_URL": "http://127.0.0.1:9", "ALPACA_DATA_URL": "http://127.0.0.1:9"}
OPEN = ("open", "--qty", "1", "--stop", "390", "--target", "410")

Source = tuple[str, str]


# -- the scanner ----------------------------------------------------------------------------------


def fragments(secret: str) -> set[str]:
    return {secret[i:i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1)}


def find_leaks(sources: Iterable[Source], probes: dict[str, str]) -> list[str]:
    """Where each probe (or a 10-character piece of it) was found, with some context."""
    found = []
    for where, content in sources:
        for name, secret in probes.items():
            hits = [f for f in fragments(secret) if f in content]
            if hits:
                at = content.index(hits[0])
                context = content[max(0, at - 60): at + len(hits[0]) + 60]
                found.append(f"{name} leaked in {where}: ...{context!r}...")
    return found


def as_text(data: bytes) -> str:
    return data.decode("latin-1")  # byte for byte: an ASCII probe in a binary file still matches


def files_under(root: Path, label: str) -> list[Source]:
    return [(f"{label} {path.relative_to(root)}", as_text(path.read_bytes()))
            for path in sorted(root.rglob("*")) if path.is_file()]


def database_dump(url: str) -> list[Source]:
    db = Database(url)
    dump = []
    with db.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()
            dump.append((f"table {table} ({len(rows)} rows)", "\n".join(map(repr, rows))))
    db.dispose()
    return dump


def test_the_scanner_finds_a_planted_probe() -> None:
    planted = [("clean", "nothing here"), ("out", f"key={KEY[3:15]}"),
               ("err", SECRET[:FRAGMENT - 1])]
    assert find_leaks(planted, PROBES) == [f"ALPACA_API_KEY leaked in out: ...'key={KEY[3:15]}'..."]
    assert mask_secret(KEY) == "PKSE…2345" and not find_leaks([("m", mask_secret(KEY))], PROBES)
    for name, secret in PROBES.items():  # each probe is told apart from every other
        others = [s for other, s in PROBES.items() if other != name]
        assert find_leaks([("other probes", " ".join(others))], {name: secret}) == []


# -- the run --------------------------------------------------------------------------------------


@pytest.fixture
def probe_fake() -> Iterator[FakeAlpaca]:
    server = FakeAlpaca(api_key=KEY, secret_key=SECRET).start()
    for symbol, price in (("AAPL", "150"), ("TSLA", "250"), ("MSFT", "400"), ("NVDA", "100"),
                          ("AMD", "400")):
        server.set_price(symbol, price)
    yield server
    server.stop()


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[Path]:
    """Every logger at DEBUG into one file for the duration of the test."""
    path = tmp_path / "logs" / "debug.log"
    path.parent.mkdir()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    loggers = [root, *(item for item in logging.root.manager.loggerDict.values()
                       if isinstance(item, logging.Logger))]
    levels = {logger: logger.level for logger in loggers}
    root.addHandler(handler)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    yield path
    root.removeHandler(handler)
    handler.close()
    for logger, level in levels.items():
        logger.setLevel(level)


class Recorder:
    """Runs commands and keeps everything they printed."""

    def __init__(self, cli: Cli) -> None:
        self.cli = cli
        self.outputs: list[Source] = []
        listing = cli("--help").stdout.splitlines()  # "│ check-alpaca  Check the ..."
        self.commands = {line.strip("│ ").split()[0] for line in listing if line.strip("│ ")}

    def __call__(self, expect: int | None, *args: str, **env: str) -> CliResult:
        result = self.cli(*args, env=env)
        self.outputs.append((f"output of `tradectl {' '.join(args)}` {env or ''}", result.output))
        assert "Traceback" not in result.output, result.output
        if expect is not None:
            assert result.code == expect, (args, env, result.output)
        return result

    def has(self, command: str) -> bool:
        return command in self.commands


def run_every_scenario(run: Recorder, fake: FakeAlpaca, smtp: SmtpSink) -> None:
    run(0, "db", "upgrade")
    run(0, "db", "current")
    run(0, "open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160")
    run(0, "open", "TSLA", "--qty", "2", "--stop", "240", "--target", "260", "--json")
    for extra in ((), ("--json",)):  # rejected by Alpaca
        fake.inject("POST", r"^/v2/orders$", status=422,
                    body={"code": 42210000, "message": "qty must be > 0"})
        run(4, *OPEN, "MSFT", *extra)
    for extra in ((), ("--json",)):  # the broker is down
        run(4, *OPEN, "MSFT", *extra, **DOWN)
    fake.inject("POST", r"^/v2/orders$", hang=True)  # no answer: the outcome stays unknown
    run(4, *OPEN, "AMD", "--json", ALPACA_TIMEOUT="0.5")
    for extra in ((), ("--json",)):  # wrong keys
        run(4, *OPEN, "MSFT", *extra, ALPACA_SECRET_KEY=WRONG_SECRET)
    run(4, "watch", "--once", "--json", ALPACA_SECRET_KEY=WRONG_SECRET)
    run(2, *OPEN, "MSFT", "--yes", TRADING_MODE="live")  # refused: live over plain http
    fake.set_price("AAPL", "161")  # take-profit
    run(0, "watch", "--once")
    run(0, "watch", "--once", "--json")
    dotenv = run.cli.cwd / ".env"  # secrets from .env, next to a line python-dotenv cannot parse
    dotenv.write_text(f"ALPACA_SECRET_KEY={SECRET}\nSMTP_PASSWORD='{SMTP_PASSWORD}'\n"
                      "this line is 'broken\n")
    from_env = {name: run.cli.env.pop(name) for name in ("ALPACA_SECRET_KEY", "SMTP_PASSWORD")}
    assert "line 3" in run(2, "watch", "--once", "--json").stderr  # named, never shown
    dotenv.write_text(f"ALPACA_SECRET_KEY={SECRET}\nSMTP_PASSWORD='{SMTP_PASSWORD}'\n")
    run(0, "watch", "--once", "--json")  # authorised: the secret came from .env
    run(2, "watch", "--once", WATCH_INTERVAL="never")
    run.cli.env.update(from_env)
    dotenv.unlink()
    fake.fail_close("TSLA", 403, "position close rejected by test")
    run(4, "halt", "--reason", "probe: one symbol fails", "--json")
    run(4, "halt", "--reason", "probe: still failing")
    fake.fail_close("TSLA", None)
    run(0, "resume", "--reason", "probe: reviewed", "--json")
    # the password in use: the sink offers no AUTH, so the login fails and the alert waits
    run(0, "halt", "--reason", "probe: smtp login", "--json", SMTP_USERNAME="probe-user")
    run(0, "resume", "--reason", "probe: mail delivered now")
    run(4, "halt", "--reason", "probe: broker down", **DOWN)
    for name, value, command in (("DAILY_LOSS_LIMIT", "abc", (*OPEN, "NVDA")),
                                 ("TRADING_MODE", "real", ("watch", "--once")),
                                 ("ALPACA_BASE_URL", "https://paper-api.alpaca.markets/v2",
                                  ("halt", "--reason", "bad setting"))):
        assert run(2, *command, **{name: value}).stderr.startswith(f"error: {name}")
    db_with_password = f"postgresql://probe:{DB_PASSWORD}@127.0.0.1:9/tradectl"
    run(5, "watch", "--once", DATABASE_URL=db_with_password)
    if run.has("check-alpaca"):
        checked = run(0, "check-alpaca")
        assert mask_secret(KEY) in checked.stdout  # the key id shown, masked
        run(0, "check-alpaca", "--json")
        run(4, "check-alpaca", "--json", ALPACA_SECRET_KEY=WRONG_SECRET)
        run(2, "check-alpaca", "--json", DAILY_LOSS_LIMIT="abc")
        run(5, "check-alpaca", DATABASE_URL=db_with_password)
    if run.has("status"):
        run(0, "status")
        run(0, "status", "--json")
        run(0, "status", "--json", **DOWN)
    if run.has("log"):
        run(0, "log", "--limit", "1000")
        run(0, "log", "--json", "--limit", "1000")
    assert len(smtp.messages) >= 2  # alerts really went out (and are scanned below)


def run_webhook_scenarios(run: Recorder, hook: WebhookSink) -> None:
    """The webhook failing every way it can, each error text stored and shown."""
    hook.fail(500, times=1)  # its error page echoes the path, token included
    run(None, "halt", "--reason", "probe: webhook 500", "--json")
    run(0, "resume", "--reason", "probe: webhook retried")
    hook.redirect(308, f"https://elsewhere.example.test/services/{WEBHOOK_TOKEN}")
    run(4, "alert", "test")
    hook.redirect(301, f"/services/{WEBHOOK_TOKEN}")  # a loop on the same host
    run(4, "alert", "test", "--json")
    hook.redirect(301, None)
    hook.slow(2.0)
    run(4, "alert", "test", ALERT_WEBHOOK_TIMEOUT="0.3")
    hook.slow(0)
    run(0, "alert", "test", "--json")
    down = f"http://127.0.0.1:9/services/{WEBHOOK_TOKEN}"
    run(None, "halt", "--reason", "probe: webhook down", ALERT_WEBHOOK_URL=down)
    run(0, "watch", "--once", ALERT_WEBHOOK_URL=down)
    for bad in (f"ftp://hooks.example.test/{WEBHOOK_TOKEN}", f"hooks.example.test/{WEBHOOK_TOKEN}",
                f"https://hooks.example.test:port/{WEBHOOK_TOKEN}"):
        run(2, "watch", "--once", ALERT_WEBHOOK_URL=bad)
        run(2, "check-alpaca", "--json", ALERT_WEBHOOK_URL=bad)
    run(0, "halt", "--reason", "probe: dry", "--dry-run")
    run(0, "halt", "--reason", "probe: dry", "--dry-run", "--json")
    run(None, *OPEN, "NVDA", "--dry-run", "--json")
    run(None, "open", "NVDA", "--risk", "50", "--stop", "95", "--target", "110", "--dry-run")
    checked = run(0, "check-alpaca")
    assert f"webhook http://127.0.0.1:{hook.port}/…" in checked.stdout
    run(0, "check-alpaca", "--json")
    run(0, "status", "--json")
    run(0, "log", "--json", "--limit", "1000")
    for extra in ((), ("--json",), ("--csv",)):
        run(0, "report", *extra)
    assert hook.received  # alerts really went out (and are scanned below)


def exception_texts(fake: FakeAlpaca, env: dict[str, str]) -> list[Source]:
    """BrokerErrors raised by the adapter itself, as str, repr, traceback and their chain."""
    def adapter(api_key: str = KEY, secret_key: str = SECRET, base_url: str = fake.url,
                data_url: str = fake.url) -> AlpacaBroker:
        return AlpacaBroker(api_key=api_key, secret_key=secret_key, base_url=base_url,
                            data_url=data_url, timeout=0.5, sleep=lambda _seconds: None)

    def submit_when(status: int = 500, hang: bool = False) -> Callable[[], object]:
        """Submit the order once the fake answers it with this fault."""
        def submit() -> object:
            fake.inject("POST", r"^/v2/orders$", status=status, hang=hang)
            return adapter().submit_bracket(order)
        return submit

    order = BracketRequest(symbol="MSFT", side="buy", qty=1, stop=Decimal(390), target=Decimal(410),
                           entry=None, time_in_force="day", client_order_id="probe-order")
    calls: dict[str, Callable[[], object]] = {
        "wrong secret": adapter(secret_key=WRONG_SECRET).account,
        "wrong key id": adapter(api_key="PKWRONGKEYID000000000").account,
        "broker down": adapter(base_url=DOWN["ALPACA_BASE_URL"]).account,
        "market data down": lambda: adapter(data_url=DOWN["ALPACA_DATA_URL"]).latest_trade_price(
            "AAPL"),
        "order refused": submit_when(status=403),
        "order timed out": submit_when(hang=True),
    }
    texts = []
    for label, call in calls.items():
        with pytest.raises(BrokerError) as caught:
            call()
        err: BaseException | None = caught.value
        parts = ["".join(traceback.format_exception(caught.value))]
        while err is not None:  # the SDK's or requests' exception the BrokerError came from
            parts += [str(err), repr(err), repr(vars(err))]
            err = err.__cause__ or err.__context__
        texts.append((f"exception text ({label})", "\n".join(parts)))
    settings = load_settings({**env, "SMTP_USERNAME": "probe-user"}, app_dir=Path("/nonexistent"))
    for bad in (f"ftp://hooks.example.test/{WEBHOOK_TOKEN}", f"https://h.test:port/{WEBHOOK_TOKEN}"):
        with pytest.raises(ConfigError) as refused:
            load_settings({"ALERT_WEBHOOK_URL": bad}, app_dir=Path("/nonexistent"))
        texts.append(("exception text (a bad ALERT_WEBHOOK_URL)",
                      "".join(traceback.format_exception(refused.value)) + repr(refused.value)))
    texts.append(("repr(Settings)", f"{settings!r} {settings}"))
    return texts


def test_no_secret_appears_anywhere_after_every_scenario(
    cli: Cli, probe_fake: FakeAlpaca, smtp: SmtpSink, webhook: WebhookSink, debug_log: Path,
    tmp_path: Path,
) -> None:
    cli.env.update({**broker_env(probe_fake), **smtp.env(), "SMTP_PASSWORD": SMTP_PASSWORD,
                    "ALERT_WEBHOOK_URL": webhook.url})
    run = Recorder(cli)
    run_every_scenario(run, probe_fake, smtp)
    run_webhook_scenarios(run, webhook)
    exceptions = exception_texts(probe_fake, cli.env)

    log = debug_log.read_text(encoding="utf-8")
    # the log really holds HTTP and SQL (httpcore's DEBUG lines name each exchange's steps, not
    # its URL, which httpx's did)
    assert "httpcore.http11 DEBUG send_request_headers" in log and "SELECT" in log
    assert probe_fake.count("GET", "/v2/account") > 0
    sources: list[Source] = [
        *run.outputs,
        ("the DEBUG log", log),
        *database_dump(cli.env["DATABASE_URL"]),
        *exceptions,
        *((f"alert e-mail {n}", m.as_string()) for n, m in enumerate(smtp.messages)),
        *((f"webhook POST {n}", f"{r.headers} {r.json}") for n, r in enumerate(webhook.received)),
        *((f"request to the fake: {r.method} {r.path}", f"{r.query} {r.json} {r.response_text}")
          for r in probe_fake.requests),
        *files_under(tmp_path, "file"),  # the log file, the SQLite file and its WAL, .env ...
        *files_under(CASSETTES, "cassette"),
    ]
    leaks = find_leaks(sources, PROBES)
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)


def test_no_cassette_holds_the_keys_it_was_recorded_with() -> None:
    """The committed cassettes were recorded against the fake with its default keys."""
    default = FakeAlpaca()
    keys = {"the fake's key id": default.api_key, "the fake's secret": default.secret_key}
    leaks = find_leaks(files_under(CASSETTES, "cassette"), keys)
    assert not leaks, "\n".join(leaks)
    assert list(CASSETTES.glob("*.yaml")), "no cassettes found: the scan above proves nothing"


def test_the_channels_reprs_hide_the_password_and_the_webhook_url() -> None:
    from tradectl.cli.app import Context

    config = load_settings({"SMTP_HOST": "127.0.0.1", "SMTP_USERNAME": "probe-user",
                            "SMTP_PASSWORD": SMTP_PASSWORD, "ALERT_EMAIL_TO": "a@example.test",
                            "ALERT_WEBHOOK_URL": WEBHOOK_URL}, app_dir=Path("/nonexistent"))
    channels = Context(settings=config).channels
    assert channels is not None and channels.names == ("e-mail", "webhook")
    email, webhook = channels
    assert isinstance(email, SmtpChannel)
    shown = [("repr(SmtpSettings)", repr(email._settings)),
             ("repr(channels)", repr(channels)), ("str(channels)", str(channels)),
             ("webhook recipients", webhook.recipients), ("repr(Settings)", repr(config))]
    assert not find_leaks(shown, PROBES)

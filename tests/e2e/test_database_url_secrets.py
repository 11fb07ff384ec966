"""A database password in any DATABASE_URL form (`user:password@`, an unencoded `@` in it,
`?password=`, a keyword DSN) reaches no output, --json document, check-alpaca line, event row,
alert e-mail or webhook post: the commands run against a real PostgreSQL server (which takes any
password: trust) and an unreachable one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli, ScratchDatabases, SmtpSink, closed_port
from tests.e2e.test_secrets import Source, database_dump, files_under, find_leaks
from tests.support.webhook import WebhookSink
from tradectl.db.url import masked_url

PASSWORD = "DbPr0be@Secret-24680"  # an `@` in it, as typed, unencoded
ENCODED = PASSWORD.replace("@", "%40")
PROBES = {"the database password": PASSWORD, "its tail after the @": PASSWORD.split("@")[1]}


def forms(url: str) -> dict[str, str]:
    """Each way to write the password into `url` (postgresql://user@host:port/db) that connects
    (an unencoded `@` does not: the host is read from after it)."""
    scheme, rest = url.split("://", 1)
    user, at_host = rest.split("@", 1)
    return {"user:password@ (encoded)": f"{scheme}://{user}:{ENCODED}@{at_host}",
            "?password=": f"{url}?password={ENCODED}",
            "?password= among others": f"{url}?sslmode=disable&password={ENCODED}"}


@pytest.mark.parametrize("url", [
    "postgresql://u:DbPr0be@Secret-24680@db.example:5432/x",
    "postgresql://u@db.example/x?password=DbPr0be%40Secret-24680&sslmode=require",
    "postgresql://u@db.example/x?sslpassword=DbPr0be@Secret-24680",
    "host=db.example password=DbPr0be@Secret-24680 dbname=x",
    "host=db.example password='DbPr0be@Secret-24680 x' dbname=x",
    "postgres://u:DbPr0be%40Secret-24680@db.example/x",
])
def test_every_form_is_masked(url: str) -> None:
    shown = masked_url(url)
    assert not find_leaks([("masked", shown)], PROBES), shown
    assert "***" in shown and "db.example" in shown


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, smtp: SmtpSink,
            webhook: WebhookSink) -> Cli:
    cli = Cli(monkeypatch, tmp_path)
    cli.env.update({**smtp.env(), "ALERT_WEBHOOK_URL": webhook.url})
    return cli


COMMANDS: list[tuple[str, ...]] = [
    ("db", "upgrade", "--json"), ("db", "current"),
    ("open", "AAPL", "--qty", "1", "--stop", "145", "--target", "160", "--entry", "150"),
    ("status",), ("status", "--json"), ("check-alpaca",), ("check-alpaca", "--json"),
    ("halt", "--reason", "probe"), ("log", "--json"), ("resume", "--reason", "probe"),
    ("watch", "--once", "--json"),
]


def run_all(cli: Cli, url: str) -> list[Source]:
    outputs = []
    for command in COMMANDS:
        result = cli(*command, env={"DATABASE_URL": url})
        assert "Traceback" not in result.output, result.output
        outputs.append((f"`tradectl {' '.join(command)}` ({result.code})", result.output))
    return outputs


def test_no_password_from_a_reachable_postgres_url_anywhere(
        offline: Cli, scratch_pg: ScratchDatabases, smtp: SmtpSink, webhook: WebhookSink,
        tmp_path: Path) -> None:
    base = scratch_pg.create()
    try:
        sources: list[Source] = []
        for form, url in forms(base).items():
            outputs = run_all(offline, url)
            assert "(0)" in outputs[0][0], (form, outputs[0])  # it really connected
            sources += [(f"{form}: {where}", text) for where, text in outputs]
        sources += database_dump(base)
    finally:
        scratch_pg.drop(base)
    sources += [(f"alert e-mail {n}", m.as_string()) for n, m in enumerate(smtp.messages)]
    sources += [(f"webhook POST {n}", str(r.json)) for n, r in enumerate(webhook.received)]
    sources += files_under(tmp_path, "file")
    assert smtp.messages and webhook.received  # the halts really alerted
    leaks = find_leaks(sources, PROBES)
    assert not leaks, "\n".join(leaks)


def test_no_password_from_an_unreachable_database_anywhere(
        offline: Cli, smtp: SmtpSink, webhook: WebhookSink, tmp_path: Path) -> None:
    down = f"postgresql://postgres@127.0.0.1:{closed_port()}/tradectl"
    urls = {**forms(down),
            "user:password@ (unencoded @)": down.replace("postgres@", f"postgres:{PASSWORD}@"),
            "keyword DSN": f"host=127.0.0.1 port=9 password={PASSWORD} dbname=x",
            "a quoted keyword value": f"host=127.0.0.1 password='{PASSWORD} x' dbname=x",
            "a bad option": f"{down}?password={ENCODED}&no_such_option=1"}
    sources: list[Source] = []
    for form, url in urls.items():
        outputs = run_all(offline, url)
        assert not any("(0)" in where for where, _ in outputs[:2]), (form, outputs[:2])
        sources += [(f"{form}: {where}", text) for where, text in outputs]
    sources += [(f"alert e-mail {n}", m.as_string()) for n, m in enumerate(smtp.messages)]
    sources += [(f"webhook POST {n}", str(r.json)) for n, r in enumerate(webhook.received)]
    sources += files_under(tmp_path, "file")
    assert smtp.messages  # a halt without its database still alerts, with the error text
    leaks = find_leaks(sources, PROBES)
    assert not leaks, "\n".join(leaks)

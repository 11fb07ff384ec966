"""The risk loop and the emergency stop outlive their database: a PostgreSQL server of the test's
own is restarted and stopped under a running `watch` and under `halt`; a SQLite database fills
its disk or turns read-only. The broker side always runs; the record is completed once the
database is back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Cli, SmtpSink, broker_env, rows, tradectl_command
from tests.fakes.alpaca import FakeAlpaca
from tests.support.disk import full_disk
from tests.support.pg_cluster import PrivateCluster
from tests.support.watch_process import Watch
from tradectl.config import DEFAULTS
from tradectl.db.models import Cycle, Event, Position
from tradectl.db.session import Database

OPEN_AAPL = ("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160")


@pytest.fixture
def pg_trader(private_pg: PrivateCluster, fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch,
              tmp_path: Path) -> Cli:
    url = private_pg.create_database()
    db = Database(url)
    db.upgrade()
    db.dispose()
    cli = Cli(monkeypatch, tmp_path)
    cli.env.update(broker_env(fake), DATABASE_URL=url)
    return cli


def run(cli: Cli, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    environment.update(cli.env, XDG_CONFIG_HOME=str(cli.cwd / "config"), **env)
    return subprocess.run([*tradectl_command(), *args], env=environment, cwd=cli.cwd,
                          capture_output=True, text=True, timeout=120)


def spooled(cli: Cli) -> list[Path]:
    return sorted((cli.cwd / "config").rglob("stop-*.json"))


# -- watch across a restart and an outage ---------------------------------------------------


def test_watch_keeps_driving_across_a_restart_and_an_outage(
    pg_trader: Cli, fake: FakeAlpaca, private_pg: PrivateCluster, watches: list[Watch],
) -> None:
    assert pg_trader(*OPEN_AAPL).code == 0
    watch = Watch(pg_trader, "--interval", "0.3")
    watches.append(watch)
    watch.wait_for(lambda t: t["error"] is None)

    before = len(watch.ticks)
    private_pg.restart("fast")  # frees the session lock the driver held
    watch.wait_for(lambda t: any("taken back" in c for c in t["changes"]), since=before)
    second = run(pg_trader, "watch", "--once", "--json")
    assert second.returncode == 0, second.stderr  # still exactly one driver: it stands by
    assert json.loads(second.stdout)["role"] == "standby"

    with private_pg.down("immediate"):
        failed = watch.wait_for(lambda t: (t["error"] or "").startswith("database"))
        assert failed["equity"] is not None  # the broker side still runs
        fake.set_price("AAPL", "144.00")  # the stop leg fills during the outage
        time.sleep(10)
        assert watch.process.poll() is None
    watch.wait_for(lambda t: t["error"] is None and not t["positions"], seconds=60)
    (position,) = rows(pg_trader.env["DATABASE_URL"], Position)
    assert position.status == "closed" and position.close_reason == "stop_loss"
    assert position.exit_price is not None
    kinds = [e.kind for e in rows(pg_trader.env["DATABASE_URL"], Event)]
    assert "watch_fault" in kinds  # what it saw while the database was down, recorded after
    assert watch.interrupt() == 0


def test_the_loss_limit_stop_runs_while_the_database_is_down_and_is_recorded_after(
    pg_trader: Cli, fake: FakeAlpaca, private_pg: PrivateCluster, watches: list[Watch],
    smtp: SmtpSink,
) -> None:
    pg_trader.env.update({**smtp.env(), "DAILY_LOSS_LIMIT": "100"})
    assert pg_trader(*OPEN_AAPL).code == 0
    watch = Watch(pg_trader, "--interval", "0.3")
    watches.append(watch)
    watch.wait_for(lambda t: t["error"] is None)
    with private_pg.down("immediate"):
        watch.wait_for(lambda t: (t["error"] or "").startswith("database"))
        fake.set_last_equity("100500")  # a 500 loss today
        stopped = watch.wait_for(lambda t: t["emergency_stop"] is not None)
        assert stopped["emergency_stop"]["exit_code"] == 5  # flattened, not recorded
        assert fake.positions_list() == []
        deadline = time.monotonic() + 10  # the alert goes out beside the tick, not in it
        while not smtp.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "NOT RECORDED" in smtp.messages[-1]["Subject"]
    watch.wait_for(lambda t: t["error"] is None and t["cycle_status"] == "stopped", seconds=60)
    (cycle,) = rows(pg_trader.env["DATABASE_URL"], Cycle)
    assert cycle.status == "stopped" and "daily loss limit" in (cycle.stop_reason or "")
    (position,) = rows(pg_trader.env["DATABASE_URL"], Position)
    assert position.status == "closed" and position.close_reason == "emergency_stop"
    assert "emergency_stop_recorded" in [e.kind for e in rows(pg_trader.env["DATABASE_URL"],
                                                                Event)]
    assert fake.count("DELETE", "/v2/positions") == 1  # the stop ran once, not every tick
    assert watch.interrupt() == 0


def test_after_an_outage_longer_than_the_back_off_exactly_one_of_two_watches_drives(
    pg_trader: Cli, fake: FakeAlpaca, private_pg: PrivateCluster, watches: list[Watch],
) -> None:
    """Issue 31: the driver still in its back-off when the server is back must not step down for
    good, nor drive beside a stand-by that took the lock meanwhile."""
    pg_trader.env["DAILY_LOSS_LIMIT"] = "100"
    assert pg_trader(*OPEN_AAPL).code == 0
    first = Watch(pg_trader, "--interval", "0.2", "--no-stream")
    watches.append(first)
    first.wait_for(lambda t: t["role"] == "driver" and t["error"] is None)
    second = Watch(pg_trader, "--interval", "0.2", "--no-stream")
    watches.append(second)
    second.wait_for(lambda t: t["role"] == "standby" and t["error"] is None)

    with private_pg.down("immediate"):
        first.wait_for(lambda t: (t["error"] or "").startswith("database"))
        time.sleep(7)  # its database is tried after 0.2, 0.4, 0.8, 1.6, 3.2, then 6.4 s
        assert first.ticks[-1]["role"] == "driver"  # it keeps the loss limit meanwhile
    back = len(first.ticks)
    for round_ in range(10):  # each round: a tick of each that checked the lock after the last
        ticks = (first.wait_for(lambda _t: True), second.wait_for(lambda _t: True))
        if round_ < 2:
            continue  # one interval for each to see the server back
        assert sorted(t["role"] for t in ticks) == ["driver", "standby"], [
            [(t["at"][11:23], t["role"], (t["error"] or "")[:40]) for t in w.ticks[-8:]]
            for w in (first, second)]
    # the outage outlasted the first watch's back-off: it was still waiting when it came back
    assert any("back-off" in (t["error"] or "") for t in first.ticks[back:])

    fake.set_last_equity("100500")  # a $500 loss: whoever drives flattens, once
    driver = first if first.ticks[-1]["role"] == "driver" else second
    driver.wait_for(lambda t: t["emergency_stop"] is not None, seconds=30)
    assert fake.positions_list() == []
    time.sleep(0.6)
    assert fake.count("DELETE", "/v2/positions") == 1
    assert sum(bool(t["emergency_stop"]) for t in first.ticks + second.ticks) == 1


# -- halt without its database --------------------------------------------------------------


def assert_recorded_later(cli: Cli, fake: FakeAlpaca) -> None:
    """A later `watch --once` with the database back records the stop and the closes."""
    later = run(cli, "watch", "--once", "--json")
    assert later.returncode == 0, later.stderr
    assert spooled(cli) == []
    (cycle,) = rows(cli.env["DATABASE_URL"], Cycle)
    assert cycle.status == "stopped" and cycle.stop_reason == "database down"
    closed = rows(cli.env["DATABASE_URL"], Position)
    assert {p.status for p in closed} == {"closed"}
    assert all(p.close_reason == "emergency_stop" and p.exit_price for p in closed)
    events = [e for e in rows(cli.env["DATABASE_URL"], Event)
              if e.kind == "emergency_stop_recorded"]
    assert len(events) == 1 and "ran without the database" in events[0].message
    assert fake.positions_list() == []


def assert_flat_and_unrecorded(result: subprocess.CompletedProcess[str], fake: FakeAlpaca,
                               smtp: SmtpSink, cli: Cli) -> None:
    assert result.returncode == 5, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["database_error"] and document["cycle_id"] is None
    assert {s["state"] for s in document["symbols"]} == {"closed"}
    assert fake.positions_list() == [] and fake.open_orders() == []
    (message,) = smtp.messages
    assert "NOT RECORDED" in message["Subject"]
    assert "could not be recorded" in message.get_content()
    assert len(spooled(cli)) == 1


def test_halt_flattens_when_postgres_is_unreachable(
    pg_trader: Cli, fake: FakeAlpaca, private_pg: PrivateCluster, smtp: SmtpSink,
) -> None:
    pg_trader.env.update(smtp.env())
    assert pg_trader(*OPEN_AAPL).code == 0
    with private_pg.down("immediate"):
        result = run(pg_trader, "halt", "--reason", "database down", "--json")
        assert_flat_and_unrecorded(result, fake, smtp, pg_trader)
    assert_recorded_later(pg_trader, fake)


def test_halt_flattens_when_the_database_dies_between_latch_and_record(
    pg_trader: Cli, fake: FakeAlpaca, private_pg: PrivateCluster, smtp: SmtpSink,
) -> None:
    pg_trader.env.update(smtp.env())
    assert pg_trader(*OPEN_AAPL).code == 0
    # The close-all leaves before the latch: hold the orders read that follows the latch.
    fake.inject("GET", r"^/v2/orders$", delay=2.0, answer=True)
    halt = subprocess.Popen(
        [*tradectl_command(), "halt", "--reason", "database down", "--json"],
        env={**{k: v for k, v in os.environ.items() if k not in DEFAULTS}, **pg_trader.env,
             "XDG_CONFIG_HOME": str(pg_trader.cwd / "config")},
        cwd=pg_trader.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not [c for c in rows(pg_trader.env["DATABASE_URL"], Cycle) if c.status == "stopped"]:
        assert time.monotonic() < deadline and halt.poll() is None
        time.sleep(0.05)
    private_pg.stop("immediate")  # latched; the flatten is on the wire
    out, err = halt.communicate(timeout=60)
    private_pg.start()
    assert halt.returncode == 5, out + err
    assert fake.positions_list() == []
    assert "NOT RECORDED" in smtp.messages[-1]["Subject"]
    assert len(spooled(pg_trader)) == 1
    assert_recorded_later(pg_trader, fake)


def test_halt_flattens_when_the_sqlite_database_cannot_be_written(
    fake: FakeAlpaca, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    with full_disk("16M") as disk:
        cli = Cli(monkeypatch, tmp_path)
        cli.env.update(**broker_env(fake), **smtp.env(),
                       DATABASE_URL=f"sqlite:///{disk.path / 'tradectl.db'}")
        assert cli(*OPEN_AAPL).code == 0
        disk.remount("ro")
        result = run(cli, "halt", "--reason", "database down", "--json")
        assert_flat_and_unrecorded(result, fake, smtp, cli)
        disk.remount("rw")
        assert_recorded_later(cli, fake)


# -- a full SQLite disk under watch and under open ------------------------------------------


def test_watch_outlives_a_full_disk_and_records_what_it_missed(
    fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, watches: list[Watch],
) -> None:
    with full_disk("16M") as disk:
        cli = Cli(monkeypatch, tmp_path)
        cli.env.update(broker_env(fake), DATABASE_URL=f"sqlite:///{disk.path / 'tradectl.db'}")
        assert cli(*OPEN_AAPL).code == 0
        watch = Watch(cli, "--interval", "0.3")
        watches.append(watch)
        watch.wait_for(lambda t: t["error"] is None)
        disk.fill()
        fake.set_price("AAPL", "161.00")  # the take-profit fills: a change to write
        failed = watch.wait_for(lambda t: "full" in (t["error"] or ""))
        assert failed["equity"] is not None
        disk.free()
        watch.wait_for(lambda t: t["error"] is None and not t["positions"], seconds=60)
        (position,) = rows(cli.env["DATABASE_URL"], Position)
        assert position.status == "closed" and position.close_reason == "take_profit"
        assert watch.interrupt() == 0


def slowly(answer: object) -> object:
    time.sleep(1.0)
    return answer


def test_open_whose_record_fails_after_alpaca_accepted_says_so(
    fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    with full_disk("16M") as disk:
        cli = Cli(monkeypatch, tmp_path)
        cli.env.update(broker_env(fake), DATABASE_URL=f"sqlite:///{disk.path / 'tradectl.db'}")
        assert cli("status").code == 0  # the database exists and is migrated
        fake.rewrite("POST", r"^/v2/orders$", slowly, times=1)  # Alpaca takes its time to answer
        opening = subprocess.Popen(
            [*tradectl_command(), *OPEN_AAPL],
            env={**{k: v for k, v in os.environ.items() if k not in DEFAULTS}, **cli.env},
            cwd=cli.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not rows(cli.env["DATABASE_URL"], Position):  # written ahead: the POST is next
            assert time.monotonic() < deadline and opening.poll() is None
            time.sleep(0.02)
        disk.fill()
        _, err = opening.communicate(timeout=30)
        (order,) = fake.orders_list(nested=True)
        assert opening.returncode == 5, err
        assert f"order {order['id']} accepted by Alpaca; the record failed" in err
        assert "the next `tradectl watch` tick records it" in err
        disk.free()
        assert cli("watch", "--once").code == 0
        (position,) = rows(cli.env["DATABASE_URL"], Position)
        assert position.alpaca_order_id == order["id"] and position.status == "open"


def test_sigterm_leaves_watch_with_0_even_while_its_database_is_down(
    pg_trader: Cli, private_pg: PrivateCluster, watches: list[Watch],
) -> None:
    """A service manager's stop is a Ctrl-C, in every state."""
    watch = Watch(pg_trader, "--interval", "0.3")
    watches.append(watch)
    watch.wait_for(lambda t: t["error"] is None)
    with private_pg.down("immediate"):
        watch.wait_for(lambda t: (t["error"] or "").startswith("database"))
        watch.process.send_signal(signal.SIGTERM)
        assert watch.process.wait(30) == 0


def test_a_second_halt_after_a_stop_without_the_database_names_no_position_external(
    pg_trader: Cli, fake: FakeAlpaca, private_pg: PrivateCluster, smtp: SmtpSink,
) -> None:
    """Issue 31.5: the positions the offline stop closed are tradectl's own; the second halt
    (database back) records the spooled stop and reports them as closed, not external."""
    pg_trader.env.update(smtp.env())
    assert pg_trader(*OPEN_AAPL).code == 0
    with private_pg.down("immediate"):
        result = run(pg_trader, "halt", "--reason", "database down", "--json")
        assert_flat_and_unrecorded(result, fake, smtp, pg_trader)
    again = run(pg_trader, "halt", "--reason", "again", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    document = json.loads(again.stdout)
    assert [(s["symbol"], s["external"]) for s in document["symbols"]] == [("AAPL", False)]
    assert document["symbols"][0]["state"] == "closed"
    body = smtp.messages[-1].get_content()
    assert "not opened by tradectl" not in body and "FAILED" not in smtp.messages[-1]["Subject"]
    assert spooled(pg_trader) == []

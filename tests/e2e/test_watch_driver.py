"""Someone always drives (issue 31): two `watch` processes on one database; the second stands by
and says who drives; the driver SIGKILLed, the stand-by takes over within one interval and pulls
the stop at the loss limit. On SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import Cli, rows
from tests.fakes.alpaca import FakeAlpaca
from tests.support.watch_process import Watch
from tradectl.db.locks import this_process
from tradectl.db.models import Cycle, Event

INTERVAL = 0.5


def named(pid: int) -> str:
    """How a lock holder in process `pid` on this host is named."""
    return f"pid {pid} on {this_process().split(' on ', 1)[1]}"


def test_the_stand_by_takes_over_within_one_interval_and_flattens_at_the_loss_limit(
    trader: Cli, fake: FakeAlpaca, watches: list[Watch],
) -> None:
    trader.env["DAILY_LOSS_LIMIT"] = "100"
    assert trader("open", "AAPL", "--qty", "2", "--stop", "145", "--target", "160").code == 0
    driver = Watch(trader, "--interval", str(INTERVAL), "--no-stream")
    watches.append(driver)
    driver.wait_for(lambda t: t["role"] == "driver" and t["error"] is None)
    standby = Watch(trader, "--interval", str(INTERVAL), "--no-stream")
    watches.append(standby)
    waiting = standby.wait_for(lambda t: t["error"] is None)
    assert (waiting["role"], waiting["drives_stops"]) == ("standby", False)
    assert waiting["driver"] == named(driver.process.pid)
    for _ in range(3):  # it keeps standing by while the driver runs
        assert standby.wait_for(lambda _t: True)["role"] == "standby"
    assert driver.ticks[-1]["role"] == "driver"

    driver.kill()
    killed = datetime.now(UTC)
    fake.set_last_equity("100500")  # a $500 loss today, past the $100 limit
    seen = len(standby.ticks)
    took_over = standby.wait_for(lambda t: t["role"] == "driver", since=seen)
    assert any("took over" in c for c in took_over["changes"])
    # Within one interval: the first tick that starts once the driver is dead drives.
    after = [t for t in standby.ticks[seen:]
             if datetime.fromisoformat(t["at"]) >= killed + timedelta(seconds=0.2)]
    assert after and after[0]["role"] == "driver", [(t["at"], t["role"]) for t in after]

    stopped = standby.wait_for(lambda t: t["emergency_stop"] is not None, since=seen)
    assert stopped["cycle_status"] == "stopped" and stopped["emergency_stop"]["exit_code"] == 0
    assert fake.positions_list() == []
    assert datetime.fromisoformat(stopped["at"]) - killed < timedelta(seconds=INTERVAL + 5)
    assert standby.interrupt() == 0
    url = trader.env["DATABASE_URL"]
    assert [c.status for c in rows(url, Cycle)] == ["stopped"]
    kinds = [e.kind for e in rows(url, Event)]
    assert kinds.count("watch_driver") == 1 and kinds.count("emergency_stop") <= 1


def test_a_read_only_watch_never_takes_over(trader: Cli, watches: list[Watch]) -> None:
    driver = Watch(trader, "--interval", str(INTERVAL), "--no-stream")
    watches.append(driver)
    driver.wait_for(lambda t: t["role"] == "driver")
    looker = Watch(trader, "--interval", str(INTERVAL), "--no-stream", "--read-only")
    watches.append(looker)
    assert looker.wait_for(lambda _t: True)["role"] == "read_only"
    driver.kill()
    seen = len(looker.ticks)
    for _ in range(4):
        tick = looker.wait_for(lambda _t: True, since=len(looker.ticks))
        assert (tick["role"], tick["driver"]) == ("read_only", None)
    assert len(looker.ticks) > seen

"""The emergency stop's first broker request, sent before anything else is loaded.

`halt` starts the close-all in a thread as soon as the settings are read and the stop is
written ahead (tradectl/db/spool.py), then imports the database layer and writes the latch while
the request is on the wire. The stop picks the answer up here (`flatten_account(first=...)`).
Only the Broker interface is used: whichever HTTP client the adapter has, the request is the
adapter's own `close_all_positions`.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from datetime import datetime

from tradectl.broker import Broker, BrokerRequest, SymbolOutcome
from tradectl.db.spool import STARTED, Claim, OfflineStop, StopSpool
from tradectl.domain.clock import SYSTEM_CLOCK, Clock
from tradectl.errors import BrokerError

# The stop's first write: one request closes every position, cancelling every order first. The
# dry run shows `close_all_request`; the stop sends `close_all` (here, or from flatten.py when
# it did not go early): one definition, so what `halt --dry-run` shows is what `halt` sends.
_CANCEL_ORDERS = True


def close_all_request(broker: Broker) -> BrokerRequest:
    return broker.close_all_request(cancel_orders=_CANCEL_ORDERS)


def close_all(broker: Broker) -> list[SymbolOutcome]:
    return broker.close_all_positions(cancel_orders=_CANCEL_ORDERS)


class FirstClose:
    """DELETE /v2/positions?cancel_orders=true, started now in a thread of its own."""

    def __init__(self, broker: Broker, clock: Clock) -> None:
        self.broker = broker
        self.started = clock.now()
        self._outcomes: list[SymbolOutcome] | None = None
        self._error: BrokerError | None = None
        self._thread = threading.Thread(target=self._run, name="tradectl-close-all", daemon=True)
        # While the request is on its way the main thread imports the database layer: hand the
        # interpreter over often, so the request's own few milliseconds of Python are not held
        # back by the imports (5 ms per switch by default).
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._outcomes = close_all(self.broker)
        except BrokerError as err:
            self._error = err
        except Exception as err:  # a bug must not lose the stop: the fallback closes each
            self._error = BrokerError(f"close-all failed: {type(err).__name__}: {err}")
        finally:
            sys.setswitchinterval(self._switch)

    def result(self) -> list[SymbolOutcome]:
        """The close-all's answer (waits for it); BrokerError as the adapter raised it."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._outcomes is not None
        return self._outcomes


@dataclass(frozen=True)
class StopStart:
    """A stop begun: written ahead (`ahead`, None if the spool could not take it: `note` says
    why) and, for `halt`, its close-all on the wire (`first`)."""

    began: datetime
    ahead: Claim | None
    first: FirstClose | None
    note: str | None = None


def start_stop(broker: Broker, spool: StopSpool | None, reason: str, *,
               send: bool = True, clock: Clock = SYSTEM_CLOCK) -> StopStart:
    """Write the stop ahead (fsynced, locked while this process lives), then, with `send`,
    send the close-all. Nothing here waits on the network or imports the database layer."""
    began = clock.now()
    ahead, why = None, None
    if spool is not None:
        ahead, why = spool.write_ahead(OfflineStop(began, reason.strip(), {}, None,
                                                   state=STARTED))
    note = None if why is None else (f"the stop could not be written ahead to the local spool "
                                     f"({why}): sent anyway")
    return StopStart(began, ahead, FirstClose(broker, clock) if send else None, note)


def begin_stop(broker: Broker | None, spool: StopSpool | None, reason: str,
               begun: StopStart | None = None, *,
               clock: Clock = SYSTEM_CLOCK) -> StopStart | None:
    """`halt`'s first step: the stop written ahead and its close-all sent, unless the executable
    did both already (`begun`: cli/early_halt.py). Without a broker nothing is sent: the stop
    latches and records only."""
    if begun is not None or broker is None:
        return begun
    return start_stop(broker, spool, reason, clock=clock)

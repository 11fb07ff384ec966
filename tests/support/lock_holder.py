"""Another process holding a named lock: `python -m tests.support.lock_holder URL NAME WAIT`.

Prints `held` or `refused` once the attempt is over, then answers the lines `verify` and
`reacquire` on stdin with `True` or `False`; leaves (releasing the lock) when stdin closes.
"""

from __future__ import annotations

import sys

from tradectl.db.session import Database


def main(url: str, name: str, wait: str) -> None:
    db = Database(url)
    with db.lock(name, wait=float(wait)) as lock:
        print("held" if lock else "refused", flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command in ("verify", "reacquire"):
                print(getattr(lock, command)(), flush=True)
    db.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:4])

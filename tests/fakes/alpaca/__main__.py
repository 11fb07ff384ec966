"""Run the fake in the foreground: python -m tests.fakes.alpaca --port 8765 [--latency 0.05]
[--clock TIMESTAMP,IS_OPEN,NEXT_OPEN,NEXT_CLOSE] (e.g. --clock
2026-11-27T16:30-05:00,false,2026-11-30T09:30-05:00,2026-11-30T16:00-05:00)."""

import argparse
import threading

from .server import FakeAlpaca


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.alpaca", description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--key", default="PKTESTKEY0000000000")
    parser.add_argument("--secret", default="testsecret0000000000000000000000000000000")
    parser.add_argument(
        "--price",
        action="append",
        default=[],
        metavar="SYMBOL=PRICE",
        help="initial price of a symbol (repeatable), e.g. --price AAPL=150",
    )
    parser.add_argument(
        "--clock",
        metavar="TIMESTAMP,IS_OPEN,NEXT_OPEN,NEXT_CLOSE[,LAST_CLOSE]",
        help="pin the market clock (ISO times; naive ones are America/New_York)",
    )
    args = parser.parse_args()
    fake = FakeAlpaca(api_key=args.key, secret_key=args.secret, latency=args.latency).start(
        args.port
    )
    for item in args.price:
        symbol, _, price = item.partition("=")
        fake.set_price(symbol, price)
    if args.clock:
        set_clock(fake, args.clock)
    print(fake.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


def set_clock(fake: FakeAlpaca, text: str) -> None:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (4, 5) or parts[1] not in ("true", "false"):
        raise SystemExit("--clock: TIMESTAMP,IS_OPEN(true|false),NEXT_OPEN,NEXT_CLOSE[,LAST_CLOSE]")
    fake.set_clock(
        parts[0],
        is_open=parts[1] == "true",
        next_open=parts[2],
        next_close=parts[3],
        last_close=parts[4] if len(parts) == 5 else None,
    )


if __name__ == "__main__":
    main()

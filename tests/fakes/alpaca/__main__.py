"""Run the fake in the foreground: python -m tests.fakes.alpaca --port 8765 [--latency 0.05]."""

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
    args = parser.parse_args()
    fake = FakeAlpaca(api_key=args.key, secret_key=args.secret, latency=args.latency).start(
        args.port
    )
    for item in args.price:
        symbol, _, price = item.partition("=")
        fake.set_price(symbol, price)
    print(fake.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()

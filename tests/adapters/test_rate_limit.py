"""The adapter's client-side rate limit keeps any 60-second window under Alpaca's 200 requests."""

from tradectl.broker.rest import RATE_BURST, RATE_PER_SECOND, TokenBucket


def test_no_sixty_second_window_exceeds_alpacas_limit() -> None:
    now = 0.0

    def clock() -> float:
        return now

    def sleep(seconds: float) -> None:
        nonlocal now
        now += seconds

    bucket = TokenBucket(RATE_PER_SECOND, RATE_BURST, clock=clock, sleep=sleep)
    sent: list[float] = []
    while now < 180:
        bucket.take()
        sent.append(now)
    worst = max(sum(1 for t in sent if start <= t < start + 60) for start in sent)
    assert worst <= 190 < 200
    assert sent[RATE_BURST - 1] == 0  # the burst goes out at once

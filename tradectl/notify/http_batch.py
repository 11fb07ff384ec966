"""A batch of alerts posted one by one to an HTTP endpoint (the webhook, Telegram's Bot API):
one bounded session, the channel's secrets kept out of every log line meanwhile, and the rest of
the batch not tried once the endpoint cannot be reached (each would wait as long)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tradectl.net import BoundedHttp
from tradectl.notify import Notice
from tradectl.notify.redact import Redact


class Unreachable(Exception):
    """No answer, or told to wait: the rest of the batch is not tried now."""


def post_each(base_url: str, redact: Redact, notices: Sequence[Notice],
              post: Callable[[BoundedHttp, Notice], str | None]) -> dict[int, str | None]:
    """Each notice's outcome by its key: None when delivered, else why not."""
    results: dict[int, str | None] = {}
    with redact.installed():
        session = BoundedHttp(base_url)
        try:
            for notice in notices:
                try:
                    results[notice.key] = post(session, notice)
                except Unreachable as err:
                    results[notice.key] = str(err)
                    for rest in notices:
                        results.setdefault(rest.key, f"not tried: {err}")
                    break
        finally:
            session.close()
    return results

"""tradectl.net on httpcore: URLs go out in the ASCII form httpx sent them in, query parameters
are encoded as before, and a URL that cannot be used is refused before anything is sent."""

from __future__ import annotations

import pytest

from tradectl.net import BoundedHttp, HttpFailure
from tradectl.net.transport import Client, _prepared, _with_query


def test_an_international_url_is_sent_as_ascii() -> None:
    assert _with_query("https://bücher.example/ä b?q=ü", None) == (
        "https://xn--bcher-kva.example/%C3%A4%20b?q=%C3%BC")
    assert _with_query("https://h.test:8443/a%20b", None) == "https://h.test:8443/a%20b"


def test_parameters_are_added_to_the_query_percent_encoded() -> None:
    assert _with_query("https://h.test/v2/orders", {"after": "2026-12-07T10:00:00+00:00",
                                                     "status": "all"}) == (
        "https://h.test/v2/orders?after=2026-12-07T10%3A00%3A00%2B00%3A00&status=all")
    assert _with_query("https://h.test/x?a=1", {"b": "2 3"}) == "https://h.test/x?a=1&b=2%203"


@pytest.mark.parametrize("url", ["ftp://h.test/x", "http:///x", "http://[::1/x", "h.test/x"])
def test_an_unusable_url_is_refused_before_sending(url: str) -> None:
    with pytest.raises(HttpFailure) as caught:
        BoundedHttp(url).request("GET", url, total=1, connect=1)
    assert caught.value.kind == "url" and not caught.value.sent


def test_a_request_s_own_headers_replace_the_client_s_whatever_their_case() -> None:
    client = Client(None, {"Accept": "application/json", "X-Key": "k"})  # type: ignore[arg-type]
    _, lines, body = _prepared(client, "https://h.test/x", None, {"qty": "1"}, None,
                               {"accept": "*/*"})
    assert lines == [(b"accept", b"*/*"), (b"X-Key", b"k"),
                     (b"Content-Type", b"application/json")]
    assert body == b'{"qty":"1"}'  # as httpx encoded JSON

"""The httpcore side of `tradectl.net` (imported on first use).

httpcore is the connection layer httpx is built on: one pool, HTTP/1.1, TLS, proxies. tradectl
uses it directly because importing httpx also imports its command-line client (click, rich,
pygments: about twice httpcore's import time), which a request never needs.

The total deadline: httpcore's timeouts bound each socket read, so an answer dripping a byte a
second never times out. Here every socket operation (connect, TLS handshake step, write, read)
is given at most the time left before the request's deadline, through httpcore's public
`network_backend` hook; past the deadline the next operation fails at once. The deadline lives
in a thread-local, so connections kept alive in the pool serve any thread's next request.
The DNS look-up is the one step not bounded (the resolver has no timeout to give).
"""

from __future__ import annotations

import json as jsonlib
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpcore

from tradectl.net import Answer, HttpFailure

_BROKEN: tuple[type[Exception], ...] = (httpcore.NetworkError, httpcore.RemoteProtocolError,
                                        httpcore.ProxyError)
_KEPT = "/%:@!$&'()*+,;=?~"  # a URL's own punctuation, and escapes already made

_UNUSABLE: tuple[type[Exception], ...] = (httpcore.UnsupportedProtocol,
                                          httpcore.LocalProtocolError)


class _Deadline(threading.local):
    value: float | None = None

    def clamp(self, timeout: float | None, late: type[Exception]) -> float | None:
        if self.value is None:
            return timeout
        left = self.value - time.monotonic()
        if left <= 0:
            raise late("the request's deadline has passed")
        return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner, self._deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        bounded = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, bounded),
                       self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, deadline: _Deadline) -> None:
        self._inner, self._deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        bounded = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
        return _Stream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class Client:
    """A connection pool and the headers every request carries."""

    def __init__(self, pool: httpcore.ConnectionPool | httpcore.HTTPProxy,
                 headers: Mapping[str, str]) -> None:
        self.pool, self.headers = pool, _by_name(headers)

    def close(self) -> None:
        self.pool.close()


def open_client(headers: dict[str, str], verify: ssl.SSLContext | None,
                urls: tuple[str, ...]) -> tuple[Client, _Deadline]:
    """A client whose requests are bounded by the thread's deadline. `urls`: where it will
    send; the first one's host decides on HTTPS_PROXY / HTTP_PROXY / NO_PROXY (as requests
    did), and only an https one needs the CA bundle loaded (~0.05 s, not paid for a local
    http fake: there a verifying context with no CA fails any https closed)."""
    deadline = _Deadline()
    if verify is not None:
        context = verify
    elif any(u.lower().startswith("https:") for u in urls):
        context = default_context()
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    backend = _Backend(deadline)
    proxy = _env_proxy(urls[0] if urls else None)
    pool: httpcore.ConnectionPool | httpcore.HTTPProxy
    if proxy:
        pool = httpcore.HTTPProxy(proxy_url=proxy, ssl_context=context, network_backend=backend)
    else:
        pool = httpcore.ConnectionPool(ssl_context=context, network_backend=backend,
                                       max_keepalive_connections=10)
    # Ask for the answer as it is: a compressed one is still inflated within the cap.
    return Client(pool, {"Accept": "*/*", "Accept-Encoding": "identity", **headers}), deadline


def default_context() -> ssl.SSLContext:
    """Verifying, on SSL_CERT_FILE or SSL_CERT_DIR when set, else certifi's bundle (httpx's
    rule, kept)."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _env_proxy(url: str | None) -> str | None:
    # urllib.request (and http.client, email under it) only when a proxy may be set.
    if not url or not any(name.lower().endswith("_proxy") for name in os.environ):
        return None
    import urllib.request

    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


def call(client: Client, method: str, url: str, *, deadline: float, connect: float,
         params: Mapping[str, Any] | None, json: Any, content: bytes | None,
         headers: Mapping[str, str] | None, reader: Callable[[str], Any]) -> Answer:
    left = max(deadline - time.monotonic(), 0.001)
    timeout = {"connect": min(connect, left), "read": left, "write": left, "pool": left}
    target, lines, content = _prepared(client, url, params, json, content, headers)
    try:
        with client.pool.stream(method, target, headers=lines, content=content,
                                extensions={"timeout": timeout}) as response:
            answer_headers = _answer_headers(response.headers)
            read = reader(answer_headers.get("content-encoding", ""))
            for chunk in response.iter_stream():  # at most 64 KB a chunk (httpcore's reads)
                read.feed(chunk)
                if read.done:
                    break
                if time.monotonic() > deadline:
                    raise HttpFailure("timeout", "no whole answer within the time bound")
            return Answer(response.status, answer_headers, read.content(), read.truncated)
    except httpcore.TimeoutException as err:
        never = isinstance(err, httpcore.ConnectTimeout)
        raise HttpFailure("connect" if never else "timeout",
                          "no connection in time" if never else
                          "no whole answer within the time bound") from None
    except httpcore.ConnectError as err:
        if _tls_failed(err):
            raise HttpFailure("tls", "TLS failed (certificate not trusted, wrong host name, "
                              "or not TLS)") from None
        raise HttpFailure("connect", "could not connect (refused, or unknown host)") from None
    except _BROKEN:
        raise HttpFailure("broken", "the connection broke off mid-answer") from None
    except _UNUSABLE:
        raise HttpFailure("url", "the URL is not usable") from None


def _prepared(client: Client, url: str, params: Mapping[str, Any] | None, json: Any,
              content: bytes | None, headers: Mapping[str, str] | None
              ) -> tuple[httpcore.URL, list[tuple[bytes, bytes]], bytes | None]:
    """The URL, the header lines and the body, checked before anything is sent."""
    sent = {**client.headers, **_by_name(headers or {})}
    if json is not None:  # as httpx encoded it
        content = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"),
                                allow_nan=False).encode()
        sent.setdefault("content-type", ("Content-Type", "application/json"))
    try:
        target = httpcore.URL(_with_query(url, params))
        lines = [(name.encode("ascii"), value.encode("latin-1")) for name, value in sent.values()]
    except (UnicodeError, ValueError, TypeError):
        raise HttpFailure("url", "the URL is not usable") from None
    return target, lines, content


def _by_name(headers: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Headers keyed by their lower-case name (a request's own replace the client's)."""
    return {name.lower(): (name, value) for name, value in headers.items()}


def _with_query(url: str, params: Mapping[str, Any] | None) -> str:
    """The URL as httpcore takes it (ASCII: an international host in IDNA, anything else
    percent-encoded, as httpx did), with `params` added to its query."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL with a host")
    if not url.isascii():
        host = parts.hostname.encode("idna").decode("ascii")
        netloc = parts.netloc.rpartition("@")
        hostport = host + (f":{parts.port}" if parts.port is not None else "")
        url = urlunsplit((parts.scheme, netloc[0] + netloc[1] + hostport,
                          quote(parts.path, safe=_KEPT), quote(parts.query, safe=_KEPT),
                          quote(parts.fragment, safe=_KEPT)))
    if not params:
        return url
    query = urlencode([(k, str(v)) for k, v in params.items()], quote_via=quote, safe="")
    return f"{url}{'&' if parts.query else '?'}{query}"


def _answer_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-case names; a repeated header's values joined by ", " (as httpx did)."""
    merged: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        merged[key] = f"{merged[key]}, {text}" if key in merged else text
    return merged


def _tls_failed(err: BaseException) -> bool:
    seen: BaseException | None = err
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError) or "SSL" in type(seen).__name__:
            return True
        if "CERTIFICATE" in str(seen).upper() or "SSL" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False

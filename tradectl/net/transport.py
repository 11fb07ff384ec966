"""The httpx side of `tradectl.net` (imported on first use: httpx and httpcore cost ~0.1 s).

The total deadline: httpx's timeouts bound each socket read, so an answer dripping a byte a
second never times out. Here every socket operation (connect, TLS handshake step, write, read)
is given at most the time left before the request's deadline, through httpcore's public
`network_backend` hook; past the deadline the next operation fails at once. The deadline lives
in a thread-local, so connections kept alive in the pool serve any thread's next request.
The DNS look-up is the one step not bounded (the resolver has no timeout to give).
"""

from __future__ import annotations

import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from tradectl.net import CHUNK, Answer, HttpFailure

_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError, httpcore.ConnectError)


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


class _Transport(httpx.HTTPTransport):
    """httpx's transport (so vcrpy's patch of `handle_request` still records and replays) on
    a pool built with the deadline backend."""

    def __init__(self, context: ssl.SSLContext, deadline: _Deadline,
                 proxy: str | None) -> None:
        # httpx's own __init__ is not called: it would build a pool (and an SSL context) that
        # is replaced at once; `handle_request` needs only `_pool`.
        backend = _Backend(deadline)
        if proxy:
            self._pool = httpcore.HTTPProxy(proxy_url=proxy, ssl_context=context,
                                            network_backend=backend)
        else:
            self._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=backend,
                                                 max_keepalive_connections=10)


def open_client(headers: dict[str, str], verify: ssl.SSLContext | None,
                urls: tuple[str, ...]) -> tuple[httpx.Client, _Deadline]:
    """A client whose requests are bounded by the thread's deadline. `urls`: where it will
    send; the first one's host decides on HTTPS_PROXY / HTTP_PROXY / NO_PROXY (as requests
    did), and only an https one needs the CA bundle loaded (~0.05 s, not paid for a local
    http fake: there a verifying context with no CA fails any https closed)."""
    deadline = _Deadline()
    if verify is not None:
        context = verify
    elif any(u.lower().startswith("https:") for u in urls):
        context = httpx.create_ssl_context()
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    transport = _Transport(context, deadline, _env_proxy(urls[0] if urls else None))
    # Ask for the answer as it is: a compressed one is still inflated within the cap.
    client = httpx.Client(transport=transport, trust_env=False, follow_redirects=False,
                          headers={"Accept-Encoding": "identity", **headers})
    return client, deadline


def _env_proxy(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


def call(client: httpx.Client, method: str, url: str, *, deadline: float, connect: float,
         params: Mapping[str, Any] | None, json: Any, content: bytes | None,
         headers: Mapping[str, str] | None, reader: Callable[[str], Any]) -> Answer:
    left = max(deadline - time.monotonic(), 0.001)
    timeout = httpx.Timeout(left, connect=min(connect, left))
    try:
        with client.stream(method, url, params=params, json=json, content=content,
                           headers=headers, timeout=timeout) as response:
            read = reader(response.headers.get("content-encoding", ""))
            for chunk in response.iter_raw(CHUNK):
                read.feed(chunk)
                if read.done:
                    break
                if time.monotonic() > deadline:
                    raise HttpFailure("timeout", "no whole answer within the time bound")
            answer_headers = {k.lower(): v for k, v in response.headers.items()}
            return Answer(response.status_code, answer_headers, read.content(), read.truncated)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError):
        raise HttpFailure("url", "the URL is not usable") from None
    except httpx.TimeoutException as err:
        never = isinstance(err, httpx.ConnectTimeout)
        raise HttpFailure("connect" if never else "timeout",
                          "no connection in time" if never else
                          "no whole answer within the time bound") from None
    except httpx.ConnectError as err:
        if _tls_failed(err):
            raise HttpFailure("tls", "TLS failed (certificate not trusted, wrong host name, "
                              "or not TLS)") from None
        raise HttpFailure("connect", "could not connect (refused, or unknown host)") from None
    except _TRANSPORT_ERRORS:
        raise HttpFailure("broken", "the connection broke off mid-answer") from None


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

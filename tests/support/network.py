"""Network faults on 127.0.0.1: a server that never answers, and a proxy whose link can be cut.

    with SilentServer() as relay:            # a stuck SMTP relay, a hung database server
        connect(port=relay.port)             # accepted; nothing is ever sent back
    with TcpProxy(upstream_port) as proxy:   # clients connect to proxy.port
        proxy.cut()                          # the clients' side closes; the server's stays open
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress


class SilentServer:
    """Accepts every connection and never sends a byte (what it receives is read and dropped)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.host = "127.0.0.1"
        self.accepted = 0
        self._clients: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> SilentServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._clients.append(client)
            threading.Thread(target=_drain, args=(client,), daemon=True).start()

    def stop(self) -> None:
        self._closed.set()
        _close_listener(self._listener)
        for client in self._clients:
            with suppress(OSError):
                client.close()
        self._thread.join(5)

    def __enter__(self) -> SilentServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _close_listener(listener: socket.socket) -> None:
    with suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
    listener.close()


def _drain(client: socket.socket) -> None:
    with suppress(OSError):
        while client.recv(65536):
            pass


class TcpProxy:
    """Forwards 127.0.0.1:port to an upstream port. `cut()` closes the client side of every link
    but keeps the upstream side open: the server still sees its session (a half-open link, as
    after a network failure), the client sees its connection broken. New connections still pass.
    """

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._links: list[tuple[socket.socket, socket.socket]] = []
        self._orphans: list[socket.socket] = []
        self._cut: set[int] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, url: str) -> str:
        """A database URL on the upstream port, rewritten to go through the proxy."""
        return url.replace(f":{self.upstream[1]}/", f":{self.port}/", 1)

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._links.append((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def cut(self) -> int:
        """Break every current link on the client side only; how many links were cut."""
        with self._lock:
            links, self._links = self._links, []
        for client, server in links:
            self._orphans += [client, server]  # kept, so that their ids stay unique
            self._cut.add(id(client))
            with suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()
        return len(links)

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        """Copy until either side ends; an end passes on, except a cut (the server then hears
        nothing more, as across a dead network)."""
        with suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        if id(source) not in self._cut and id(target) not in self._cut:
            with suppress(OSError):
                target.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        _close_listener(self._listener)
        with self._lock:
            links, self._links = self._links, []
        for sock in [s for link in links for s in link] + self._orphans:
            with suppress(OSError):
                sock.close()
        self._thread.join(5)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

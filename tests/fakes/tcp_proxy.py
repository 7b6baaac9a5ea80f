"""A TCP proxy on 127.0.0.1 that a test can take down and bring back, for database outages.

Put it in front of the shared PostgreSQL server instead of restarting that server
(other tests use it)::

    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/db"
        proxy.down()   # every connection through it is cut, new ones are refused
        proxy.up()     # it listens again, on the same port

While it is down nothing listens on its port, so a connection attempt is refused
at once, as while a database server restarts.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from types import TracebackType
from typing import Self

_CHUNK = 65536


class TcpProxy:
    """See the module docstring."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._stop_accepting = threading.Event()
        self.port = 0
        #: Connections made through the proxy since it started.
        self.connections = 0

    def __enter__(self) -> Self:
        self.up()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()
        for thread in self._threads:
            thread.join(timeout=5)

    def up(self) -> None:
        """Listen (again, on the same port once it has one) and pass connections on."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop_accepting.clear()
        self._accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepting.start()

    def down(self) -> None:
        """Stop listening and cut every connection through the proxy."""
        self._stop_accepting.set()
        if self._accepting is not None:
            self._accepting.join(timeout=5)
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            cut = list(self._open)
        for sock in cut:
            # The relay thread sees the end at once and closes both sockets itself.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop_accepting.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                server = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open |= {client, server}
                self.connections += 1
            relay = threading.Thread(target=self._relay, args=(client, server), daemon=True)
            self._threads.append(relay)
            relay.start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        """Pass bytes both ways until either side ends (or down() cuts both), then close."""
        peer = {client: server, server: client}
        with contextlib.suppress(OSError):
            ended = False
            while not ended:
                ready, _, _ = select.select(list(peer), [], [])
                for source in ready:
                    data = source.recv(_CHUNK)
                    ended = ended or not data
                    if data:
                        peer[source].sendall(data)
        with self._lock:
            self._open -= {client, server}
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

"""The machinery shared by the fake providers: a threaded HTTP/1.1 server on 127.0.0.1.

A provider fake subclasses ``FakeProvider`` and says how its API answers
(``render``); this module records requests and picks each request's mode.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from fakes.modes import Answer, Disconnect, Fail, Hang, Mode, Ok, RateLimited, Recorded, Slow

# ---------------------------------------------------------------- the fake


class FakeProvider:
    """A provider on 127.0.0.1 that records requests and answers in the mode it is set to.

    The answer to each request is, in order of precedence: the mode set for
    its recipient (``for_recipient``), the next scripted mode (``script``),
    then the default mode (``set_mode``, initially ``Ok()``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._script: deque[Mode] = deque()
        self._by_recipient: dict[str, Mode] = {}
        self._mode: Mode = Ok()
        self.stopping = threading.Event()
        #: Exceptions the fake itself raised while answering (a test should see none).
        self.errors: list[BaseException] = []
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    # -- life

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        """End hangs, close every connection and the listening socket, join the threads."""
        self.stopping.set()
        self._server.shutdown()
        self._thread.join()
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- control

    def set_mode(self, mode: Mode) -> None:
        """How every request is answered from now on (unless scripted or per recipient)."""
        with self._lock:
            self._mode = mode

    def script(self, *modes: Mode) -> None:
        """Answer the next requests with these modes, one each, then with the default again."""
        with self._lock:
            self._script.extend(modes)

    def for_recipient(self, recipient: str, mode: Mode) -> None:
        """Always answer requests for ``recipient`` in ``mode`` (e.g. a STOPped number)."""
        with self._lock:
            self._by_recipient[recipient] = mode

    # -- what happened

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def peak_rate(self, window: float = 1.0) -> int:
        """The most requests received within any ``window`` seconds."""
        times = sorted(r.at for r in self.requests)
        start, peak = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= window:
                start += 1
            peak = max(peak, end - start + 1)
        return peak

    # -- for subclasses

    def route(self, request: Recorded) -> Answer | None:
        """An answer that does not depend on the mode (bad path, bad auth, bad body), or None."""
        raise NotImplementedError

    def recipient_of(self, request: Recorded) -> str | None:
        raise NotImplementedError

    def render(self, mode: Ok | Fail | RateLimited, request: Recorded) -> Answer:
        raise NotImplementedError

    # -- the request path (runs on server threads)

    def record(self, request: Recorded) -> Mode | Answer:
        with self._lock:
            self._requests.append(request)
        fixed = self.route(request)
        if fixed is not None:
            return fixed
        return self._mode_for(request)

    def _mode_for(self, request: Recorded) -> Mode:
        recipient = self.recipient_of(request)
        with self._lock:
            if recipient in self._by_recipient:
                return self._by_recipient[recipient]
            return self._script.popleft() if self._script else self._mode


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs offer
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Recorded(self.command, self.path, headers, body, time.time())
        fake = self.server.fake
        action = fake.record(request)
        if isinstance(action, Slow):
            if fake.stopping.wait(action.delay):
                return self._drop()
            action = action.then
        if isinstance(action, Hang):
            fake.stopping.wait(action.limit)
            return self._drop()
        if isinstance(action, Disconnect):
            return self._drop()
        answer = action if isinstance(action, Answer) else fake.render(action, request)
        request.status = answer.status
        self._write(answer)

    def _write(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def _drop(self) -> None:
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops bursts of connections (the client
    # retries a second later), which would look like a slow provider.
    request_queue_size = 128

    def __init__(self, fake: FakeProvider) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake threads blocked on idle keep-alive connections: they see EOF and end."""
        with self._open_lock:
            open_now = list(self._open)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer is normal here; anything else is a fake's bug."""
        error = sys.exc_info()[1]
        if not isinstance(error, OSError) and error is not None:
            self.fake.errors.append(error)

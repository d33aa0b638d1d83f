"""A local HTTP server for fakes of web APIs: counts, measures and misbehaves on request.

:class:`FakeHttpServer` binds 127.0.0.1 on a free port, serves HTTP/1.1 with keep-alive (as the
real services do, so clients reuse connections the same way), and for every request:

- counts it per *scope* (an Airtable base, an API host) and keeps its arrival time, so a test can
  assert the most requests that arrived within any one second (:meth:`max_requests_in_window`);
- can answer 429 on every k-th request (``rate_limit_every``), drop the connection at the n-th
  request without answering or in the middle of the body (``drop_at``, once each), or answer a
  malformed page (``malformed_at``: not JSON, or JSON without the records);
- checks the bearer token or header token, answering 401 without it.

Subclasses implement :meth:`FakeHttpServer.answer`. :meth:`stop` closes the listening socket and
every open connection, so no thread outlives the server.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

Malformed = Literal["not_json", "no_records"]
DropMode = Literal["before_answer", "mid_body"]


@dataclass
class Request:
    """What :meth:`FakeHttpServer.answer` gets: the method, path, query (lists of values) and headers."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Answer:
    """A response: status, JSON body (or raw bytes) and extra headers."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        """The body as bytes."""
        return self.raw if self.raw is not None else json.dumps(self.body, separators=(",", ":")).encode()


class FakeHttpServer:
    """Base of the fakes; see the module docstring. Use as a context manager or start()/stop()."""

    def __init__(self, *, token: str | None, token_header: str = "Authorization", token_scheme: str | None = "Bearer",
                 rate_limit_every: int | None = None, drop_at: int | None = None,
                 drop_mode: DropMode = "before_answer", malformed_at: dict[int, Malformed] | None = None) -> None:
        self.token = token
        self.token_header = token_header
        self.token_scheme = token_scheme
        self.rate_limit_every = rate_limit_every
        self.drop_at = drop_at
        self.drop_mode = drop_mode
        self.malformed_at = dict(malformed_at or {})
        self.requests = 0  # every request, numbered from 1 in arrival order
        self.by_scope: Counter[str] = Counter()
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.rate_limited = 0
        self.dropped = 0
        self.headers_seen: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- what subclasses provide --------------------------------------------------------------
    def scope_of(self, request: Request) -> str:
        """The scope a request counts in (one for the whole server unless a subclass says otherwise)."""
        return "all"

    def answer(self, request: Request) -> Answer:
        """The answer to an authorised request."""
        raise NotImplementedError

    def malformed(self, request: Request, kind: Malformed) -> Answer:
        """A page that is not what a client expects: not JSON, or JSON without the records."""
        if kind == "not_json":
            return Answer(raw=b"<html><body>502 Bad Gateway</body></html>", headers={"Content-Type": "text/html"})
        return Answer(body={"unexpected": True})

    # --- life cycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "the server is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self, port: int = 0) -> str:
        """Bind ``port`` on 127.0.0.1 (0: a free one) and serve in a background thread; return the base URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body leave in two writes: with Nagle's algorithm the body would wait for
            # the client's delayed ACK (40 ms a page on Linux), a delay no real service has
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake._connections.add(self.connection)

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    with fake._lock:
                        fake._connections.discard(self.connection)

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # tests read the counters, not a log on stderr

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-http", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving, close every connection, join the serving thread."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeHttpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- measurements -----------------------------------------------------------------------------
    def max_requests_in_window(self, scope: str | None = None, window_s: float = 1.0) -> int:
        """The most requests of ``scope`` (of all scopes when None) that arrived within any ``window_s``."""
        with self._lock:
            times = sorted(t for key, values in self.arrivals.items() if scope in (None, key) for t in values)
        best, first = 0, 0
        for last, moment in enumerate(times):
            while moment - times[first] >= window_s:
                first += 1
            best = max(best, last - first + 1)
        return best

    def reset_counts(self) -> None:
        """Forget the counts per scope and the headers seen (between two reads of one test).

        Arrival times stay: the rate is measured over the server's whole life.
        """
        with self._lock:
            self.by_scope.clear()
            self.headers_seen.clear()

    # --- the request loop -------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        arrived = time.monotonic()
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(method=method, path=parts.path, query=parse_qs(parts.query, keep_blank_values=True),
                          headers=dict(handler.headers.items()), body=body)
        scope = self.scope_of(request)
        with self._lock:
            self.requests += 1
            number = self.requests
            self.by_scope[scope] += 1
            self.arrivals[scope].append(arrived)
            self.headers_seen.append(request.headers)
            drop = number == self.drop_at
        if drop:
            self.dropped += 1
            self._drop(handler)
            return
        if not self._authorised(request):
            answer = Answer(401, {"error": {"type": "AUTHENTICATION_REQUIRED", "message": "Authentication required"}})
        elif self.rate_limit_every and number % self.rate_limit_every == 0:
            with self._lock:
                self.rate_limited += 1
            answer = Answer(429, {"errors": [{"error": "RATE_LIMIT_REACHED",
                                              "message": "Rate limit exceeded. Please try again later"}]})
        elif number in self.malformed_at:
            answer = self.malformed(request, self.malformed_at[number])
        else:
            try:
                answer = self.answer(request)
            except Exception as error:  # a bug in a fake must show in the test, as a 500 with its message
                answer = Answer(500, {"error": {"type": "FAKE_SERVER_ERROR", "message": repr(error)}})
        self._send(handler, answer)

    def _authorised(self, request: Request) -> bool:
        if self.token is None:
            return True
        expected = f"{self.token_scheme} {self.token}" if self.token_scheme else self.token
        return request.headers.get(self.token_header) == expected

    def _send(self, handler: BaseHTTPRequestHandler, answer: Answer) -> None:
        payload = answer.payload()
        handler.send_response(answer.status)
        handler.send_header("Content-Type", answer.headers.pop("Content-Type", "application/json; charset=utf-8"))
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _drop(self, handler: BaseHTTPRequestHandler) -> None:
        """Close the connection: before any answer, or after the headers and half of a promised body."""
        if self.drop_mode == "mid_body":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", "4096")
            handler.end_headers()
            handler.wfile.write(b'{"records": [')
            handler.wfile.flush()
        handler.close_connection = True
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

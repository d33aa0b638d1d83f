"""A local HTTP server speaking the OpenAI Responses API, for the real openai client through ``base_url``.

It answers ``POST /v1/responses`` from a queue of behaviours (a structured answer, an HTTP error,
a malformed body, a delay) and records each request's headers and JSON body. It listens on
127.0.0.1 only, on a free port, and stops with its context manager; every test bounds the
client's retries and timeout, so a test makes a known, small number of requests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    """One answer: ``status`` with ``body`` (a dict as JSON, or raw text), after ``delay`` seconds."""

    status: int = 200
    body: Any = None
    delay: float = 0.0


@dataclass
class FakeOpenAI:
    """The server's state: what to answer next and what was asked."""

    url: str = ""
    behaviours: list[Behaviour] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_with(self, *behaviours: Behaviour) -> None:
        """Queue answers; the last one repeats."""
        self.behaviours = list(behaviours)

    def next_behaviour(self) -> Behaviour:
        with self.lock:
            return self.behaviours.pop(0) if len(self.behaviours) > 1 else self.behaviours[0]


def response_body(answer: dict[str, Any], *, model: str = "gpt-test") -> dict[str, Any]:
    """A Responses API object whose output text is ``answer`` as JSON."""
    return {
        "id": "resp_test", "object": "response", "created_at": int(time.time()), "status": "completed",
        "model": model, "parallel_tool_calls": False, "tool_choice": "auto", "tools": [],
        "output": [{"type": "message", "id": "msg_test", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": json.dumps(answer), "annotations": []}]}],
    }


@contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    """Run the server for the duration of the ``with`` block."""
    state = FakeOpenAI()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with state.lock:
                state.requests.append({"path": self.path, "headers": dict(self.headers),
                                       "json": json.loads(raw) if raw else None})
            behaviour = state.next_behaviour()
            if behaviour.delay:
                time.sleep(behaviour.delay)
            body = behaviour.body if isinstance(behaviour.body, str) else json.dumps(behaviour.body)
            data = body.encode()
            try:
                self.send_response(behaviour.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

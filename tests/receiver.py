"""A local webhook receiver for tests and benchmarks: records each request and verifies its
signature with the ``standardwebhooks`` package against the secrets it is told about."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified_by: list[str] = field(default_factory=list)  # secrets whose signature matched
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang: float = 0.0  # seconds to wait before answering (released early by Receiver.release)


class Receiver:
    """``with Receiver(secrets) as r: ... r.url ... r.wait_for(2)``."""

    def __init__(self, secrets: list[str] | None = None, *, verify: bool = True) -> None:
        self.secrets = list(secrets or [])
        self.verify = verify
        self.requests: list[Received] = []
        self.plan: deque[Reply] = deque()
        self.default = Reply()
        self._cond = threading.Condition()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                reply = receiver._record(dict(self.headers.items()), body)
                if reply.hang:
                    receiver._release.wait(reply.hang)
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up (timeout): fine

            def log_message(self, *_args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def _record(self, headers: dict[str, str], body: bytes) -> Reply:
        headers = {k.lower(): v for k, v in headers.items()}
        verified = []
        if self.verify:
            from standardwebhooks import Webhook

            for secret in self.secrets:
                try:
                    Webhook(secret).verify(body, headers)
                    verified.append(secret)
                except Exception:
                    pass
        with self._cond:
            self.requests.append(Received(headers, body, verified))
            reply = self.plan.popleft() if self.plan else self.default
            self._cond.notify_all()
        return reply

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
                self._cond.wait(left)
            return list(self.requests)

    def release(self) -> None:
        self._release.set()

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

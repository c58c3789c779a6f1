"""The shared base of the API simulators: HTTP server, routing, request log, CLI.

A simulator is an :class:`App`: a list of routes (method, path regex, handler).
A handler gets a :class:`Request` and returns a :class:`Response` (or raises
:class:`HTTPError`). :class:`SimServer` serves an App on loopback, in a thread
(pytest fixtures) or in the foreground (the ``nomad``/``vault``-like CLIs), and
records every request it answered, in memory and optionally as JSON lines in a
file, so tests and benchmarks can count requests per run.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HTTPError(400, "failed to parse JSON input: %s" % exc) from exc

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON, str -> text, bytes -> raw, None -> empty
    headers: dict[str, str] = field(default_factory=dict)


class HTTPError(Exception):
    """An error answer; ``body`` is the exact error body the real server sends."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(body)
        self.status = status
        self.body = body
        self.headers = headers or {}


Handler = Callable[[Request], Response]


class App:
    """Routes plus the hook that turns unexpected errors into an error body."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        compiled = re.compile("^" + pattern + "$")

        def register(func: Handler) -> Handler:
            self.routes.append((method.upper(), compiled, func))
            return func

        return register

    def add_route(self, method: str, pattern: str, func: Handler) -> None:
        self.route(method, pattern)(func)

    def error_response(self, status: int, body: Any) -> Response:
        """Shape an error the way the simulated server does (override)."""
        return Response(status, body)

    def not_found(self, request: Request) -> Response:
        return self.error_response(404, "404 page not found")

    def dispatch(self, request: Request) -> Response:
        allowed = False
        for method, pattern, func in self.routes:
            match = pattern.match(request.path)
            if not match:
                continue
            if method != request.method:
                allowed = True
                continue
            request.params = match.groupdict()
            try:
                return func(request)
            except HTTPError as exc:
                resp = self.error_response(exc.status, exc.body)
                resp.headers.update(exc.headers)
                return resp
        if allowed:
            return self.error_response(405, "Invalid method")
        return self.not_found(request)


def _encode(body: Any) -> tuple[bytes, str]:
    if body is None:
        return b"", "text/plain; charset=utf-8"
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return json.dumps(body).encode(), "application/json"


class SimServer:
    """Serve an App on loopback and log what it answered."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0, log_path: str | None = None,
                 ssl_context: ssl.SSLContext | None = None):
        self.app = app
        self.requests: list[dict[str, Any]] = []
        self._log_path = log_path
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._tls = ssl_context is not None
        if ssl_context is not None:  # HTTPS, e.g. to test CA and client-certificate options
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        host, port = self._httpd.server_address[:2]
        return "%s://%s:%d" % ("https" if self._tls else "http", host, port)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)
            if self._log_path:
                with open(self._log_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry) + "\n")

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        return sum(
            1 for r in self.requests
            if (method is None or r["method"] == method) and r["path"].startswith(path_prefix)
        )

    def _handler_class(self):
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - silence stderr access log
                return

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
                request = Request(
                    method=self.command,
                    path=split.path,
                    query=query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                try:
                    response = server.app.dispatch(request)
                except Exception as exc:  # a simulator bug: answer 500, never hang
                    response = server.app.error_response(500, "simulator error: %r" % exc)
                # Record before answering: a client that has its answer can count on
                # finding the request in the log.
                server._record({
                    "time": time.time(),
                    "method": self.command,
                    "path": split.path,
                    "query": query,
                    "status": response.status,
                })
                data, ctype = _encode(response.body)
                self.send_response(response.status)
                headers = {"Content-Type": ctype, **response.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_LIST = _serve

        return _Handler

    def start(self) -> SimServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

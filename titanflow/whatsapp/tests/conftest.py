"""A tiny stand-in for the Graph API on loopback, scripted per test."""

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer until the test ends: a read timeout for the client


class GraphStub:
    def __init__(self):
        self.routes: dict[tuple[str, str], object] = {}
        self.seen: list[Seen] = []
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def on(self, method: str, path: str, reply):
        """`reply` is a Reply, or a callable taking the Seen request and returning one."""
        self.routes[(method, path)] = reply

    def _answer(self, seen: Seen) -> Reply:
        self.seen.append(seen)
        reply = self.routes.get((seen.method, seen.path), Reply(404, {"error": {"code": 803}}))
        return reply(seen) if callable(reply) else reply

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._serve()

            def do_POST(self):
                self._serve()

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                reply = stub._answer(seen)
                if reply.hang:
                    stub.release.wait(10)
                    return
                body = reply.body
                if isinstance(body, dict):
                    body = json.dumps(body).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture
def graph_stub():
    stub = GraphStub()
    thread = threading.Thread(target=stub.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield stub
    stub.release.set()
    stub.server.shutdown()
    stub.server.server_close()
    thread.join(5)

"""HTTP/1.1 for the webhook door: requests framed by llhttp (httptools), answers written whole.

The door serves one URL with short plain-text answers, so it needs no framework: on aiohttp's
web server its request and response objects, routing and writer were about half of what the
door spent per delivery (door_server.py has the figures). What a server owes its clients is
here: keep-alive and pipelined requests answered in order, `Expect: 100-continue`, chunked
bodies, limits on the head and the body (a body larger than the limit is refused from its
Content-Length, before it is read), a deadline for a request that stops arriving, idle
connections closed, and a stop that answers every request already begun.

`Handler` decides; a connection only frames. A handler answers through `Exchange.answer`, at
once or later (after a commit), and the connection writes the answers in the order the requests
came.
"""

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Protocol

import httptools

# The head of a request (its line and headers) must fit in this, and hold at most this many
# headers; aiohttp's defaults, which no client of the door comes near.
MAX_HEAD_BYTES = 32 * 1024
MAX_HEADERS = 100
# A request must arrive whole within this of its first byte; an idle connection is closed after.
READ_TIMEOUT_S = 30.0
KEEPALIVE_S = 75.0
# Past this many requests waiting for their answers, a connection is not read until they drain.
MAX_PIPELINED = 8
_KEPT_HEADERS = frozenset((b"content-length", b"expect", b"x-hub-signature-256"))


@dataclass
class Exchange:
    """One request, and the answer the handler gives it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    remote: str
    keep_alive: bool
    answered: bytes | None = field(default=None, repr=False)
    _connection: "Connection | None" = field(default=None, repr=False)

    def answer(self, status: int, text: str = "", *, headers: dict[str, str] | None = None):
        """Answers this request (once; later calls are ignored)."""
        if self.answered is not None:
            return
        self.answered = response_bytes(
            status,
            text,
            close=not self.keep_alive,
            headers=headers,
            head_only=self.method == "HEAD",
        )
        if self._connection is not None:
            self._connection.answered()


class Handler(Protocol):
    def head_refusal(self, method: str, path: str, headers: dict[str, str]) -> tuple | None:
        """(status, text) to refuse a request from its head alone (it is then not read)."""

    def refused(self, status: int, text: str, remote: str) -> None:
        """A request refused by the connection itself (malformed, too large, too slow)."""

    def handle(self, exchange: Exchange) -> None:
        """Takes a whole request; answers it now or later through `exchange.answer`."""


class _Refused(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(status, text)
        self.status, self.text = status, text


class Connection(asyncio.Protocol):
    def __init__(self, server: "HttpServer"):
        self.server = server
        self.handler = server.handler
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.remote = ""
        self.waiting: deque[Exchange] = deque()  # in the order they came, the first answered next
        self.closing = False
        self.reading = True  # False once a request could not be read: nothing more is
        self.paused = False
        self.began: float | None = None  # when the request being read began arriving
        self.idle_since = time.monotonic()
        self._reset()

    def _reset(self) -> None:
        self._url = bytearray()
        self._headers: dict[str, str] = {}
        self._head_bytes = 0
        self._header_count = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._in_head = False
        self._head_seen = 0  # bytes taken in while the head was incomplete

    # -- asyncio -------------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.remote = str(peer[0]) if isinstance(peer, tuple) else str(peer or "")
        self.server.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.closing = True
        self.server.connections.discard(self)
        for exchange in self.waiting:
            exchange._connection = None  # answered later into nothing
        self.waiting.clear()

    def data_received(self, data: bytes) -> None:
        if not self.reading:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__  # what a callback raised
            if not isinstance(refused, _Refused):
                raise
            self._fail(refused.status, refused.text)
        except httptools.HttpParserUpgrade:
            self._fail(400, "Upgrades are not supported.")
        except httptools.HttpParserError:
            self._fail(400, "Malformed request.")
        else:
            if self._in_head:
                # llhttp keeps a header that has not ended yet in memory: bounded here.
                self._head_seen += len(data)
                if self._head_seen > MAX_HEAD_BYTES:
                    self._fail(431, "Request head too large.")

    # -- llhttp's callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.began = time.monotonic()
        self._reset()
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_grows(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._head_grows(len(name) + len(value))
        if self._header_count > MAX_HEADERS:
            raise _Refused(431, "Too many headers.")
        name = name.lower()
        if name in _KEPT_HEADERS:
            self._headers[name.decode("latin-1")] = value.decode("latin-1").strip()

    def on_headers_complete(self) -> None:
        self._in_head = False
        method = self.parser.get_method().decode("latin-1")
        path = self._path()
        refusal = self.handler.head_refusal(method, path, self._headers)
        if refusal is not None:
            raise _Refused(*refusal)
        # Only with no answer owed before it: an interim answer must not overtake them.
        expects = self._headers.get("expect", "").lower() == "100-continue"
        if expects and not self.waiting:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.server.max_body_bytes:
            raise _Refused(*self.server.too_large)
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.began = None
        url = self._url.decode("latin-1")
        path, _, query = url.partition("?")
        exchange = Exchange(
            method=self.parser.get_method().decode("latin-1"),
            path=path,
            query=query,
            headers=self._headers,
            body=b"".join(self._body),
            remote=self.remote,
            keep_alive=bool(self.parser.should_keep_alive()) and not self.server.stopping,
            _connection=self,
        )
        self._reset()
        self.waiting.append(exchange)
        if len(self.waiting) > MAX_PIPELINED and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self.handler.handle(exchange)

    # -- answers -------------------------------------------------------------------------------

    def answered(self) -> None:
        """Writes the answers now due, in the order their requests came."""
        while self.waiting and self.waiting[0].answered is not None:
            exchange = self.waiting.popleft()
            exchange._connection = None
            if self.closing:
                continue
            self.transport.write(exchange.answered)
            if not exchange.keep_alive:
                self._close()
        if not self.waiting:
            self.idle_since = time.monotonic()
            if self.server.stopping and self.began is None:
                self._close()
        if self.paused and len(self.waiting) <= MAX_PIPELINED // 2 and not self.closing:
            self.paused = False
            self.transport.resume_reading()

    def _fail(self, status: int, text: str) -> None:
        """A request that cannot be read on: answered after those before it, then closed."""
        self.reading = False
        self.began = None
        self.handler.refused(status, text, self.remote)
        failed = Exchange("", "", "", {}, b"", self.remote, keep_alive=False, _connection=self)
        self.waiting.append(failed)
        failed.answer(status, text)

    def _close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _head_grows(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _Refused(431, "Request head too large.")

    def _path(self) -> str:
        return bytes(self._url).partition(b"?")[0].decode("latin-1")

    def sweep(self, now: float) -> None:
        """Answers a request that stopped arriving; closes a connection idle too long."""
        if self.closing:
            return
        if self.began is not None and now - self.began > READ_TIMEOUT_S:
            self._fail(408, "The request did not arrive in time.")
            return
        idle = self.reading and self.began is None and not self.waiting
        if idle and now - self.idle_since > KEEPALIVE_S:
            self._close()


class HttpServer:
    """Listens, keeps the connections, and sweeps them once a second."""

    def __init__(self, handler, *, max_body_bytes: int, too_large: tuple[int, str]):
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.too_large = too_large
        self.connections: set[Connection] = set()
        self.stopping = False
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task | None = None

    async def start(self, host: str, port: int) -> tuple:
        loop = asyncio.get_running_loop()
        # reuse_port: several doors may listen on one port, the kernel sharing the load.
        self._server = await loop.create_server(
            lambda: Connection(self), host, port, reuse_port=True, backlog=1024
        )
        self._sweeper = loop.create_task(self._sweep(), name="door-sweeper")
        return self._server.sockets[0].getsockname()

    async def stop(self, *, grace_s: float) -> None:
        """Takes no new connection, answers every request already begun (its body may still
        arrive, up to `grace_s`), then closes every connection."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + grace_s
        for connection in list(self.connections):
            if connection.began is None and not connection.waiting:
                connection._close()
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            _date_expire()
            now = time.monotonic()
            for connection in list(self.connections):
                connection.sweep(now)


# The Date header, formatted once a second (the sweeper expires it), and the common answers
# built with it.
_date_now: str | None = None
_cached: dict[tuple, bytes] = {}


def _date() -> str:
    global _date_now
    if _date_now is None:
        _date_now = formatdate(usegmt=True)
        _cached.clear()
    return _date_now


def _date_expire() -> None:
    global _date_now
    _date_now = None


def response_bytes(
    status: int,
    text: str = "",
    *,
    close: bool = False,
    headers: dict[str, str] | None = None,
    head_only: bool = False,
) -> bytes:
    """A whole plain-text answer; the common ones are built once a second."""
    key = (status, text, close, head_only) if headers is None and len(text) < 64 else None
    date = _date()
    if key is not None and (cached := _cached.get(key)) is not None:
        return cached
    body = text.encode()
    lines = [
        f"HTTP/1.1 {status} {_phrase(status)}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        f"Date: {date}",
        "Server: TitanFlow",
    ]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if close:
        lines.append("Connection: close")
    answer = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)
    if key is not None:
        _cached[key] = answer
    return answer


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"

"""A small HTTP/1.1 client for the webhook poster: POSTs over keep-alive connections, nothing more.

aiohttp's client cost the poster 0.20-0.24 ms of CPU a delivery against a receiver that answers
at once, this one 0.08 ms; where the simulator shares a machine with TitanFlow (the demo, the
benchmark) aiohttp's share was a fifth of all the CPU a message's three webhooks cost. It
speaks only what the poster needs: one request at a time per connection, and an answer framed
by Content-Length, chunked encoding or the end of the connection.
"""

import asyncio
from urllib.parse import urlsplit

_MAX_HEAD = 64 * 1024


class ResponseError(Exception):
    """The receiver's answer could not be read as HTTP."""


class PostPool:
    """Keep-alive connections to one URL; at most as many as requests in flight at once."""

    def __init__(self, url: str, *, timeout_s: float):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http:// receivers are supported, not {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._head = f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode()
        self.timeout_s = timeout_s
        self._idle: list[_Connection] = []

    async def post(self, body: bytes, headers: dict[str, str]) -> int:
        """The answer's status; raises OSError, TimeoutError or ResponseError."""
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = b"".join(
            (self._head, extra.encode(), b"Content-Length: %d\r\n\r\n" % len(body), body)
        )
        while self._idle:
            connection = self._idle.pop()
            if connection.closed:
                continue
            try:
                return await self._exchange(connection, request)
            except _Stale:
                continue  # the receiver closed it while idle: the request never reached it
        return await self._exchange(await self._open(), request)

    async def _open(self) -> "_Connection":
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.timeout_s):
            _, connection = await loop.create_connection(_Connection, self.host, self.port)
        return connection

    async def _exchange(self, connection: "_Connection", request: bytes) -> int:
        try:
            async with asyncio.timeout(self.timeout_s):
                status, keep = await connection.request(request)
        except BaseException:
            connection.close()
            raise
        if keep:
            self._idle.append(connection)
        else:
            connection.close()
        return status

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


class _Stale(ConnectionError):
    """A reused connection ended before any byte of the answer arrived."""


class _Connection(asyncio.Protocol):
    def __init__(self):
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._answers = 0
        self._buffer = bytearray()
        self._waiter: asyncio.Future | None = None
        self._framing: tuple | None = None  # (status, keep, kind, length) once the head is read

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self._framing is not None and self._framing[2] == "eof":
            self._finish(len(self._buffer))
        elif self._waiter is not None and not self._waiter.done():
            reused = self._answers > 0 and not self._buffer and self._framing is None
            error = _Stale if reused else ConnectionError
            self._waiter.set_exception(error("the receiver closed the connection"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def request(self, data: bytes) -> asyncio.Future:
        self._waiter = asyncio.get_running_loop().create_future()
        self._buffer.clear()
        self._framing = None
        self.transport.write(data)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            return  # nothing asked: a receiver talking out of turn is ignored
        self._buffer += data
        try:
            self._parse()
        except ResponseError as exc:
            self._waiter.set_exception(exc)
            self.close()

    def _parse(self) -> None:
        if self._framing is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD:
                    raise ResponseError("answer head too large")
                return
            self._framing = _framing(bytes(self._buffer[:end]))
            del self._buffer[: end + 4]
            if 100 <= self._framing[0] < 200:  # an interim answer: the real one follows
                self._framing = None
                return self._parse()
        kind, length = self._framing[2], self._framing[3]
        if kind == "length" and len(self._buffer) >= length:
            self._finish(length)
        elif kind == "chunked":
            done = _chunked_end(self._buffer)
            if done is not None:
                self._finish(done)

    def _finish(self, consumed: int) -> None:
        status, keep, kind, _ = self._framing
        del self._buffer[:consumed]
        self._framing = None
        self._answers += 1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((status, keep and kind != "eof"))


def _framing(head: bytes) -> tuple[int, bool, str, int]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise ResponseError(f"not an HTTP answer: {lines[0][:80]!r}")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip().lower()
    connection = fields.get("connection", "")
    keep = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    if "chunked" in fields.get("transfer-encoding", ""):
        return int(rest[:3]), keep, "chunked", 0
    if "content-length" in fields:
        if not fields["content-length"].isdigit():
            raise ResponseError("bad Content-Length")
        return int(rest[:3]), keep, "length", int(fields["content-length"])
    status = int(rest[:3])
    if status in (204, 304):
        return status, keep, "length", 0
    return status, False, "eof", 0


def _chunked_end(buffer: bytearray) -> int | None:
    """Where a complete chunked body ends in `buffer` (trailers included), or None."""
    at = 0
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size_text = bytes(buffer[at:line_end]).split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ResponseError("bad chunk size") from None
        if size == 0:
            trailers_end = buffer.find(b"\r\n\r\n", line_end)
            if buffer[line_end : line_end + 4] == b"\r\n\r\n":
                return line_end + 4
            return None if trailers_end < 0 else trailers_end + 4
        at = line_end + 2 + size + 2
        if at > len(buffer):
            return None

"""Many sends in flight from one thread: POSTs over non-blocking keep-alive connections.

A slice keeps tens of sends in flight. With a thread per request (urllib3), every answer woke a
thread that then fought the slice's own thread and the others for the GIL: a send worker made
about fifty futex calls per message, its request threads spent 0.85 ms of CPU per send, and
its loop thread waited for a CPU for a third of its time (/proc/<tid>/schedstat), so a Redis
round trip for tokens took 10-17 ms. Here the slice's thread writes each request on an idle
connection and `poll` reads the answers that have come, with no thread and no lock.

The outcome of a request follows GraphClient's rules (client.py): a connection that could not
be made (refused, timed out, TLS refused) means the request never left, so it may be sent
again; anything after a byte of it was written, with no whole answer, is ambiguous. An idle
connection the server closed is noticed before reuse, as urllib3 does. Answers are framed by
Content-Length, chunked encoding or the end of the connection (llhttp, through httptools).
"""

import errno
import selectors
import socket
import ssl
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

_READ_SIZE = 65536
_MAX_HEAD_BYTES = 64 * 1024
_MAX_ANSWER_BYTES = 16 * 1024 * 1024


class ConnectFailed(Exception):
    """The connection could not be made: the request never left."""


class AnswerLost(Exception):
    """The request (or part of it) was written, and no whole answer came back."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lowercased
    body: bytes


@dataclass
class Done:
    """One request's end: `answer`, or `error` (ConnectFailed or AnswerLost); `took` seconds."""

    key: object
    answer: Answer | None
    error: Exception | None
    took: float


class _Request:
    __slots__ = ("key", "data", "started")

    def __init__(self, key, data: bytes):
        self.key, self.data, self.started = key, data, time.monotonic()


class _Connection:
    """One socket and the request on it, if any."""

    def __init__(self, mux: "SendMux"):
        self.mux = mux
        self.sock: socket.socket | None = None
        self.state = "new"  # connecting, handshaking, sending, reading, idle, closed
        self.request: _Request | None = None
        self.out = memoryview(b"")
        self.wrote = False
        self.deadline = 0.0
        self.events = 0
        self.addresses: list = []
        self._answer_reset()

    def _answer_reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.size = 0
        self.complete = False
        self.keep = False
        self.head_done = False

    # -- httptools' callbacks --------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.size += len(name) + len(value)
        if self.size > _MAX_HEAD_BYTES:
            raise AnswerLost("answer head too large")
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1").strip()

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > _MAX_ANSWER_BYTES:
            raise AnswerLost("answer too large")
        self.body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # an interim answer: the real one follows
            self.headers, self.body, self.head_done, self.status = {}, [], False, 0
            return
        # Asked here: llhttp forgets the answer's keep-alive once this callback returns.
        self.keep = bool(self.parser.should_keep_alive())
        self.complete = True

    # -- the socket ------------------------------------------------------------------------------

    def start(self, request: _Request) -> None:
        self.request = request
        self.out = memoryview(request.data)
        self.wrote = False
        self._answer_reset()
        if self.state == "new":
            self._connect()
            return
        self.state = "sending"
        self.deadline = time.monotonic() + self.mux.read_timeout
        try:
            self._send()
        except OSError as exc:  # the server hung up since the reuse check (ssl.SSLError too)
            self._lost(exc)

    def _connect(self) -> None:
        mux = self.mux
        self.state = "connecting"
        self.deadline = time.monotonic() + mux.connect_timeout
        try:
            self.addresses = socket.getaddrinfo(mux.host, mux.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            self._fail(ConnectFailed(f"Could not reach the Graph API: {exc}"))
            return
        self._connect_next()

    def _connect_next(self, reason: str = "no address") -> None:
        """Tries the host's next address (as urllib3 does: "localhost" may be ::1 first)."""
        while self.addresses:
            family, kind, proto, _, address = self.addresses.pop(0)
            if self.sock is not None:
                self._unwant()
                self.sock.close()
                self.sock = None
            try:
                sock = socket.socket(family, kind, proto)
            except OSError as exc:
                reason = str(exc)
                continue
            sock.setblocking(False)
            if family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock
            code = sock.connect_ex(address)
            if code in (0, errno.EINPROGRESS, errno.EAGAIN):
                self._want(selectors.EVENT_WRITE)
                return
            reason = errno.errorcode.get(code, str(code))
        self._fail(ConnectFailed(f"Could not reach the Graph API: {reason}"))

    def ready(self, mask: int) -> None:
        try:
            if self.state == "connecting":
                self._connected()
            elif self.state == "handshaking":
                self._handshake()
            elif self.state == "sending":
                self._send()
            elif self.state == "reading":
                self._read()
            elif self.state == "idle":
                self._idle_readable()
        except OSError as exc:  # ssl.SSLError is one too
            self._lost(exc)

    def _connected(self) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._connect_next(errno.errorcode.get(code, str(code)))
            return
        if self.mux.tls is not None:
            self._unwant()
            self.sock = self.mux.tls.wrap_socket(
                self.sock, server_hostname=self.mux.host, do_handshake_on_connect=False
            )
            self.state = "handshaking"
            self._handshake()
            return
        self._begin_sending()

    def _handshake(self) -> None:
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want(selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._want(selectors.EVENT_WRITE)
            return
        self._begin_sending()  # a refused handshake raises to `ready`: never sent (`_lost`)

    def _begin_sending(self) -> None:
        self.state = "sending"
        self.deadline = time.monotonic() + self.mux.read_timeout
        self._send()

    def _send(self) -> None:
        while self.out:
            try:
                sent = self.sock.send(self.out)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                self._want(selectors.EVENT_WRITE)
                return
            self.wrote = True
            self.out = self.out[sent:]
        self.state = "reading"
        self.deadline = time.monotonic() + self.mux.read_timeout
        self._want(selectors.EVENT_READ)

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(_READ_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            if not data:
                self._eof()
                return
            self.deadline = time.monotonic() + self.mux.read_timeout  # per read, as urllib3
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserCallbackError as exc:
                self._lost(exc.__context__ or exc)
                return
            except httptools.HttpParserError as exc:
                self._lost(exc)
                return
            if self.complete:
                self._answered(keep=self.keep)
                return
            if not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
                return

    def _eof(self) -> None:
        framed = "content-length" in self.headers or "chunked" in self.headers.get(
            "transfer-encoding", ""
        )
        if self.head_done and not framed:
            self.complete = True  # an answer framed by the end of the connection
            self._answered(keep=False)
        else:
            self._lost(ConnectionError("the server closed the connection before answering"))

    def _idle_readable(self) -> None:
        # An idle connection has nothing to say: readable means closed, or garbage. Over TLS it
        # may be a record that carries no data (a session ticket): the connection stays.
        try:
            self.sock.recv(_READ_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError:
            pass
        self._close()

    def usable(self) -> bool:
        """Whether an idle connection may carry a request: not closed by the server meanwhile
        (urllib3 checks the same before reusing one)."""
        if self.state != "idle" or self.sock is None:
            return False
        try:
            # The raw socket, under TLS too: a byte waiting while idle is the server's goodbye.
            peeked = socket.socket.recv(self.sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            peeked = b""
        if peeked and isinstance(self.sock, ssl.SSLSocket):
            self._idle_readable()  # a record: a ticket keeps it, anything else closes it
            return self.state == "idle"
        self._close()
        return False

    def _answered(self, *, keep: bool) -> None:
        answer = Answer(self.status, self.headers, b"".join(self.body))
        request, self.request = self.request, None
        self.mux._finished(Done(request.key, answer, None, time.monotonic() - request.started))
        if keep and self.state != "closed":
            self.state = "idle"
            self._want(selectors.EVENT_READ)
            self.mux._idle(self)
        else:
            self._close()

    def _lost(self, exc) -> None:
        if self.state in ("connecting", "handshaking") or not self.wrote:
            self._fail(ConnectFailed(f"Could not reach the Graph API: {exc}"))
        else:
            self._fail(AnswerLost(f"Sent, but no answer from the Graph API: {exc}"))

    def _fail(self, error: Exception) -> None:
        request, self.request = self.request, None
        self._close()
        if request is not None:
            self.mux._finished(Done(request.key, None, error, time.monotonic() - request.started))

    def time_out(self, now: float) -> None:
        """Ends the request past its deadline (never sent, or lost: see `_lost`)."""
        if self.request is not None and now >= self.deadline:
            self._lost(TimeoutError("timed out"))

    def _want(self, events: int) -> None:
        selector = self.mux.selector
        if self.events == events:
            return
        if self.events:
            selector.modify(self.sock, events, self)
        else:
            selector.register(self.sock, events, self)
        self.events = events

    def _unwant(self) -> None:
        if self.events and self.sock is not None:
            self.mux.selector.unregister(self.sock)
        self.events = 0

    def _close(self) -> None:
        if self.sock is not None:
            self._unwant()
            self.sock.close()
            self.sock = None
        self.state = "closed"
        self.mux._closed(self)


class SendMux:
    """POSTs to one origin (http or https) from the calling thread, `max_connections` at most
    in flight; `submit` starts one, `poll` returns those that ended."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str],
        connect_timeout: float = 3.0,
        read_timeout: float = 15.0,
        max_connections: int = 64,
        tls: ssl.SSLContext | None = None,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = (tls or ssl.create_default_context()) if parts.scheme == "https" else None
        fixed = {"Host": parts.netloc, **headers}
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in fixed.items()).encode()
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.max_connections = max_connections
        self.selector = selectors.DefaultSelector()
        self._idle_connections: deque[_Connection] = deque()
        self._busy: set[_Connection] = set()
        self._waiting: deque[_Request] = deque()  # beyond max_connections
        self._done: list[Done] = []

    @property
    def in_flight(self) -> int:
        return len(self._busy) + len(self._waiting)

    def submit(self, key, path: str, body: bytes) -> None:
        """Starts POSTing `body` to `path` (absolute, as "/v23.0/<id>/messages"); `key` names
        it in `poll`."""
        data = b"".join(
            (
                f"POST {path} HTTP/1.1\r\n".encode(),
                self._fixed,
                b"Content-Length: %d\r\n\r\n" % len(body),
                body,
            )
        )
        request = _Request(key, data)
        if len(self._busy) >= self.max_connections:
            self._waiting.append(request)
            return
        self._start(request)

    def poll(self, timeout: float) -> list[Done]:
        """Waits up to `timeout` for a request to end; returns every one that has."""
        if not self._done and self._busy:
            wait = min(timeout, max(0.0, self._next_deadline() - time.monotonic()))
            for selected, mask in self.selector.select(wait):
                selected.data.ready(mask)
            self._expire()
        elif not self._done and timeout > 0 and not self._busy:
            time.sleep(timeout)
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        """Closes every connection; a request in flight ends as lost, one not started as never
        sent (see `poll` for both)."""
        waiting, self._waiting = self._waiting, deque()
        for request in waiting:
            error = ConnectFailed("Could not reach the Graph API: the sender stopped")
            self._done.append(Done(request.key, None, error, time.monotonic() - request.started))
        for connection in list(self._busy):
            connection._lost(ConnectionError("closed"))
        for connection in list(self._idle_connections):
            connection._close()
        self._idle_connections.clear()
        self.selector.close()

    # -- the connections' side -------------------------------------------------------------------

    def _start(self, request: _Request) -> None:
        connection = None
        while self._idle_connections:
            candidate = self._idle_connections.pop()  # the most recently used: least likely stale
            if candidate.usable():
                connection = candidate
                break
        if connection is None:
            connection = _Connection(self)
        self._busy.add(connection)
        connection.start(request)

    def _finished(self, done: Done) -> None:
        self._done.append(done)

    def _idle(self, connection: _Connection) -> None:
        self._busy.discard(connection)
        self._idle_connections.append(connection)
        self._next_waiting()

    def _closed(self, connection: _Connection) -> None:
        self._busy.discard(connection)
        self._next_waiting()

    def _next_waiting(self) -> None:
        while self._waiting and len(self._busy) < self.max_connections:
            self._start(self._waiting.popleft())

    def _next_deadline(self) -> float:
        return min((c.deadline for c in self._busy if c.request is not None), default=0.0)

    def _expire(self) -> None:
        now = time.monotonic()
        for connection in list(self._busy):
            connection.time_out(now)

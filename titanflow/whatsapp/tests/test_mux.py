"""The engine's multiplexed send client (mux.py) against real sockets: servers that answer
well, oddly, late, never, or over TLS, and what each outcome means for a send."""

import datetime
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from titanflow.whatsapp.client import send_outcome
from titanflow.whatsapp.errors import AmbiguousSendError, MetaAPIError, TransportError
from titanflow.whatsapp.mux import SendMux

OK = b'{"messaging_product":"whatsapp","messages":[{"id":"wamid.%d"}]}'
PATH = "/v23.0/1234/messages"


class Server:
    """A TCP server answering each request with what `answer(n, body)` returns (bytes to
    write; ("close", bytes) to write them and hang up; None to hang up without answering;
    "hang" to never answer)."""

    def __init__(self, answer, *, tls: ssl.SSLContext | None = None):
        self.answer, self.tls = answer, tls
        self.connections = 0
        self.requests = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://localhost:{self.port}"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(data) < length:
                    data += sock.recv(65536)
                body, data = data[:length], data[length:]
                with self._lock:
                    self.requests += 1
                    n = self.requests
                reply = self.answer(n, body)
                if reply == "hang":
                    time.sleep(5)
                    return
                if reply is None:
                    return
                if isinstance(reply, tuple):  # ("close", bytes): answer, then hang up
                    sock.sendall(reply[1])
                    return
                sock.sendall(reply)
        except (OSError, ssl.SSLError):
            return
        finally:
            sock.close()

    def close(self):
        self.listener.close()


def _ok(n, body):
    answer = OK % n
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer)


_open: list[SendMux] = []


def _mux(url, **options) -> SendMux:
    options.setdefault("read_timeout", 5.0)
    _open.append(SendMux(url, headers={"Authorization": "Bearer t"}, **options))
    return _open[-1]


def _run(mux: SendMux, count: int, *, timeout: float = 10.0) -> dict:
    for key in range(count):
        mux.submit(key, PATH, b'{"to":"%d"}' % key)
    ended, deadline = {}, time.monotonic() + timeout
    while len(ended) < count and time.monotonic() < deadline:
        for done in mux.poll(0.1):
            ended[done.key] = done
    assert len(ended) == count, f"{count - len(ended)} sends never ended"
    return ended


def _outcome(done):
    try:
        return send_outcome(done)
    except MetaAPIError as exc:
        return exc


@pytest.fixture
def server():
    started = []

    def start(answer, **options):
        started.append(Server(answer, **options))
        return started[-1]

    yield start
    while _open:
        _open.pop().close()
    for one in started:
        one.close()


def test_many_sends_in_flight_share_a_few_keep_alive_connections(server):
    meta = server(_ok)
    ended = _run(_mux(meta.url, max_connections=4), 200)
    wamids = {_outcome(done).wamid for done in ended.values()}
    assert len(wamids) == 200 and meta.requests == 200
    assert meta.connections <= 4


def test_answers_framed_every_way_http_allows_are_read(server):
    def odd(n, body):
        answer = OK % n
        if n % 3 == 0:  # chunked, after an interim answer
            head = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
            return head + b"\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(answer), answer)
        if n % 3 == 1:  # framed by the end of the connection
            return "close", b"HTTP/1.0 200 OK\r\n\r\n" + answer
        head = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(answer)
        return "close", head + answer

    ended = _run(_mux(server(odd).url, max_connections=3), 30)
    assert all(_outcome(done).wamid.startswith("wamid.") for done in ended.values())


def test_a_refused_connection_means_never_sent(server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once it is closed
    ended = _run(_mux(f"http://127.0.0.1:{port}"), 3)
    assert {type(_outcome(done)) for done in ended.values()} == {TransportError}


def test_a_request_that_got_no_answer_is_ambiguous(server):
    closes = server(lambda n, body: None)  # reads the request, then hangs up
    assert isinstance(_outcome(_run(_mux(closes.url), 1)[0]), AmbiguousSendError)
    hangs = server(lambda n, body: "hang")
    late = _run(_mux(hangs.url, read_timeout=0.3), 1)[0]
    assert isinstance(_outcome(late), AmbiguousSendError)
    assert 0.3 <= late.took < 3


def test_an_idle_connection_the_server_closed_costs_no_send(server):
    # Keep-alive promised, then the server hangs up once it has answered (as servers do with
    # their idle connections): the next send must notice before reusing it, not be lost on it.
    meta = server(lambda n, body: ("close", _ok(n, body)))
    mux = _mux(meta.url, max_connections=1)
    for n in range(1, 6):
        (done,) = _run(mux, 1).values()
        assert _outcome(done).wamid == f"wamid.{n}"
        time.sleep(0.05)  # the server's FIN arrives while the connection idles
    assert meta.connections == 5


def test_metas_error_answers_are_read_as_its_errors(server):
    error = b'{"error":{"message":"Template paused","code":132015,"fbtrace_id":"A1"}}'
    answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\nRetry-After: 7\r\n\r\n%s" % (
        len(error),
        error,
    )
    failed = _outcome(_run(_mux(server(lambda n, body: answer).url), 1)[0])
    assert type(failed) is MetaAPIError
    assert (failed.info.code, failed.http_status, failed.retry_after) == (132015, 400, 7.0)


def _tls_pair(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert_file, key_file)
    trusted = ssl.create_default_context(cafile=str(cert_file))
    return served, trusted


def test_sends_over_tls_and_an_untrusted_certificate_is_never_sent_to(server, tmp_path):
    served, trusted = _tls_pair(tmp_path)
    meta = server(_ok, tls=served)
    ended = _run(_mux(meta.url, tls=trusted, max_connections=3), 40)
    assert len({_outcome(done).wamid for done in ended.values()}) == 40
    assert meta.connections <= 3
    # The system's trust store does not know this certificate: refused before any byte left.
    refused = _outcome(_run(_mux(meta.url), 1)[0])
    assert isinstance(refused, TransportError)
    assert meta.requests == 40


def test_every_address_of_the_host_is_tried(server, monkeypatch):
    # "localhost" may name ::1 before 127.0.0.1; a server on only one of them is still reached.
    meta = server(_ok)
    real = socket.getaddrinfo

    def both(host, port, *args, **kwargs):
        v4 = real("127.0.0.1", port, *args, **kwargs)
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)), *v4]

    monkeypatch.setattr(socket, "getaddrinfo", both)
    assert _outcome(_run(_mux(meta.url), 1)[0]).wamid == "wamid.1"


def test_a_send_on_a_connection_reset_since_its_reuse_check_is_never_sent(server, monkeypatch):
    meta = server(_ok)
    mux = _mux(meta.url, max_connections=1)
    _run(mux, 1)
    # The server resets the connection between the check and the write: the write fails at
    # once, before any byte of this request left, so the send may go again.
    (idle,) = mux._idle_connections
    monkeypatch.setattr(type(idle), "usable", lambda self: True)
    real_send = socket.socket.send
    calls = []

    def reset(sock, data, *args):
        if not calls:
            calls.append(sock)
            raise ConnectionResetError(104, "Connection reset by peer")
        return real_send(sock, data, *args)

    monkeypatch.setattr(socket.socket, "send", reset)
    (done,) = _run(mux, 1).values()
    assert isinstance(_outcome(done), TransportError)
    monkeypatch.undo()
    (done,) = _run(mux, 1).values()
    assert _outcome(done).wamid.startswith("wamid.")

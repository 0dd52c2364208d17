"""The webhook door (`manage.py webhook_door`): what it answers Meta and what it stores.

The door runs here on a real event loop in a thread, over real HTTP and a real PostgreSQL
connection of its own, so the tests see only what is committed; one test runs the Procfile's
own line as a process and stops it with SIGTERM in the middle of a burst.
"""

import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from campaigns.engine import processes
from tests.factories import AccountFactory
from titanflow.simulator.testing import LoopThread
from titanflow.whatsapp.signature import compute_signature
from webhooks import door_http, door_server
from webhooks.door import WEBHOOK_PATH
from webhooks.models import WebhookEvent
from webhooks.tests.conftest import SECRET
from webhooks.tests.deliveries import WABA_ID, encode, status, statuses

pytestmark = pytest.mark.django_db(transaction=True)
BODY = encode(statuses(status("wamid.D1", "delivered")))


def _headers(body: bytes, secret: str | None = SECRET) -> dict:
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Hub-Signature-256"] = compute_signature(secret, body)
    return headers


@pytest.fixture
def door():
    """The door on a free port; yields its webhook URL."""
    door_server._next_kick = 0.0
    loop = LoopThread("webhook-door")
    door = door_server.Door()

    async def start():
        host, port = (await door.start("127.0.0.1", 0))[:2]
        return f"http://{host}:{port}{WEBHOOK_PATH}"

    try:
        yield loop.run(start())
    finally:
        loop.run(door.stop())
        loop.close()


def _post(url: str, body: bytes = BODY, **headers) -> requests.Response:
    return requests.post(url, data=body, headers=headers or _headers(body), timeout=10)


def _stored() -> list[bytes]:
    return [
        bytes(body) for body in WebhookEvent.objects.order_by("id").values_list("body", flat=True)
    ]


def test_a_signed_delivery_is_committed_before_its_200_and_wakes_the_processor(door, enqueued):
    answer = _post(door)
    assert (answer.status_code, answer.text) == (200, "ok")
    # Committed by the time Meta has its answer: this test's own connection sees it.
    event = WebhookEvent.objects.get()
    assert (bytes(event.body), event.app_signed, event.processed_at) == (BODY, True, None)
    deadline = time.monotonic() + 5
    while not enqueued and time.monotonic() < deadline:
        time.sleep(0.01)
    assert enqueued, "the processor was not woken"


def test_deliveries_arriving_together_are_each_stored_once(door):
    bodies = [encode(statuses(status(f"wamid.B{n}", "sent"))) for n in range(60)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda body: _post(door, body), bodies))
    assert [answer.status_code for answer in answers] == [200] * 60
    assert sorted(_stored()) == sorted(bodies)


def test_forged_unsigned_and_malformed_deliveries_are_refused_and_not_stored(door):
    assert _post(door, BODY, **_headers(BODY, "forged")).status_code == 403
    assert _post(door, BODY, **_headers(BODY, None)).status_code == 401
    garbage = b"hub=1&form=post"
    answer = _post(door, garbage, **_headers(garbage))
    assert (answer.status_code, answer.text) == (400, "Body is not a JSON object.")
    assert _stored() == []


def test_an_oversized_delivery_is_refused_without_being_read(door):
    # Only the head is sent: the door answers from the Content-Length alone.
    host, port = door.split("/")[2].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        head = (
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Length: {3 * 1024 * 1024 + 1}\r\nX-Hub-Signature-256: sha256=00\r\n\r\n"
        )
        sock.sendall(head.encode() + b"{")
        head = sock.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413")
    assert _stored() == []


def test_an_accounts_own_secret_speaks_only_for_that_account(door):
    AccountFactory(waba_id=WABA_ID, app_secret="own-secret")
    AccountFactory(waba_id="190000000000666", app_secret="other-secret")
    # Judged in a thread: the accounts' secrets are read from the database.
    assert _post(door, BODY, **_headers(BODY, "own-secret")).status_code == 200
    answer = _post(door, BODY, **_headers(BODY, "other-secret"))
    assert answer.status_code == 403 and "another account" in answer.text
    event = WebhookEvent.objects.get()
    assert event.app_signed is False  # may not lift an opt-out (see WebhookEvent)


def test_the_subscription_challenge(door, settings):
    settings.META_VERIFY_TOKEN = "verify-me"
    query = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "4711"}
    answer = requests.get(door, params=query, timeout=10)
    assert (answer.status_code, answer.text) == (200, "4711")
    query["hub.verify_token"] = "guess"
    assert requests.get(door, params=query, timeout=10).status_code == 403


def test_when_postgres_cannot_take_a_delivery_meta_is_told_to_deliver_again(door, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    real = door_server._connection_params
    monkeypatch.setattr(door_server, "_connection_params", lambda: {**real(), "port": closed_port})
    answer = _post(door)
    assert (answer.status_code, answer.text) == door_server.UNAVAILABLE
    assert _stored() == []
    # PostgreSQL back: the next delivery opens a fresh connection and is stored.
    monkeypatch.setattr(door_server, "_connection_params", real)
    assert _post(door).status_code == 200
    assert _stored() == [BODY]


def test_the_procfile_door_answers_what_it_took_in_when_stopped(settings):
    """SIGTERM in the middle of a burst: every delivery answered 200 is stored, and the
    process ends by itself."""
    env = processes.child_env(META_APP_SECRET=SECRET)
    door, url = processes.door_start(env=env)
    bodies = [encode(statuses(status(f"wamid.T{n}", "read"))) for n in range(400)]

    def post(body):
        try:
            return body, _post(url, body).status_code
        except (requests.ConnectionError, requests.Timeout):
            # Refused once the door stopped listening: unanswered, so Meta delivers it again.
            return body, None

    try:
        with ThreadPoolExecutor(16) as pool:
            answers = pool.map(post, bodies)
            time.sleep(0.3)
            os.kill(door.pid, signal.SIGTERM)
            answers = list(answers)
        assert door.popen.wait(timeout=20) == 0
    finally:
        door.stop()
    acknowledged = sorted(body for body, code in answers if code == 200)
    assert acknowledged, "the stop came before any delivery"
    assert sorted(set(_stored()) & set(bodies)) == acknowledged
    assert {code for _, code in answers} <= {200, 503, None}


def test_a_burst_is_committed_in_groups(door, monkeypatch):
    """Deliveries that wait together share a commit: far fewer INSERTs than deliveries."""
    inserts = []
    real = door_server.Writer._insert

    async def counted(self, batch):
        inserts.append(len(batch))
        await real(self, batch)

    monkeypatch.setattr(door_server.Writer, "_insert", counted)
    bodies = [encode(statuses(status(f"wamid.G{n}", "sent"))) for n in range(200)]
    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(lambda body: _post(door, body).status_code, bodies)) == {200}
    assert sum(inserts) == 200
    assert len(inserts) < 100, inserts


# -- HTTP as clients speak it (webhooks/door_http.py) ------------------------------------------


def _connect(url: str) -> socket.socket:
    host, port = url.split("/")[2].split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _request(body: bytes, *, extra: str = "", chunked: bool = False) -> bytes:
    signature = compute_signature(SECRET, body)
    head = f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: door\r\nX-Hub-Signature-256: {signature}\r\n"
    if chunked:
        middle = len(body) // 2
        framed = b"".join(
            b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:middle], body[middle:])
        )
        return (
            (head + "Transfer-Encoding: chunked\r\n" + extra + "\r\n").encode()
            + framed
            + (b"0\r\n\r\n")
        )
    return (head + f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def _answers(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """Reads `count` answers off a connection: (status, body) each."""
    data, answers = b"", []
    while len(answers) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"the door closed the connection after {len(answers)} answers"
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        fields = dict(line.lower().split(b": ", 1) for line in lines[1:])
        length = int(fields[b"content-length"])
        while len(data) < length:
            data += sock.recv(65536)
        answers.append((int(lines[0].split()[1]), data[:length]))
        data = data[length:]
    return answers


def test_pipelined_deliveries_are_answered_in_order_and_each_stored(door):
    bodies = [encode(statuses(status(f"wamid.P{n}", "sent"))) for n in range(40)]
    forged = _request(bodies[7]).replace(b"sha256=", b"sha256=00", 1)
    requests_ = [_request(body) for body in bodies]
    requests_[7] = forged  # one bad delivery among them: refused, the others unharmed
    with _connect(door) as sock:
        sock.sendall(b"".join(requests_))
        answers = _answers(sock, 40)
    assert [code for code, _ in answers] == [200] * 7 + [403] + [200] * 32
    assert sorted(_stored()) == sorted(bodies[:7] + bodies[8:])


def test_chunked_and_expect_continue_deliveries_are_read(door):
    chunked, expecting = (encode(statuses(status(f"wamid.C{n}", "read"))) for n in range(2))
    with _connect(door) as sock:
        sock.sendall(_request(chunked, chunked=True))
        assert _answers(sock, 1) == [(200, b"ok")]
        head, _, body = _request(expecting, extra="Expect: 100-continue\r\n").partition(b"\r\n\r\n")
        sock.sendall(head + b"\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        assert _answers(sock, 1) == [(200, b"ok")]
    assert sorted(_stored()) == sorted([chunked, expecting])


def test_hostile_requests_are_refused_and_the_door_keeps_serving(door):
    huge = b"{" + b" " * (3 * 1024 * 1024) + b"}"
    two_lengths = "Content-Length: 5\r\nContent-Length: 6\r\n"
    hostile = {
        b"NOT HTTP AT ALL\r\n\r\n": 400,
        f"GET {WEBHOOK_PATH} HTTP/1.1\r\nX-Big: {'a' * 40000}\r\n\r\n".encode(): 431,
        f"GET {WEBHOOK_PATH} HTTP/1.1\r\nX-Never-Ends: {'a' * 40000}".encode(): 431,
        f"GET {WEBHOOK_PATH} HTTP/1.1\r\n".encode()
        + b"".join(b"X-H%d: 1\r\n" % n for n in range(150))
        + b"\r\n": 431,
        b"GET /admin/ HTTP/1.1\r\nHost: door\r\n\r\n": 404,
        f"PUT {WEBHOOK_PATH} HTTP/1.1\r\nContent-Length: 0\r\n\r\n".encode(): 405,
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\n{two_lengths}\r\n".encode(): 400,
        _request(huge, chunked=True): 413,  # no Content-Length: refused once too much arrived
    }
    for request, expected in hostile.items():
        with _connect(door) as sock:
            sock.sendall(request)
            assert _answers(sock, 1)[0][0] == expected, request[:60]
            assert sock.recv(1) == b"", "a connection that cannot be read on is closed"
    assert _stored() == []
    assert _post(door).status_code == 200


def test_a_request_that_stops_arriving_is_answered_408(door, monkeypatch):
    monkeypatch.setattr(door_http, "READ_TIMEOUT_S", 0.3)
    with _connect(door) as sock:
        sock.sendall(_request(BODY)[:-5])  # the last bytes never come
        assert _answers(sock, 1)[0][0] == 408
    assert _stored() == []


def test_a_stop_answers_a_delivery_whose_body_is_still_on_its_way():
    loop = LoopThread("webhook-door")
    door = door_server.Door()
    host, port = loop.run(door.start("127.0.0.1", 0))[:2]
    request = _request(BODY)
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(request[:40])
            stopping = loop.submit(door.stop())
            time.sleep(0.2)  # the stop has begun: the listener is closed
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((host, port), timeout=1).close()
            sock.sendall(request[40:])
            assert _answers(sock, 1) == [(200, b"ok")]
            assert sock.recv(1) == b"", "closed once answered, since the door is stopping"
        stopping.result(timeout=15)
    finally:
        loop.close()
    assert _stored() == [BODY]

"""The webhook poster's HTTP client against receivers that answer in each way HTTP allows."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from titanflow.simulator.http_post import PostPool, ResponseError


class _Receiver:
    """A receiver on a free port: answers each request with the next of `answers` (the last one
    again once they run out; None: never answers) and closes a connection after `close_after`
    requests."""

    def __init__(self, answers: list[bytes] | None, close_after: int | None):
        self.answers, self.close_after = answers, close_after
        self.seen: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> "_Receiver":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/webhooks/whatsapp/?x=1"
        return self

    async def _handle(self, reader, writer):
        self.writers.append(writer)
        served = 0
        try:
            while self.close_after is None or served < self.close_after:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                self.seen.append(head + await reader.readexactly(length))
                if self.answers is None:
                    await reader.read()  # silent until the client goes
                    break
                writer.write(self.answers[min(len(self.seen), len(self.answers)) - 1])
                await writer.drain()
                served += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()
        await asyncio.sleep(0.01)  # let the handlers see their connections end


async def _serve(answers: list[bytes] | None, *, close_after: int | None = None) -> _Receiver:
    return await _Receiver(answers, close_after).start()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def _run(coroutine):
    # In a thread of its own: the browser tests leave an event loop running in the main one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _post_twice(answers, *, close_after, pause_s=0.0) -> tuple[int, int, int]:
    """Two posts to a receiver answering `answers`: both statuses and the requests it saw."""

    async def scenario():
        receiver = await _serve(answers, close_after=close_after)
        pool = PostPool(receiver.url, timeout_s=5)
        first = await pool.post(b"{}", {})
        await asyncio.sleep(pause_s)
        second = await pool.post(b"{}", {})
        pool.close()
        await receiver.stop()
        return first, second, len(receiver.seen)

    return _run(scenario())


def test_posts_reuse_one_connection_and_carry_the_body_and_headers():
    async def scenario():
        ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        receiver = await _serve([ok])
        pool = PostPool(receiver.url, timeout_s=5)
        statuses = [
            await pool.post(b'{"n":%d}' % n, {"X-Hub-Signature-256": "sha256=ab"}) for n in range(3)
        ]
        pool.close()
        await receiver.stop()
        return statuses, receiver.seen

    statuses, seen = _run(scenario())
    assert statuses == [200, 200, 200]
    assert seen[0].startswith(b"POST /webhooks/whatsapp/?x=1 HTTP/1.1\r\n")
    assert b"X-Hub-Signature-256: sha256=ab\r\n" in seen[0]
    assert seen[2].endswith(b'\r\n\r\n{"n":2}')


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 17\r\n\r\nInvalid signature",
        b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nInvalid\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 403 Forbidden\r\n\r\nInvalid signature",  # framed by the connection's end
    ],
    ids=["content-length", "chunked", "interim-answer", "until-close"],
)
def test_each_framing_gives_the_status_and_the_next_post_still_goes_through(answer):
    until_close = answer.startswith(b"HTTP/1.0")
    assert _post_twice([answer, OK], close_after=1 if until_close else None) == (403, 200, 2)


def test_a_connection_the_receiver_closed_while_idle_is_replaced_without_losing_the_post():
    # Keep-alive promised, not kept: the second post finds its connection closed.
    assert _post_twice([OK], close_after=1, pause_s=0.05) == (200, 200, 2)


def test_garbage_a_silent_receiver_and_no_receiver_are_errors_not_statuses():
    async def scenario():
        garbage = await _serve([b"SSH-2.0-OpenSSH\r\n\r\n"])
        with pytest.raises(ResponseError):
            await PostPool(garbage.url, timeout_s=5).post(b"{}", {})
        await garbage.stop()

        silent = await _serve(None)  # reads the request, never answers
        with pytest.raises(TimeoutError):
            await PostPool(silent.url, timeout_s=0.2).post(b"{}", {})
        await silent.stop()

        with pytest.raises(OSError):  # the port is free again: nobody listens
            await PostPool(silent.url, timeout_s=2).post(b"{}", {})

    _run(scenario())


def test_only_plain_http_receivers_are_accepted():
    with pytest.raises(ValueError, match="http://"):
        PostPool("https://example.test/hook", timeout_s=1)

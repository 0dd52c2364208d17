"""Meta's door as its own small asyncio server (`manage.py webhook_door`, the Procfile's `door`).

Meta posts about three status deliveries per message sent, and each is answered only once it is
committed. Under the WSGI server every one of those waiting requests holds a thread and is
handed between threads twice; in one event loop a request waits on a future, and the deliveries
that arrive together share one INSERT and one commit on the loop's own connection (as
`committer.py` does for the WSGI path, which still serves the same URL on the web server). The
HTTP is webhooks/door_http.py's. In three interleaved rounds of `scripts/bench_door.py` runs this
door spent 0.110-0.119 ms of CPU a delivery, the same door on aiohttp's web server 0.18-0.25 ms,
and the web server (`--web`) 0.32-0.43 ms.

What is decided about a delivery is `door.delivery_verdict`, the very function the Django view
uses; a delivery is answered 200 only after its commit, and 503 when PostgreSQL cannot take it
(Meta delivers again later, and the processor takes a delivery twice without effect).
"""

import asyncio
import contextlib
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import psycopg
from django.db import connection

from webhooks.committer import MAX_BATCH
from webhooks.door import (
    MAX_BODY_BYTES,
    TOO_LARGE,
    WEBHOOK_PATH,
    challenge_answer,
    delivery_verdict,
)
from webhooks.door_http import Exchange, HttpServer
from webhooks.kick import KICK_WINDOW_MS, processor_kick
from webhooks.models import store_many_sql
from webhooks.secrets import account_secrets_if_fresh

logger = logging.getLogger(__name__)

# A commit must be done within this (a request must arrive within door_http.READ_TIMEOUT_S).
COMMIT_TIMEOUT_S = 10.0
# How long the first delivery of a group waits for others to share its commit. Shorter than the
# WSGI committer's 2 ms: with the send worker giving way (campaigns/engine/priority.py), the
# door's round trips, not the CPU, bounded how fast Meta's deliveries got in while sending. In
# unpaced benches of 20,000 contacts, 2 ms left 5.4 s of backlog when sending ended, 1 ms 2.5 s,
# 0.5 ms 1.5-1.6 s, none at all 0.7 s but at 0.03-0.07 ms more PostgreSQL CPU a message.
GATHER_S = 0.0005
UNAVAILABLE = (503, "Storage unavailable; deliver again later.")


@dataclass
class _Item:
    body: bytes
    app_signed: bool
    done: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


class Writer:
    """Stores deliveries in groups on one connection: the first of a group waits `GATHER_S`
    for others, then all of them share one INSERT and one commit."""

    def __init__(self):
        self._queue: list[_Item] = []
        self._wake = asyncio.Event()
        self._connection: psycopg.AsyncConnection | None = None
        self._task: asyncio.Task | None = None
        self._committing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook-writer")

    async def stop(self) -> None:
        """Stores what is queued, then closes the connection."""
        while self._queue or self._committing:
            await asyncio.sleep(GATHER_S)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._close()

    def submit(self, body: bytes, *, app_signed: bool) -> asyncio.Future:
        """A future that becomes True once the delivery is committed, False if it cannot be."""
        item = _Item(body, app_signed, asyncio.get_running_loop().create_future())
        self._queue.append(item)
        self._wake.set()
        return item.done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._queue:
                continue
            left = self._queue[0].arrived + GATHER_S - time.monotonic()
            if left > 0 and len(self._queue) < MAX_BATCH:
                await asyncio.sleep(left)
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            if self._queue:
                self._wake.set()
            self._committing = True
            try:
                stored = await self._commit(batch)
            except Exception:  # a bug here must not leave every later delivery unanswered
                logger.exception("webhook writer failed")
                stored = False
            finally:
                self._committing = False
            for item in batch:
                if not item.done.done():
                    item.done.set_result(stored)
            if stored:
                kick_soon()

    async def _commit(self, batch: list[_Item]) -> bool:
        # Once more on a fresh connection: PostgreSQL may have restarted since the last commit.
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(COMMIT_TIMEOUT_S):
                    await self._insert(batch)
                return True
            except (psycopg.Error, OSError, TimeoutError) as exc:
                await self._close()
                if attempt == 2:
                    logger.warning("could not store %s webhook deliveries: %s", len(batch), exc)
        return False

    async def _insert(self, batch: list[_Item]) -> None:
        if self._connection is None or self._connection.closed:
            self._connection = await psycopg.AsyncConnection.connect(**_connection_params())
        params = [value for item in batch for value in (item.body, item.app_signed)]
        async with self._connection.cursor() as cursor:
            await cursor.execute(store_many_sql(len(batch)), params)
        await self._connection.commit()

    async def _close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._connection.close()
            self._connection = None


def _connection_params() -> dict:
    # Django's own parameters for the default database, without what only its sync cursor uses.
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context"):
        params.pop(key, None)
    return params


# The processor is woken from a thread: the wake is a Redis call and Celery's publish, which
# may block for up to their timeouts when Redis is away, and the loop must not.
_kicker = ThreadPoolExecutor(1, thread_name_prefix="webhook-kick")
_next_kick = 0.0


def kick_soon() -> None:
    global _next_kick
    now = time.monotonic()
    if now >= _next_kick:
        _next_kick = now + KICK_WINDOW_MS / 1000
        _kicker.submit(processor_kick)


# A delivery not signed with META_APP_SECRET is judged against the accounts' own secrets; when
# their cache has expired, reading them is a query through Django's ORM, which must not run in
# the loop: such a delivery is judged in a thread.
_judges = ThreadPoolExecutor(2, thread_name_prefix="webhook-verdict")


def _judge_in_thread(body: bytes, signature: str | None):
    try:
        return delivery_verdict(body=body, signature=signature)
    finally:
        connection.close()


class DoorHandler:
    """What the door answers (webhooks/door_http.py frames the requests)."""

    def __init__(self, writer: Writer):
        self.writer = writer

    def head_refusal(self, method: str, path: str, headers: dict[str, str]):
        if path != WEBHOOK_PATH:
            return 404, "Not found."
        if method not in ("GET", "HEAD", "POST"):
            return 405, "Only GET (the subscription check) and POST (deliveries)."
        length = headers.get("content-length", "")
        if method == "POST" and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return TOO_LARGE  # refused before a byte of it is read
        return None

    def refused(self, status: int, text: str, remote: str) -> None:
        # The door keeps no access log: a refusal is worth a line.
        logger.warning("webhook delivery refused: %s %s (%s)", status, text, remote)

    def handle(self, exchange: Exchange) -> None:
        try:
            if exchange.method == "POST":
                self._delivery(exchange)
            else:
                self._challenge(exchange)
        except Exception:  # a bug here must answer, not leave Meta waiting
            logger.exception("webhook door failed on a request")
            exchange.answer(500, "Internal error; deliver again later.")

    def _challenge(self, exchange: Exchange) -> None:
        # The last of repeated parameters counts, as in the web server's view of this URL.
        status, text = challenge_answer(dict(parse_qsl(exchange.query, keep_blank_values=True)))
        if status != 200:
            self.refused(status, text, exchange.remote)
        exchange.answer(status, text)

    def _delivery(self, exchange: Exchange) -> None:
        signature = exchange.headers.get("x-hub-signature-256")
        body = exchange.body
        verdict = delivery_verdict(
            body=body, signature=signature, accounts=account_secrets_if_fresh
        )
        if not verdict.needs_accounts:
            self._judged(exchange, verdict)
            return
        loop = asyncio.get_running_loop()
        judging = loop.run_in_executor(_judges, _judge_in_thread, body, signature)
        judging.add_done_callback(lambda done: self._judged_later(exchange, done))

    def _judged_later(self, exchange: Exchange, done: asyncio.Future) -> None:
        try:
            verdict = done.result()
        except Exception:
            logger.exception("judging a webhook delivery failed")
            exchange.answer(*UNAVAILABLE)
            return
        self._judged(exchange, verdict)

    def _judged(self, exchange: Exchange, verdict) -> None:
        if verdict.refusal:
            self.refused(*verdict.refusal, exchange.remote)
            exchange.answer(*verdict.refusal)
            return
        stored = self.writer.submit(exchange.body, app_signed=verdict.app_signed)
        stored.add_done_callback(lambda done: _stored_answer(exchange, done))


def _stored_answer(exchange: Exchange, done: asyncio.Future) -> None:
    if done.cancelled() or not done.result():
        exchange.answer(*UNAVAILABLE)
    else:
        exchange.answer(200, "ok")


class Door:
    """The writer and the HTTP server together: started and stopped as one."""

    def __init__(self):
        self.writer = Writer()
        self.http = HttpServer(
            DoorHandler(self.writer), max_body_bytes=MAX_BODY_BYTES, too_large=TOO_LARGE
        )

    async def start(self, host: str, port: int) -> tuple:
        """Listens; returns the address bound."""
        self.writer.start()
        return await self.http.start(host, port)

    async def stop(self) -> None:
        """Answers every request already begun (committing what it must), then closes."""
        await self.http.stop(grace_s=COMMIT_TIMEOUT_S)
        await self.writer.stop()


async def door_serve(*, host: str, port: int, ready=None) -> None:
    """Serves until SIGTERM or SIGINT, then answers what it took in and stops."""
    door = Door()
    address = await door.start(host, port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    if ready is not None:
        ready(address)
    try:
        await stopping.wait()
    finally:
        await door.stop()

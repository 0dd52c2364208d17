"""Meta's door as its own small asyncio server (`manage.py webhook_door`, the Procfile's `door`).

Meta posts about three status deliveries per message sent, and each is answered only once it is
committed. Under the WSGI server every one of those waiting requests holds a thread and is
handed between threads twice; in one event loop a request waits on a future, and the deliveries
that arrive together share one INSERT and one commit on the loop's own connection (as
`committer.py` does for the WSGI path, which still serves the same URL on the web server). In
three interleaved pairs of `scripts/bench_door.py` runs this door spent 0.12-0.16 ms of CPU a
delivery, the web server 0.24-0.29 ms (`--web`).

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

import psycopg
from aiohttp import web
from django.db import connection

from webhooks.committer import MAX_BATCH
from webhooks.door import (
    MAX_BODY_BYTES,
    TOO_LARGE,
    WEBHOOK_PATH,
    challenge_answer,
    delivery_verdict,
)
from webhooks.kick import KICK_WINDOW_MS, processor_kick
from webhooks.models import store_many_sql
from webhooks.secrets import account_secrets_if_fresh

logger = logging.getLogger(__name__)

# A delivery's body must arrive within this; a commit must be done within this.
READ_TIMEOUT_S = 30.0
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

    async def store(self, body: bytes, *, app_signed: bool) -> bool:
        """True once the delivery is committed; False when it could not be."""
        item = _Item(body, app_signed, asyncio.get_running_loop().create_future())
        self._queue.append(item)
        self._wake.set()
        return await item.done

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


WRITER = web.AppKey("writer", Writer)


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


async def _judge(request: web.Request):
    """(refusal or None, app_signed, the body)."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        return TOO_LARGE, False, b""
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return TOO_LARGE, False, b""
    except TimeoutError:
        return (408, "The delivery's body did not arrive in time."), False, b""
    signature = request.headers.get("X-Hub-Signature-256")
    verdict = delivery_verdict(body=body, signature=signature, accounts=account_secrets_if_fresh)
    if verdict.needs_accounts:
        loop = asyncio.get_running_loop()
        verdict = await loop.run_in_executor(_judges, _judge_in_thread, body, signature)
    return verdict.refusal, verdict.app_signed, body


async def _delivery(request: web.Request) -> web.Response:
    refusal, app_signed, body = await _judge(request)
    if refusal:
        return _refuse(request, *refusal)
    if not await request.app[WRITER].store(body, app_signed=app_signed):
        return _answer(*UNAVAILABLE)
    return _answer(200, "ok")


async def _challenge(request: web.Request) -> web.Response:
    status, text = challenge_answer(request.query)
    if status != 200:
        return _refuse(request, status, text)
    return _answer(status, text)


def _refuse(request: web.Request, status: int, reason: str) -> web.Response:
    # The door keeps no access log: a refusal is worth a line.
    logger.warning("webhook delivery refused: %s %s (%s)", status, reason, request.remote)
    return _answer(status, reason)


def _answer(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


async def _writer_start(app: web.Application) -> None:
    app[WRITER].start()


async def _writer_stop(app: web.Application) -> None:
    await app[WRITER].stop()


def door_app() -> web.Application:
    """The door's aiohttp application; Django must be set up first."""
    # A larger body is refused with Meta's own 413 answer above, before it is read.
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[WRITER] = Writer()
    app.router.add_post(WEBHOOK_PATH, _delivery)
    app.router.add_get(WEBHOOK_PATH, _challenge)
    app.on_startup.append(_writer_start)
    app.on_cleanup.append(_writer_stop)
    return app


async def door_serve(*, host: str, port: int, ready=None) -> None:
    """Serves until SIGTERM or SIGINT, then answers what it took in and stops."""
    runner = web.AppRunner(door_app(), access_log=None, handle_signals=False)
    await runner.setup()
    # reuse_port: several door processes may listen on one port, the kernel sharing the load.
    site = web.TCPSite(runner, host, port, reuse_port=True, shutdown_timeout=COMMIT_TIMEOUT_S)
    await site.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    if ready is not None:
        ready(runner.addresses[0])
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()

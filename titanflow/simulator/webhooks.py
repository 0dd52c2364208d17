"""Posting signed webhooks to TitanFlow, off the request path, the way Meta does.

Posting runs on its own event loop in its own thread, as Meta's webhook senders are not its API
servers: busy answering sends, one shared loop posted a third of the webhooks it owed and
measured its own lag as TitanFlow's answer time. Status notes are timed with `loop.call_later`
(cheaper than a task per message) and land in a queue when their moment comes. One batcher forms
deliveries of up to `statuses_per_delivery` notes; at most `webhook_concurrency` deliveries are
in flight over keep-alive connections (http_post.py; aiohttp follows the links readers click).
"""

import asyncio
import json
import random
import threading
import time
from collections import Counter, deque

import aiohttp

from titanflow.simulator.http_post import PostPool, ResponseError
from titanflow.simulator.loops import loop_new
from titanflow.simulator.options import SimulatorOptions
from titanflow.simulator.payloads import StatusNote, statuses_delivery
from titanflow.whatsapp.signature import compute_signature

_LATENCY_SAMPLES = 100_000
_POLL_S = 0.002


class WebhookPoster:
    def __init__(self, options: SimulatorOptions, rng: random.Random):
        self.options = options
        self.rng = rng
        self.enabled = bool(options.webhook_url and options.app_secret)
        # Each written by one thread only: scheduled by the API's, settled by the poster's.
        self._scheduled = self._settled = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._queue: asyncio.Queue[StatusNote] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._posts: PostPool | None = None
        self._batcher: asyncio.Task | None = None
        self._in_flight: set[asyncio.Task] = set()
        self.reset_counters()

    @property
    def pending(self) -> int:
        """Statuses scheduled and not yet posted or given up."""
        return self._scheduled - self._settled

    def reset_counters(self) -> None:
        self.posted = self.failed = self.statuses_posted = self.duplicates = self.dropped = 0
        self.failed_by_status: Counter[str] = Counter()
        self.clicks: Counter[str] = Counter()  # links followed, by the answer's status
        self.latencies_ms: deque[float] = deque(maxlen=_LATENCY_SAMPLES)

    async def start(self) -> None:
        if not self.enabled:
            return
        self._loop = loop_new()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="webhook-poster", daemon=True
        )
        self._thread.start()
        await self._on_poster_loop(self._open())

    async def close(self) -> None:
        if self._loop is None:
            return
        await self._on_poster_loop(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join)
        self._loop.close()
        self._loop = self._thread = None

    async def _on_poster_loop(self, coroutine):
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    async def _open(self) -> None:
        self._queue = asyncio.Queue()
        connector = aiohttp.TCPConnector(limit=self.options.webhook_concurrency)
        timeout = aiohttp.ClientTimeout(total=self.options.webhook_timeout_s)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        self._posts = PostPool(self.options.webhook_url, timeout_s=self.options.webhook_timeout_s)
        self._batcher = asyncio.create_task(self._form_batches())

    async def _shutdown(self) -> None:
        tasks = [*self._in_flight, *([self._batcher] if self._batcher else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._batcher = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._posts is not None:
            self._posts.close()
            self._posts = None

    def schedule(self, notes: list[StatusNote]) -> None:
        """Post each note after its stage delay; `notes` are one message's stages, in order."""
        if not self.enabled or not notes or self._loop is None:
            return
        self._scheduled += len(notes)
        self._loop.call_soon_threadsafe(self._schedule_here, notes)

    def _schedule_here(self, notes: list[StatusNote]) -> None:
        if self.options.shuffle:
            self.rng.shuffle(notes)
        low, high = self.options.stage_delay_ms
        delay = 0.0
        for note in notes:
            delay += self.rng.uniform(low, high) / 1000
            self._loop.call_later(delay, self._queue.put_nowait, note)

    async def post_now(self, payload: dict) -> int | None:
        """Post one event delivery at once; the receiver's HTTP status (None if unreachable)."""
        if not self.enabled or self._loop is None:
            return None
        return await self._on_poster_loop(self._post(_encode(payload)))

    async def _form_batches(self) -> None:
        slots = asyncio.Semaphore(self.options.webhook_concurrency)
        while True:
            batch = await self._take_batch()
            await slots.acquire()
            task = asyncio.create_task(self._deliver(batch, slots))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _take_batch(self) -> list[StatusNote]:
        batch = [await self._queue.get()]
        size = self.options.statuses_per_delivery
        deadline = time.monotonic() + self.options.batch_linger_ms / 1000
        while len(batch) < size:
            try:
                batch.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                if time.monotonic() >= deadline:
                    break
                # Polling, not wait_for(queue.get()): on 3.11 a timed-out get can lose an item.
                await asyncio.sleep(_POLL_S)
        return batch

    async def _deliver(self, batch: list[StatusNote], slots: asyncio.Semaphore) -> None:
        try:
            body = _encode(statuses_delivery(batch))
            status = await self._post_with_retries(body)
            if status is not None and status < 300:
                self.statuses_posted += len(batch)
                await self._follow_links(batch)
                if self.options.duplicate_rate and self.rng.random() < self.options.duplicate_rate:
                    self.duplicates += 1
                    await self._post(body)
        finally:
            self._settled += len(batch)
            slots.release()

    async def _follow_links(self, batch: list[StatusNote]) -> None:
        """A share of readers (`click_rate`, or the template's own rate) open their message's
        first short link."""
        for note in batch:
            rate = self.options.template_click_rates.get(note.template, self.options.click_rate)
            if note.links and rate and self.rng.random() < rate:
                try:
                    async with self._session.get(note.links[0], allow_redirects=False) as response:
                        await response.read()
                        self.clicks[str(response.status)] += 1
                except (aiohttp.ClientError, TimeoutError):
                    self.clicks["unreachable"] += 1

    async def _post_with_retries(self, body: bytes) -> int | None:
        for attempt in range(self.options.webhook_retries + 1):
            status = await self._post(body)
            if status is not None and status < 300:
                return status
            if attempt < self.options.webhook_retries:
                await asyncio.sleep(0.2 * 2**attempt)
        self.dropped += 1
        return status

    async def _post(self, body: bytes) -> int | None:
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": compute_signature(self.options.app_secret, body),
        }
        started = time.perf_counter()
        try:
            status = await self._posts.post(body, headers)
        except (OSError, TimeoutError, ResponseError):
            self.failed += 1
            self.failed_by_status["unreachable"] += 1
            return None
        self._count(status, (time.perf_counter() - started) * 1000)
        return status

    def _count(self, status: int, latency_ms: float) -> None:
        if status < 300:
            self.posted += 1
            self.latencies_ms.append(latency_ms)
        else:
            self.failed += 1
            self.failed_by_status[str(status)] += 1

    def stats(self, *, brief: bool = False) -> dict:
        """The counters; `brief` leaves out the latency percentiles, which sort every sample."""
        counts = {
            "enabled": self.enabled,
            "posted": self.posted,
            "failed": self.failed,
            "failed_by_status": dict(self.failed_by_status),
            "clicks_by_status": dict(self.clicks),
            "statuses_posted": self.statuses_posted,
            "duplicates": self.duplicates,
            "dropped": self.dropped,
            "pending": self.pending,
        }
        if brief:
            return counts
        ordered = sorted(self.latencies_ms.copy())  # the poster thread appends meanwhile
        counts["latency_ms"] = {
            "p50": _percentile(ordered, 0.50),
            "p99": _percentile(ordered, 0.99),
            "samples": len(ordered),
        }
        return counts


def _encode(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _percentile(ordered: list[float], share: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)

"""One slice: a bounded run of sending for one (campaign, sender), then the next slice is queued.

Only one slice per sender runs at a time (a Redis lock that expires with the claim lease). A slice
claims about a slice's worth of contacts, sends them paced by the number's token bucket with a
small pool of requests in flight, reacts to every error by its code, writes its results in one
statement per flush and returns what it did not send to the pool.
"""

import contextlib
import logging
import math
import os
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from queue import Empty, SimpleQueue

from django.conf import settings
from django.db import connection

from campaigns.engine import redis as engine_redis
from campaigns.engine.batch import Batch, forget_queries, payloads_store, writer_thread
from campaigns.engine.claims import Claimed, claims_release, contacts_claim
from campaigns.engine.context import SenderContext, TemplateChoice
from campaigns.engine.dispatch import sender_requeue
from campaigns.engine.metrics import sent_add, statements_counted
from campaigns.engine.pacing import Pacer
from campaigns.engine.progress import campaign_complete_if_done, next_wake_s
from campaigns.engine.reactions import SPAM_CODE, Action, decide, failure_reason
from campaigns.models import CampaignSender
from titanflow.whatsapp.client import GraphClient, shared_pool
from titanflow.whatsapp.errors import MetaAPIError
from titanflow.whatsapp.payloads import MissingVariableError

log = logging.getLogger(__name__)

MIN_CLAIM = 20
MAX_CLAIM = 500
LATENCY_GUESS_S = 0.1

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class SliceResult:
    again: bool
    countdown: float = 0.0
    sent: int = 0
    statements: int = 0


def sender_run_slice(*, campaign_id: int, sender_id: int) -> SliceResult:
    """Runs one slice unless another is running for this sender; queues the next if needed."""
    redis = engine_redis.client()
    redis.delete(engine_redis.sender_queued_key(sender_id))
    token = uuid.uuid4().hex
    lock = engine_redis.sender_lock_key(sender_id)
    if not redis.set(lock, token, nx=True, px=int(settings.ENGINE_LEASE_SECONDS * 1000)):
        return SliceResult(again=False)
    try:
        with statements_counted():
            result = Slice(campaign_id=campaign_id, sender_id=sender_id).run()
        sent_add(result.sent)
    except CampaignSender.DoesNotExist:
        return SliceResult(again=False)  # the campaign was deleted while its slice waited
    finally:
        redis.eval(_UNLOCK, 1, lock, token)
        forget_queries()
    if result.again:
        sender_requeue(campaign_id=campaign_id, sender_id=sender_id, countdown=result.countdown)
    return result


_pools: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor:
    pid = os.getpid()
    if pid not in _pools:
        _pools.clear()
        _pools[pid] = ThreadPoolExecutor(settings.ENGINE_MAX_IN_FLIGHT, thread_name_prefix="send")
    return _pools[pid]


class Slice:
    def __init__(self, *, campaign_id: int, sender_id: int):
        self.ctx = SenderContext(campaign_id=campaign_id, sender_id=sender_id).load()
        self.batch = Batch(campaign_id=campaign_id, sender_id=sender_id, phone_id=self.ctx.phone_id)
        self.queue: deque[Claimed] = deque()
        self.in_flight: dict[Future, tuple[Claimed, int, bytes]] = {}
        self.done: SimpleQueue[Future] = SimpleQueue()
        self.latency = LATENCY_GUESS_S
        self.rate = self.ctx.rate
        self.generation: int | None = None
        self.stopped = False
        self.opt_outs: list[str] = []
        self.sent = 0
        self.prefetching: Future | None = None
        self.claimed_up_to = 0
        self.exhausted_pool = False

    def run(self) -> SliceResult:
        if not self.ctx.sending:
            claims_release(sender_id=self.ctx.sender_id)
            return SliceResult(again=False, statements=self.batch.statements + 3)
        # About a second of sending per claim, topped up as it runs low: a slow number does not
        # sit on contacts the others could send.
        self.chunk = max(MIN_CLAIM, min(math.ceil(self.ctx.rate), MAX_CLAIM))
        if not self._claim_more():
            return self._idle()
        self.pacer = Pacer(
            phone_number_id=self.ctx.phone_number_id,
            rate=self.ctx.rate,
            campaign_id=self.ctx.campaign_id,
            campaign_rate=self.ctx.campaign_rate,
        )
        self.client = _client(self.ctx.access_token)
        self._loop()
        self._finish()
        return SliceResult(again=not self.stopped, sent=self.sent)

    def _claim_more(self) -> int:
        claimed = self._claim_prepared()
        self.queue.extend(claimed)
        return len(claimed)

    def _claim_prepared(self) -> list[Claimed]:
        claimed = self._claim(limit=self.chunk, after=self.claimed_up_to)
        if len(claimed) < self.chunk and self.claimed_up_to:
            # Contacts returned to the pool behind us (retries, other numbers' releases).
            claimed += self._claim(limit=self.chunk - len(claimed), after=0)
        self.exhausted_pool = len(claimed) < self.chunk
        self._prepare(claimed)
        return claimed

    def _claim(self, *, limit: int, after: int) -> list[Claimed]:
        claimed = contacts_claim(
            campaign_id=self.ctx.campaign_id,
            sender_id=self.ctx.sender_id,
            limit=limit,
            after=after,
        )
        if claimed:
            self.claimed_up_to = max(self.claimed_up_to, claimed[-1].id)
        return claimed

    def _prefetch_job(self) -> list[Claimed]:
        with statements_counted():
            claimed = self._claim_prepared()
        forget_queries()
        return claimed

    def _prefetch(self, *, sending: bool) -> None:
        """Claims and prepares the next chunk on the writer thread while this one is sent, so
        the send loop never stalls on the database."""
        if self.prefetching is not None and (self.prefetching.done() or not self.queue):
            self.queue.extend(self.prefetching.result())
            self.prefetching = None
        if not sending or self.prefetching is not None or self.exhausted_pool:
            return
        if len(self.queue) < self.chunk:
            if connection.in_atomic_block:
                self._claim_more()
            else:
                self.prefetching = writer_thread().submit(self._prefetch_job)

    def _prepare(self, claimed: list[Claimed]) -> None:
        """Builds and stores every claimed contact's payload before anything is sent: a worker
        killed mid-slice leaves, on each contact, the exact bytes its status webhook reconciles."""
        template = self.ctx.current()
        if template is None or not claimed:
            return
        built = []
        for contact in claimed:
            if contact.payload and contact.payload_template_id == template.id:
                continue
            with contextlib.suppress(MissingVariableError):
                self._body(contact, template)
                built.append(contact)
        payloads_store(contacts=built)
        self.batch.statements += 1

    def _idle(self) -> SliceResult:
        if campaign_complete_if_done(campaign_id=self.ctx.campaign_id):
            return SliceResult(again=False)
        return SliceResult(again=True, countdown=next_wake_s(campaign_id=self.ctx.campaign_id))

    # -- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        deadline = time.monotonic() + settings.ENGINE_SLICE_SECONDS
        flushed = time.monotonic()
        while True:
            pause = 0.05
            sending = not self.stopped and time.monotonic() < deadline
            self._prefetch(sending=sending)
            if not (self.queue or self.in_flight or self.prefetching):
                break
            if self.queue and sending:
                pause = self._submit_granted()
            elif not self.in_flight and not self.prefetching:
                break
            if self.in_flight:
                self._settle_done(pause)
            elif pause:
                time.sleep(pause)
            if time.monotonic() - flushed >= settings.ENGINE_FLUSH_SECONDS:
                self.batch.flush()
                flushed = time.monotonic()

    def _settle_done(self, pause: float) -> None:
        """Settles every finished send, waiting up to `pause` for the first one."""
        try:
            future = self.done.get(timeout=pause) if pause else self.done.get_nowait()
        except Empty:
            return
        self._settle(future)
        while True:
            try:
                future = self.done.get_nowait()
            except Empty:
                return
            self._settle(future)

    def _submit_granted(self) -> float:
        """Sends as many as the bucket grants; returns how long to wait before asking again."""
        window = self._window()
        room = window - len(self.in_flight)
        # Tokens are asked for in chunks: one Redis round trip per several sends, not per send.
        if room <= 0 or (self.in_flight and room < window // 4):
            return 0.25
        grant = self.pacer.take(min(room, len(self.queue)))
        self.rate = grant.rate
        self._follow_generation(grant.generation)
        if self.stopped:
            return 0
        for _ in range(grant.tokens):
            if not self.queue or self.stopped:
                break
            self._submit(self.queue.popleft())
        if grant.tokens:
            return 0
        return min(max(grant.wait_s, 0.002), 0.25)

    def _window(self) -> int:
        # Enough requests in flight to keep the number at its rate, given how slow Meta answers.
        wanted = math.ceil(self.rate * self.latency * 1.5) + 2
        return max(2, min(settings.ENGINE_MAX_IN_FLIGHT, wanted))

    def _follow_generation(self, generation: int) -> None:
        if self.generation is None:
            self.generation = generation
        elif generation != self.generation:
            self.generation = generation
            self.ctx.load()
            if not self.ctx.sending:
                self.stopped = True

    def _submit(self, contact: Claimed) -> None:
        template = self.ctx.current()
        if template is None:
            self._out_of_templates(contact)
            return
        try:
            body = self._body(contact, template)
        except MissingVariableError as exc:
            reason = f"No value for {', '.join(exc.slot_keys)} in template {template.name}."
            self.batch.add_failed(contact, code=None, reason=reason)
            return
        future = _pool().submit(self._send, body)
        self.in_flight[future] = (contact, template.id, body)
        future.add_done_callback(self.done.put)

    def _body(self, contact: Claimed, template: TemplateChoice) -> bytes:
        # Built once per (contact, template); every retry with that template resends these bytes.
        if contact.payload and contact.payload_template_id == template.id:
            return contact.payload.encode()
        body = template.body_for(
            contact_id=contact.id,
            phone=contact.phone,
            variables=contact.variables,
            mapping=self.ctx.mapping,
        )
        contact.payload, contact.payload_template_id = body.decode(), template.id
        contact.payload_saved = False
        return body

    def _send(self, body: bytes):
        started = time.monotonic()
        result = self.client.send_message(self.ctx.phone_number_id, body)
        return result, time.monotonic() - started

    def _settle(self, future: Future) -> None:
        contact, template_id, body = self.in_flight.pop(future)
        try:
            result, took = future.result()
        except MetaAPIError as exc:
            self._react(contact, template_id, exc)
            return
        except Exception:  # a bug must not lose the contact: it goes back to the pool
            log.exception("send to contact %s failed unexpectedly", contact.id)
            self.queue.append(contact)
            self.stopped = True
            return
        self.latency = self.latency * 0.8 + took * 0.2
        self.batch.add_sent(
            contact, template_id=template_id, body=body.decode(), wamid=result.wamid
        )
        self.sent += 1

    # -- reactions -----------------------------------------------------------------------------

    def _react(self, contact: Claimed, template_id: int, exc: MetaAPIError) -> None:
        from campaigns.services import failures

        info = exc.info
        strikes = self._spam_strike() if info.code == SPAM_CODE else 0
        decision = decide(info, attempts=contact.attempts, spam_strikes=strikes)
        reason = failure_reason(info, exc.details or exc.title)
        action = decision.action
        kept = {"body": contact.payload, "template_id": contact.payload_template_id}
        if action == Action.NEXT_TEMPLATE:
            self._template_failed(template_id, info)
            self.queue.appendleft(contact)
        elif action == Action.EXHAUST_PHONE:
            failures.senders_exhaust_for_phone(
                phone_id=self.ctx.phone_id, code=info.code, reason=reason
            )
            self._stop_with_retry(contact, info.code, reason)
        elif action == Action.EXHAUST_ACCOUNT:
            failures.senders_exhaust_for_account(
                account_id=self.ctx.account_id, code=info.code, reason=reason
            )
            self._stop_with_retry(contact, info.code, reason)
        elif action == Action.FAIL:
            self.batch.add_failed(contact, code=info.code, reason=reason, **kept)
            if info.records_opt_out:
                self.opt_outs.append(contact.phone)
        elif action == Action.RETRY_LATER:
            self.batch.add_retry(
                contact, delay_s=decision.delay_s, code=info.code, reason=reason, **kept
            )
        elif action == Action.SLOW_DOWN:
            self.rate = self.pacer.slow_down(backoff_s=decision.delay_s)
            self.queue.append(contact)
        elif action == Action.AWAIT:
            self.batch.add_awaiting(contact, reason=reason, **kept)
        else:
            self._pause_campaign(reason)
            self._stop_with(contact)

    def _template_failed(self, template_id: int, info) -> None:
        from campaigns.services.failures import sender_template_fail

        if any(t.id == template_id and t.failed for t in self.ctx.templates):
            return  # other requests in flight with it failed the same way
        self.ctx.template_failed(template_id)
        sender_template_fail(
            sender_id=self.ctx.sender_id,
            template_id=template_id,
            code=info.code,
            marks_template=info.marks_template,
        )

    def _out_of_templates(self, contact: Claimed) -> None:
        from campaigns.services.lifecycle import sender_exhaust

        sender_exhaust(
            sender_id=self.ctx.sender_id,
            code=None,
            reason="No approved template left for this number.",
        )
        self._stop_with(contact)

    def _pause_campaign(self, reason: str) -> None:
        from campaigns.models import Campaign
        from campaigns.services.lifecycle import CampaignStateError, campaign_pause

        with contextlib.suppress(CampaignStateError):
            campaign_pause(campaign=Campaign(pk=self.ctx.campaign_id), reason=reason)

    def _stop_with_retry(self, contact: Claimed, code: int | None, reason: str) -> None:
        # Back to the pool at once for the other numbers, with its payload and why it moved.
        self.batch.add_retry(
            contact,
            delay_s=0,
            code=code,
            reason=reason,
            body=contact.payload,
            template_id=contact.payload_template_id,
        )
        self.stopped = True

    def _stop_with(self, contact: Claimed) -> None:
        self.queue.appendleft(contact)
        self.stopped = True

    def _spam_strike(self) -> int:
        redis = engine_redis.client()
        key = engine_redis.spam_key(self.ctx.phone_number_id)
        strikes = redis.incr(key)
        redis.expire(key, 60)
        return int(strikes) - 1

    # -- the end -------------------------------------------------------------------------------

    def _finish(self) -> None:
        from campaigns.services.failures import campaigns_pause_if_exhausted
        from campaigns.services.optouts import optout_record

        if self.prefetching is not None:
            self.queue.extend(self.prefetching.result())
        for contact in self.queue:
            self.batch.add_released(contact)
        self.queue.clear()
        self.batch.flush()
        self.batch.settle()
        for phone in self.opt_outs:
            optout_record(phone=phone, reason="131050", source=f"campaign {self.ctx.campaign_id}")
        if self.stopped:
            campaigns_pause_if_exhausted(campaign_ids=[self.ctx.campaign_id])


def _client(access_token: str) -> GraphClient:
    return GraphClient(
        base_url=settings.WHATSAPP_GRAPH_URL,
        version=settings.WHATSAPP_API_VERSION,
        access_token=access_token,
        read_timeout=settings.ENGINE_READ_TIMEOUT_SECONDS,
        pool=shared_pool(),
    )

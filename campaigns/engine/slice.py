"""One slice: a bounded run of sending for one (campaign, sender), then the next slice is queued.

Only one slice per sender runs at a time (a Redis lock the slice renews while it runs, so a dead
worker's senders are free again within seconds). A slice claims about a second of contacts at a
time under its fencing token, arms each small group just before sending it (payloads stored,
token and opt-outs checked: see claims.py), sends paced by the number's token bucket with up to
ENGINE_MAX_IN_FLIGHT requests in flight from its own thread (titanflow/whatsapp/mux.py), reacts
to every error by its code, writes its results in one statement per flush and returns what it
did not send to the pool.

A lost Redis or database connection stops the sending, never the bookkeeping: the requests in
flight are settled, the results written (through a reconnect), and the next slice picks up.
"""

import contextlib
import itertools
import logging
import math
import os
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from campaigns.clicks.links import links_store
from campaigns.engine import guard
from campaigns.engine.batch import Batch, forget_queries, writer_thread
from campaigns.engine.claims import (
    Claimed,
    claim_token,
    claims_release,
    claims_renew,
    contacts_arm,
    contacts_claim,
)
from campaigns.engine.context import SenderContext, TemplateChoice
from campaigns.engine.dispatch import sender_requeue, slices_waiting
from campaigns.engine.lock import SenderLock
from campaigns.engine.metrics import sent_add, statements_counted
from campaigns.engine.pacing import BURST_SHARE, Pacer
from campaigns.engine.progress import campaign_complete_if_done, next_wake_s
from campaigns.engine.reactions import SPAM_CODE, Action, decide, failure_reason
from campaigns.models import CampaignSender
from campaigns.services import senders
from campaigns.services.optouts import optout_record
from titanflow.whatsapp.client import auth_headers, graph_url, send_outcome
from titanflow.whatsapp.errors import MetaAPIError
from titanflow.whatsapp.mux import Done, SendMux
from titanflow.whatsapp.payloads import MissingVariableError

log = logging.getLogger(__name__)

MIN_CLAIM = 20
MAX_CLAIM = 500
LATENCY_GUESS_S = 0.1
# Contacts are armed in groups of about this much sending, one group ahead of the sends.
ARM_SECONDS = 0.5
MIN_ARM = 8
# A send starts only while the lease has at least this long left (clock skew, scheduling).
LEASE_MARGIN_S = 2.0
FAULTS = (redis.RedisError, DatabaseError)


@dataclass(frozen=True)
class SliceResult:
    again: bool
    countdown: float = 0.0
    sent: int = 0
    statements: int = 0


def sender_run_slice(*, campaign_id: int, sender_id: int) -> SliceResult:
    """Runs one slice unless another is running for this sender; queues the next if needed."""
    token = claim_token()
    lock = SenderLock(sender_id=sender_id, token=token)
    if not lock.acquire():
        return SliceResult(again=False)
    try:
        with statements_counted():
            result = Slice(
                campaign_id=campaign_id, sender_id=sender_id, token=token, lock=lock
            ).run()
        sent_add(result.sent)
    except CampaignSender.DoesNotExist:
        return SliceResult(again=False)  # the campaign was deleted while its slice waited
    finally:
        lock.release()
        forget_queries()
    if result.again:
        try:
            sender_requeue(campaign_id=campaign_id, sender_id=sender_id, countdown=result.countdown)
        except redis.RedisError as exc:
            log.warning("could not queue the next slice of sender %s (%s)", sender_id, exc)
    return result


# One multiplexed client per access token, kept across this process's slices (it is empty
# between them): a slice's connections outlive it.
_muxes: dict[tuple[int, str, str], SendMux] = {}
_MUXES_KEPT = 8
_request_keys = itertools.count(1)


def _mux(access_token: str) -> SendMux:
    key = (os.getpid(), settings.WHATSAPP_GRAPH_URL, access_token)
    mux = _muxes.get(key)
    if mux is not None and mux.in_flight:
        # A slice that died before settling its sends left them here: they stay armed for the
        # reaper (maybe at Meta), and their answers must not reach this slice.
        mux.close()
        del _muxes[key]
        mux = None
    if mux is None:
        if any(pid != key[0] for pid, *_ in _muxes) or len(_muxes) >= _MUXES_KEPT:
            for old in _muxes.values():  # a parent's sockets, or tokens not used lately
                if old.in_flight == 0:
                    old.close()
            _muxes.clear()
        mux = _muxes[key] = SendMux(
            settings.WHATSAPP_GRAPH_URL,
            headers={**auth_headers(access_token), "Content-Type": "application/json"},
            connect_timeout=3.0,
            read_timeout=settings.ENGINE_READ_TIMEOUT_SECONDS,
            max_connections=settings.ENGINE_MAX_IN_FLIGHT,
        )
    return mux


class Slice:
    def __init__(self, *, campaign_id: int, sender_id: int, token: int, lock: SenderLock):
        self.ctx = SenderContext(campaign_id=campaign_id, sender_id=sender_id).load()
        self.token = token
        self.lock = lock
        self.batch = Batch(
            campaign_id=campaign_id, sender_id=sender_id, phone_id=self.ctx.phone_id, token=token
        )
        self.queue: deque[Claimed] = deque()  # claimed, not armed
        self.ready: deque[Claimed] = deque()  # armed: may be sent now
        self.in_flight: dict[int, tuple[Claimed, int, bytes]] = {}
        self.ended: deque[Done] = deque()  # sends that ended, not yet settled
        self.latency = LATENCY_GUESS_S
        self.rate = self.ctx.rate
        self.generation: int | None = None
        self.stopped = False
        self.opt_outs: list[str] = []
        self.sent = 0
        self.prefetching: Future | None = None
        self.arming: Future | None = None
        self.renewing: Future | None = None
        self.claimed_up_to = 0
        self.exhausted_pool = False
        self.arming_group: list = []
        self.lease_ok_until = 0.0
        self.guard_stopped = False
        self.hold: tuple[str, object] | None = None  # (reason, until) when the guard held back
        # The deadline on the wall clock, compared before each burst of sends (no query).
        self.deadline_ts = self.ctx.deadline.timestamp() if self.ctx.deadline else math.inf
        now = time.monotonic()
        self.next_renewal = now + settings.ENGINE_LEASE_SECONDS / 4
        self.next_lock_extension = now + settings.ENGINE_LOCK_SECONDS / 3

    def run(self) -> SliceResult:
        if not self.ctx.sending:
            claims_release(sender_id=self.ctx.sender_id)
            return SliceResult(again=False, statements=self.batch.statements + 3)
        if time.time() >= self.deadline_ts:
            return self._expire()
        if self.ctx.quality_stop:
            return self._quality_hold()
        # About a second of sending per claim, topped up as it runs low: a slow number does not
        # sit on contacts the others could send.
        self.chunk = max(MIN_CLAIM, min(math.ceil(self.ctx.rate), MAX_CLAIM))
        self.group = max(MIN_ARM, math.ceil(self.ctx.rate * ARM_SECONDS))
        self._lease_renewed(time.monotonic())
        if not self._claim_more():
            return self._idle()
        self.pacer = Pacer(
            phone_number_id=self.ctx.phone_number_id,
            rate=self.ctx.rate,
            campaign_id=self.ctx.campaign_id,
            campaign_rate=self.ctx.campaign_rate,
        )
        self.mux = _mux(self.ctx.access_token)
        self.send_path = _send_path(self.ctx.phone_number_id)
        try:
            self._loop()
        finally:
            self._finish()
        if self.guard_stopped:  # the next slice expires the rest or holds the number
            return SliceResult(again=True, countdown=0.2, sent=self.sent)
        return SliceResult(again=not self.stopped, sent=self.sent)

    def _idle(self) -> SliceResult:
        if self.hold is not None:
            return self._portfolio_hold(*self.hold)
        if campaign_complete_if_done(campaign_id=self.ctx.campaign_id):
            return SliceResult(again=False)
        return SliceResult(again=True, countdown=next_wake_s(campaign_id=self.ctx.campaign_id))

    # -- the deliverability guard (campaigns/engine/guard.py) ------------------------------------

    def _expire(self) -> SliceResult:
        claims_release(sender_id=self.ctx.sender_id)
        guard.campaign_expire(campaign_id=self.ctx.campaign_id)
        campaign_complete_if_done(campaign_id=self.ctx.campaign_id)
        return SliceResult(again=False)

    def _quality_hold(self) -> SliceResult:
        # Not exhausted: the number comes back by itself when Meta rates it better; meanwhile
        # the other numbers take its contacts from the shared pool.
        claims_release(sender_id=self.ctx.sender_id)
        guard.sender_hold(sender_id=self.ctx.sender_id, reason=self.ctx.quality_stop, until=None)
        return SliceResult(again=True, countdown=settings.ENGINE_HOLD_POLL_SECONDS)

    def _portfolio_hold(self, reason: str, until) -> SliceResult:
        guard.sender_hold(sender_id=self.ctx.sender_id, reason=reason, until=until)
        guard.campaign_hold(campaign_id=self.ctx.campaign_id, reason=reason, until=until)
        return SliceResult(again=True, countdown=guard.hold_countdown_s(until))

    # -- claiming, arming, renewing ------------------------------------------------------------

    def _claim_more(self) -> int:
        claimed = self._claim_chunk()
        self.queue.extend(claimed)
        return len(claimed)

    def _claim_chunk(self) -> list[Claimed]:
        if self.ctx.portfolio_limit is None:
            claimed = self._claim_up_to(self.chunk)
        else:
            claimed = self._claim_within_budget()
        if claimed and self.ctx.held:
            self.ctx.held = False
            guard.sender_hold_clear(sender_id=self.ctx.sender_id, campaign_id=self.ctx.campaign_id)
        if claimed and self.ctx.quiet is not None:
            claimed = guard.contacts_defer_quiet(
                token=self.token, claimed=claimed, quiet=self.ctx.quiet
            )
        return claimed

    def _claim_up_to(self, chunk: int) -> list[Claimed]:
        claimed = self._claim(limit=chunk, after=self.claimed_up_to)
        if len(claimed) < chunk and self.claimed_up_to:
            # Contacts returned to the pool behind us (retries, other numbers' releases).
            claimed += self._claim(limit=chunk - len(claimed), after=0)
        self.exhausted_pool = len(claimed) < chunk
        return claimed

    def _claim_within_budget(self) -> list[Claimed]:
        """Claims no more than the portfolio has room for in its rolling 24 h; with no room
        left, notes when the window frees some and claims nothing."""
        with transaction.atomic():
            guard.portfolio_lock(account_id=self.ctx.account_id)
            budget = guard.portfolio_budget(
                phone_ids=self.ctx.portfolio_phone_ids, limit=self.ctx.portfolio_limit
            )
            if budget.room == 0:
                reason = guard.PORTFOLIO_HELD.format(limit=budget.limit)
                self.hold, self.exhausted_pool = (reason, budget.next_room_at), True
                return []
            claimed = self._claim_up_to(min(self.chunk, budget.room))
            if len(claimed) == budget.room:
                self.exhausted_pool = True  # the next slice finds out whether room came back
            return claimed

    def _claim(self, *, limit: int, after: int) -> list[Claimed]:
        claimed = contacts_claim(
            campaign_id=self.ctx.campaign_id,
            sender_id=self.ctx.sender_id,
            token=self.token,
            limit=limit,
            after=after,
        )
        if claimed:
            self.claimed_up_to = max(self.claimed_up_to, claimed[-1].id)
        return claimed

    def _in_background(self, job, *args):
        """Runs `job` on the writer thread (inline inside a caller's transaction: tests)."""
        if connection.in_atomic_block:
            future = Future()
            future.set_result(job(*args))
            return future
        return writer_thread().submit(_db_job, job, *args)

    def _keep_fed(self, *, sending: bool) -> None:
        """Claims the next chunk and arms the next group in the background while this one is
        sent, so the send loop never waits on the database."""
        if self.prefetching is not None and (self.prefetching.done() or not self.queue):
            self.queue.extend(self.prefetching.result())
            self.prefetching = None
        if self.arming is not None and (self.arming.done() or not self.ready):
            self._armed(*self.arming.result())
            self.arming = None
        if not sending:
            return
        if self.prefetching is None and not self.exhausted_pool and len(self.queue) < self.chunk:
            self.prefetching = self._in_background(self._claim_chunk)
        if self.arming is None and self.queue and len(self.ready) < self.group:
            self._arm_next()

    def _arm_next(self) -> None:
        group, rows, links = [], [], {}
        while self.queue and len(group) < self.group:
            contact = self.queue.popleft()
            choice = self._choose(contact)
            if choice is None:
                continue
            group.append((contact, choice))
            saved = contact.payload_saved
            if not saved:
                links[contact.id] = contact.links
            rows.append(
                {
                    "id": contact.id,
                    "payload": None if saved else contact.payload,
                    "t": None if saved else contact.payload_template_id,
                }
            )
        if group:
            self.arming_group = group
            where = (self.ctx.campaign_id, self.ctx.phone_id)
            self.arming = self._in_background(_arm_job, self.token, rows, group, links, where)

    def _armed(self, armed: set[int], group: list) -> None:
        for contact, choice in group:
            if contact.id in armed:
                contact.payload_saved = True
                self.ready.append((contact, choice))
            # Not armed: another slice holds it now (our lease lapsed) or the person opted
            # out (it ended skipped). Either way it is not ours to send or to write.

    def _choose(self, contact: Claimed) -> TemplateChoice | None:
        """The first template in the marketer's order this contact's row can fill, with its
        payload built (or reused byte for byte); fails the contact when none can be filled."""
        usable = self.ctx.usable()
        if not usable:
            self._out_of_templates(contact)
            return None
        arm = self.ctx.arm_choice(contact.ab_arm_id)
        if arm is not None:  # the arm first; the sender's order if its template cannot serve
            usable = [arm, *(t for t in usable if t.id != arm.id)]
        missing: list[str] = []
        for template in usable:
            try:
                self._body(contact, template)
                return template
            except MissingVariableError as exc:
                missing = missing or exc.slot_keys
        names = ", ".join(t.name for t in usable)
        reason = f"No value for {', '.join(missing)}: this row cannot fill any template ({names})."
        self.batch.add_failed(contact, code=None, reason=reason)
        return None

    def _renew_if_due(self) -> None:
        now = time.monotonic()
        if now >= self.next_lock_extension:
            self.next_lock_extension = now + settings.ENGINE_LOCK_SECONDS / 3
            if not self.lock.extend():
                log.warning("sender %s lost its lock; stopping this slice", self.ctx.sender_id)
                self.stopped = True
                return
        if self.renewing is not None and self.renewing.done():
            renewing, self.renewing = self.renewing, None
            issued, _held = renewing.result()
            self._lease_renewed(issued)
        if now >= self.next_renewal and self.renewing is None:
            self.next_renewal = now + settings.ENGINE_LEASE_SECONDS / 4
            self.renewing = self._in_background(_renew_job, self.ctx.sender_id, self.token, now)

    def _lease_renewed(self, issued: float) -> None:
        self.lease_ok_until = issued + settings.ENGINE_LEASE_SECONDS - LEASE_MARGIN_S

    # -- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        started = time.monotonic()
        self.deadline = started + settings.ENGINE_SLICE_SECONDS
        self.last_call = started + settings.ENGINE_SLICE_MAX_SECONDS
        flushed = started
        while True:
            try:
                sending = self._may_send()
                self._keep_fed(sending=sending)
                if not (self.queue or self.ready or self.in_flight or self._background()):
                    break
                pause = 0.05
                if self.ready and sending:
                    pause = self._submit_granted()
                elif not self.in_flight and not self._background():
                    break
                self._wait(pause)
                if time.monotonic() - flushed >= settings.ENGINE_FLUSH_SECONDS:
                    self.batch.flush()
                    flushed = time.monotonic()
            except FAULTS as exc:
                self._fault(exc)

    def _may_send(self) -> bool:
        if self.stopped:
            return False
        if time.time() >= self.deadline_ts:
            self.stopped = self.guard_stopped = True  # unsent ones go back, then expire
            return False
        self._renew_if_due()
        now = time.monotonic()
        if now >= self.lease_ok_until:
            log.warning("sender %s: its lease could not be renewed; stopping", self.ctx.sender_id)
            self.stopped = True
        extend = not self.stopped and self.deadline <= now < self.last_call
        if extend and not slices_waiting():
            self.deadline = min(now + settings.ENGINE_SLICE_SECONDS, self.last_call)
        return not self.stopped and now < self.deadline

    def _background(self) -> bool:
        return self.prefetching is not None or self.arming is not None

    def _fault(self, exc: Exception) -> None:
        """Redis or PostgreSQL went away: send nothing more, settle what is in flight."""
        log.warning("sender %s stops sending: %s", self.ctx.sender_id, exc)
        if isinstance(exc, DatabaseError):
            connection.close()  # the next statement on this thread connects afresh
        self.stopped = True
        for name in ("prefetching", "arming", "renewing"):
            future = getattr(self, name)
            if future is not None and future.done() and future.exception() is not None:
                setattr(self, name, None)
                if name == "arming":  # not armed: still ours, unsent, released at the end
                    self.queue.extendleft(c for c, _ in reversed(self.arming_group))

    def _wait(self, pause: float) -> None:
        """Settles every finished send, waiting up to `pause` for the first one."""
        if not self.in_flight:
            if pause:
                time.sleep(pause)
            return
        if not self.ended:
            self.ended.extend(self.mux.poll(pause))
        # One by one off the deque: a reaction that raises (the database away) loses no other.
        while self.ended:
            self._settle(self.ended.popleft())

    def _submit_granted(self) -> float:
        """Sends as many as the bucket grants; returns how long to wait before asking again."""
        window = self._window()
        room = window - len(self.in_flight)
        # Tokens are asked for in chunks: one Redis round trip per several sends, not per send.
        if room <= 0 or (self.in_flight and room < window // 4):
            return 0.25
        want = min(room, len(self.ready))
        grant = self.pacer.take(want)
        self.rate = grant.rate
        self._follow_generation(grant.generation)
        for _ in range(grant.tokens):
            if not self.ready or self.stopped:
                break
            self._submit(*self.ready.popleft())
        if grant.tokens >= want:
            return 0
        # Ask again once a bucket's worth can be granted, not at every single token: at 80
        # msg/s asking per token cost a Redis call per message (37% of a send worker's CPU).
        # (grant.rate is the paced rate the bucket refills at.)
        short = min(want - grant.tokens, max(1.0, grant.rate * BURST_SHARE))
        return min(max(grant.wait_s, short / max(grant.rate, 1.0)), 0.25)

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
            elif self.ctx.quality_stop:
                self.stopped = self.guard_stopped = True  # held by the next slice
            else:
                self.pacer.rate_set(self.ctx.rate)  # YELLOW slows it from the next grant
                self._rechoose_ready()

    def _rechoose_ready(self) -> None:
        """A template event moved this sender on: armed contacts built for a template it may no
        longer use are armed again with the new choice (stored before they are sent)."""
        usable = {t.id for t in self.ctx.usable()}
        keep = deque()
        for contact, choice in self.ready:
            if choice.id in usable:
                keep.append((contact, choice))
            else:
                self.queue.appendleft(contact)
        self.ready = keep

    def _submit(self, contact: Claimed, template: TemplateChoice) -> None:
        body = contact.payload.encode()
        key = next(_request_keys)
        self.mux.submit(key, self.send_path, body)
        self.in_flight[key] = (contact, template.id, body)

    def _body(self, contact: Claimed, template: TemplateChoice) -> bytes:
        # Built once per (contact, template); every retry with that template resends these bytes.
        if contact.payload and contact.payload_template_id == template.id:
            return contact.payload.encode()
        body = template.body_for(
            contact_id=contact.id,
            phone=contact.phone,
            variables=contact.variables,
            mapping=self.ctx.mapping,
            links=self.ctx.links,
        )
        contact.links = self.ctx.links.take(contact.id)
        contact.payload, contact.payload_template_id = body.decode(), template.id
        contact.payload_saved = False
        return body

    def _settle(self, done: Done) -> None:
        if done.key not in self.in_flight:  # cannot happen: _mux() drops a dead slice's client
            log.error("sender %s: an answer for no send of this slice", self.ctx.sender_id)
            return
        contact, template_id, body = self.in_flight.pop(done.key)
        took = done.took
        try:
            result = send_outcome(done)
        except MetaAPIError as exc:
            self._react(contact, template_id, exc)
            return
        except Exception:  # a bug after the request may have gone out: never resend blindly
            log.exception("send to contact %s failed unexpectedly", contact.id)
            self.batch.add_awaiting(
                contact,
                reason="An unexpected error hid Meta's answer.",
                body=contact.payload,
                template_id=contact.payload_template_id,
            )
            self.stopped = True
            return
        self.latency = self.latency * 0.8 + took * 0.2
        self.batch.add_sent(
            contact,
            template_id=template_id,
            body=body.decode(),
            wamid=result.wamid,
            accepted=result.message_status[:32],
        )
        self.sent += 1

    # -- reactions -----------------------------------------------------------------------------

    def _react(self, contact: Claimed, template_id: int, exc: MetaAPIError) -> None:
        info = exc.info
        strikes = 0
        if info.code == SPAM_CODE:
            strikes = senders.phone_spam_strike(phone_number_id=self.ctx.phone_number_id)
        decision = decide(
            info, attempts=contact.attempts, spam_strikes=strikes, deadline=self.ctx.deadline
        )
        reason = failure_reason(info, exc.details or exc.title)
        action = decision.action
        kept = {"body": contact.payload, "template_id": contact.payload_template_id}
        if action == Action.NEXT_TEMPLATE:
            self._template_failed(template_id, info)
            self.queue.appendleft(contact)  # armed again with the next template's payload
        elif action == Action.EXHAUST_PHONE:
            senders.senders_exhaust_for_phone(
                phone_id=self.ctx.phone_id, code=info.code, reason=reason
            )
            self._stop_with_retry(contact, info.code, reason)
        elif action == Action.EXHAUST_ACCOUNT:
            senders.senders_exhaust_for_account(
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
            # Behind every contact already claimed: a burst of 130429s spreads over many
            # contacts instead of using up one contact's attempts.
            self.rate = self.pacer.slow_down(backoff_s=decision.delay_s)
            contact.attempts += 1
            self.queue.append(contact)
        elif action == Action.AWAIT:
            self.batch.add_awaiting(contact, reason=reason, **kept)
        else:
            self._pause_campaign(reason)
            self._stop_with(contact)

    def _template_failed(self, template_id: int, info) -> None:
        if any(t.id == template_id and t.failed for t in self.ctx.templates):
            return  # other requests in flight with it failed the same way
        self.ctx.template_failed(template_id)
        senders.sender_template_fail(
            sender_id=self.ctx.sender_id,
            template_id=template_id,
            code=info.code,
            marks_template=info.marks_template,
        )

    def _out_of_templates(self, contact: Claimed) -> None:
        senders.sender_exhaust(
            sender_id=self.ctx.sender_id, code=None, reason=senders.NO_TEMPLATE_LEFT
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

    # -- the end -------------------------------------------------------------------------------

    def _finish(self) -> None:
        """Settles every send in flight, returns what was not sent, and writes it all."""
        for future in list(self.in_flight):
            future.exception()  # waits: a send ends within the read timeout
        while self.in_flight:
            try:
                self._wait(0)
            except FAULTS as exc:  # a reaction needed the database: the reaper settles it
                log.warning("sender %s: a reaction failed: %s", self.ctx.sender_id, exc)
        self._collect_background()
        for contact in self.queue:
            self.batch.add_released(contact)
        for contact, _ in self.ready:
            self.batch.add_released(contact)  # armed but never sent: certainly not at Meta
        self.queue.clear()
        self.ready.clear()
        self.batch.flush()
        self.batch.settle()
        try:
            for phone in self.opt_outs:
                optout_record(
                    phone=phone, reason="131050", source=f"campaign {self.ctx.campaign_id}"
                )
            senders.campaigns_pause_if_exhausted(campaign_ids=[self.ctx.campaign_id])
        except DatabaseError as exc:
            connection.close()
            log.warning("sender %s: follow-ups failed: %s", self.ctx.sender_id, exc)

    def _collect_background(self) -> None:
        for name in ("prefetching", "arming", "renewing"):
            future, _ = getattr(self, name), setattr(self, name, None)
            if future is None:
                continue
            try:
                result = future.result()
            except FAULTS as exc:
                log.warning("sender %s: background work failed: %s", self.ctx.sender_id, exc)
                if name == "arming":
                    self.queue.extend(c for c, _ in self.arming_group)
                continue
            if name == "prefetching":
                self.queue.extend(result)
            elif name == "arming":
                self._armed(*result)


def _db_job(job, *args):
    try:
        return job(*args)
    except (DatabaseError, redis.RedisError):
        connection.close()  # a dead connection is replaced on the next job of this thread
        raise
    finally:
        forget_queries()


def _arm_job(token: int, rows: list[dict], group: list, links: dict, where: tuple) -> tuple:
    with statements_counted():
        if not any(links.values()):
            return contacts_arm(token=token, rows=rows), group
        with transaction.atomic():  # a link is sent only if its row exists
            armed = contacts_arm(token=token, rows=rows)
            links_store(campaign_id=where[0], phone_id=where[1], links=links, armed=armed)
        return armed, group


def _renew_job(sender_id: int, token: int, issued: float) -> tuple[float, int]:
    with statements_counted():
        return issued, claims_renew(sender_id=sender_id, token=token)


def _send_path(phone_number_id: str) -> str:
    url = graph_url(
        settings.WHATSAPP_GRAPH_URL, settings.WHATSAPP_API_VERSION, f"{phone_number_id}/messages"
    )
    return urlsplit(url).path

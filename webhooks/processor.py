"""The batch processor behind the webhook door.

Each batch locks a slice of unprocessed deliveries (SKIP LOCKED, so several workers share the
backlog), walks all of them, and hands each kind of item to the app that owns it in one
transaction: asset events, opt-out preferences, incoming messages, then statuses with one
set-based UPDATE. A delivery that cannot be applied is isolated, and within it each item: what
cannot be read is noted on the delivery and skipped, what the database refuses is recorded and
the delivery retried a few times; every other item and delivery goes through.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.services.failures import senders_exhaust_for_account
from campaigns.services.optouts import optout_record, optout_resume
from campaigns.services.statuses import StatusUpdate, statuses_apply
from inbox.services.ingest import inbox_statuses_apply, messages_ingest
from templates_app.services.events import (
    account_event_apply,
    capability_event_apply,
    phone_event_apply,
    template_events_apply,
)
from webhooks.models import PendingStatus, WebhookEvent
from webhooks.parsing import InvalidDelivery, ParsedBatch, Preference, delivery_parse

logger = logging.getLogger(__name__)

# Up to 2,000 deliveries per transaction, applied in chunks of ~2 MB of bodies: a few thousand
# statuses per UPDATE and bounded memory whether deliveries hold one status or a thousand.
BATCH_BYTES = 2 * 1024 * 1024
BATCH_DELIVERIES = 2000
MAX_ATTEMPTS = 5
ERROR_LENGTH = 2000
PENDING_BATCH = 5000
PENDING_MAX_PAUSE_S = 300
MARKETING_CATEGORY = "marketing_messages"
# The order _batch_apply applies them in, for applying one item at a time.
ITEM_KINDS = (
    "template_events",
    "phone_events",
    "account_events",
    "preferences",
    "messages",
    "statuses",
)


@dataclass
class ProcessResult:
    deliveries: int = 0
    failed_ids: set = field(default_factory=set)
    statuses: int = 0
    statuses_moved: int = 0
    statuses_pending: int = 0
    messages_stored: int = 0
    items_skipped: int = 0
    ignored: dict = field(default_factory=dict)
    # Delivery id → what was skipped in it, kept in its `error` for the admin.
    notes: dict = field(default_factory=dict)

    def add(self, other: "ProcessResult") -> None:
        for name in (
            "deliveries",
            "statuses",
            "statuses_moved",
            "statuses_pending",
            "messages_stored",
            "items_skipped",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failed_ids |= other.failed_ids
        self.notes.update(other.notes)
        for key, count in other.ignored.items():
            self.ignored[key] = self.ignored.get(key, 0) + count


def deliveries_process(*, time_budget_s: float = 20.0, gather_s: float = 0.0) -> ProcessResult:
    """Drains the backlog batch by batch until it is empty or the time budget is spent.

    With `gather_s`, a batch that was not full is followed by the next one no sooner than
    `gather_s` after it began: a run that keeps up with the door would otherwise claim a few
    deliveries at a time and pay the claim, the status UPDATE and the commit for each few."""
    total = ProcessResult()
    deadline = time.monotonic() + time_budget_s
    while time.monotonic() < deadline:
        began = time.monotonic()
        # A delivery that failed waits for the next run rather than failing again at once.
        batch = _batch_process(skip=total.failed_ids)
        total.add(batch)
        if batch.deliveries == 0:
            break
        if batch.deliveries < BATCH_DELIVERIES:
            time.sleep(max(0.0, min(began + gather_s, deadline) - time.monotonic()))
    return total


# Plain SQL with arrays: Django's `pk__in` sends one placeholder per id, and splitting that
# query cost more than a 2,000-delivery batch's status UPDATE.
# The claim walks the partial index of unprocessed deliveries in id order and stops at the
# limit. Every processed delivery leaves a dead entry in that index until vacuum; a plain index
# scan marks the entries it finds dead so the next claim skips them, a bitmap scan (what the
# planner picks on a table without statistics) revisits them all, and the claim grew with every
# delivery processed since the last vacuum (1.2 ms a claim after 15,000). Bitmap scans are off
# for this one statement.
_CLAIM_PLAN = "SET LOCAL enable_bitmapscan = off"
_CLAIM_PLAN_END = "SET LOCAL enable_bitmapscan = on"
_CLAIM_SQL = """
    SELECT id, octet_length(body) FROM webhooks_webhookevent
    WHERE processed_at IS NULL AND NOT (id = ANY(%s))
    ORDER BY id LIMIT %s
    FOR UPDATE SKIP LOCKED
"""
_BODIES_SQL = (
    "SELECT id, body, attempts, app_signed FROM webhooks_webhookevent WHERE id = ANY(%s) "
    "ORDER BY id"
)
_DONE_SQL = "UPDATE webhooks_webhookevent SET processed_at = now(), error = '' WHERE id = ANY(%s)"
_NOTES_SQL = """
    UPDATE webhooks_webhookevent e SET error = d.note
    FROM unnest(%s::bigint[], %s::text[]) AS d(id, note) WHERE e.id = d.id
"""


def _batch_process(*, skip=frozenset()) -> ProcessResult:
    result = ProcessResult()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_PLAN)
        cursor.execute(_CLAIM_SQL, [list(skip), BATCH_DELIVERIES])
        claimed = cursor.fetchall()
        cursor.execute(_CLAIM_PLAN_END)
        pending = _pending_due()
        if not claimed and not pending:
            return result
        for number, ids in enumerate(_chunks(claimed) or [[]]):
            cursor.execute(_BODIES_SQL, [ids])
            _chunk_apply(cursor.fetchall(), pending if number == 0 else [], result)
        cursor.execute(_DONE_SQL, [[pk for pk, _ in claimed if pk not in result.failed_ids]])
        notes = {pk: note for pk, note in result.notes.items() if pk not in result.failed_ids}
        if notes:
            cursor.execute(_NOTES_SQL, [list(notes), list(notes.values())])
    return result


def _chunks(claimed: list[tuple[int, int]]) -> list[list[int]]:
    """Splits the claimed deliveries so one chunk's bodies stay under BATCH_BYTES."""
    chunks, size = [], BATCH_BYTES
    for pk, length in claimed:
        if size + length > BATCH_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(pk)
        size += length
    return chunks


def _chunk_apply(rows, pending, result: ProcessResult) -> None:
    chunk = ProcessResult()
    try:
        with transaction.atomic():
            _rows_apply(rows, pending, chunk)
    except Exception:
        logger.exception("webhook batch failed; applying its deliveries one by one")
        chunk = ProcessResult()
        for row in rows:
            _row_apply_alone(row, chunk)
        _pending_apply_alone(pending)
    result.add(chunk)


def _rows_apply(rows, pending, result: ProcessResult) -> None:
    parsed = ParsedBatch()
    for pk, body, _, app_signed in rows:
        _row_parse(pk, body, parsed, result, app_signed=app_signed)
    result.deliveries += len(rows)
    _batch_apply(parsed, result, pending_rows=pending)


def _row_parse(pk: int, body, parsed: ParsedBatch, result: ProcessResult, *, app_signed) -> bool:
    known = len(parsed.preferences)
    try:
        skipped = delivery_parse(bytes(body), into=parsed)
    except InvalidDelivery as exc:
        _delivery_fail(pk, MAX_ATTEMPTS, f"InvalidDelivery: {exc}", result)
        return False
    if not app_signed:
        skipped = skipped + _resumes_dropped(parsed, known)
    if skipped:
        result.notes[pk] = (f"{len(skipped)} skipped: " + "; ".join(skipped))[:ERROR_LENGTH]
        result.items_skipped += len(skipped)
    return True


def _resumes_dropped(parsed: ParsedBatch, known: int) -> list[str]:
    """Drops the marketing resumes a delivery signed by an account's own secret added: the
    opt-out list is the whole business's, and one account's secret may not lift it."""
    fresh = parsed.preferences[known:]
    kept = [pref for pref in fresh if pref.value != "resume"]
    parsed.preferences[known:] = kept
    dropped = len(fresh) - len(kept)
    return [f"user_preferences: {dropped} resumes signed by an account's secret"] if dropped else []


def _row_apply_alone(row, result: ProcessResult) -> None:
    pk, body, attempts, app_signed = row
    result.deliveries += 1
    parsed = ParsedBatch()
    if not _row_parse(pk, body, parsed, result, app_signed=app_signed):
        return
    part = ProcessResult()
    try:
        with transaction.atomic():
            _batch_apply(parsed, part, pending_rows=[])
    except Exception:
        logger.exception("webhook delivery %s failed; applying its items one by one", pk)
        part = ProcessResult()
        failures = _items_apply_alone(parsed, part)
        if failures:
            # Applying a delivery again changes nothing twice, so it is retried whole.
            note = f"{len(failures)} failed: " + "; ".join(failures)
            _delivery_fail(pk, attempts + 1, note, result)
    result.add(part)


def _items_apply_alone(parsed: ParsedBatch, result: ProcessResult) -> list[str]:
    """Applies each item in its own savepoint; returns what the database refused."""
    failures = []
    for label, single in _singles(parsed):
        part = ProcessResult()
        try:
            with transaction.atomic():
                _batch_apply(single, part, pending_rows=[])
        except Exception as exc:  # this item only: the delivery's others still apply
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
        else:
            result.add(part)
    for name, count in parsed.ignored.items():
        result.ignored[name] = result.ignored.get(name, 0) + count
    return failures


def _singles(parsed: ParsedBatch):
    for kind in ITEM_KINDS:
        for n, item in enumerate(getattr(parsed, kind)):
            yield f"{kind}[{n}]", ParsedBatch(**{kind: [item]})


def _pending_apply_alone(pending: list[PendingStatus]) -> None:
    try:
        with transaction.atomic():
            _statuses_route([], ProcessResult(), pending_rows=pending)
    except Exception:
        logger.exception("retrying %s pending statuses failed", len(pending))
        _pending_reschedule(pending)


def _delivery_fail(pk: int, attempts: int, error: str, result: ProcessResult) -> None:
    # Given up after MAX_ATTEMPTS: processed, with its error kept for the admin and a replay.
    done = timezone.now() if attempts >= MAX_ATTEMPTS else None
    WebhookEvent.objects.filter(pk=pk).update(
        attempts=attempts,
        # A database error may quote the value it refused; Postgres text refuses NUL.
        error=error.replace("\x00", "")[:ERROR_LENGTH],
        processed_at=done,
    )
    result.failed_ids.add(pk)


def _batch_apply(parsed: ParsedBatch, result: ProcessResult, *, pending_rows) -> None:
    template_events_apply(events=parsed.template_events)
    for event in parsed.phone_events:
        phone_event_apply(event=event)
    for event in parsed.capability_events:
        capability_event_apply(event=event)
    for event in parsed.account_events:
        restriction = account_event_apply(event=event)
        if restriction is not None:
            senders_exhaust_for_account(
                account_id=restriction.account_id, code=None, reason=restriction.reason
            )
    _preferences_apply(parsed)
    if parsed.messages:
        result.messages_stored += messages_ingest(messages=parsed.messages).stored
    _statuses_route(parsed.statuses, result, pending_rows=pending_rows)
    for name, count in parsed.ignored.items():
        result.ignored[name] = result.ignored.get(name, 0) + count


def _preferences_apply(parsed: ParsedBatch) -> None:
    for pref in sorted(parsed.preferences, key=lambda p: p.timestamp):
        if pref.category == MARKETING_CATEGORY:
            _preference_apply(pref)


def _preference_apply(pref: Preference) -> None:
    # Ordered by when the person chose, not by when Meta's webhook arrived.
    phone = f"+{pref.wa_id}"
    source = f"via {pref.phone_number_id}"
    if pref.value == "stop":
        optout_record(phone=phone, reason="user_preferences", source=source, at=pref.timestamp)
    elif pref.value == "resume":
        optout_resume(phone=phone, at=pref.timestamp, source=source)


def _statuses_route(statuses: list, result: ProcessResult, *, pending_rows) -> None:
    """Campaign messages first, then inbox replies; what matches neither waits and retries."""
    retried: dict[StatusUpdate, list[PendingStatus]] = {}
    for row in pending_rows:
        retried.setdefault(_update_of(row), []).append(row)
    updates = list(statuses) + list(retried)
    if not updates:
        return
    applied = statuses_apply(updates=updates)
    result.statuses += len(statuses)
    result.statuses_moved += applied.moved
    unmatched = applied.unmatched
    if unmatched:
        inbox = inbox_statuses_apply(updates=unmatched)
        unmatched = [u for u in unmatched if u.wamid not in inbox]
    waiting = set(unmatched)
    matched_rows = [row.pk for u, rows in retried.items() if u not in waiting for row in rows]
    PendingStatus.objects.filter(pk__in=matched_rows).delete()
    _pending_reschedule([row for u, rows in retried.items() if u in waiting for row in rows])
    fresh = {u for u in unmatched if u not in retried}
    _pending_store(fresh)
    result.statuses_pending += len(fresh)


def _update_of(row: PendingStatus) -> StatusUpdate:
    return StatusUpdate(
        wamid=row.wamid,
        status=row.status,
        timestamp=row.timestamp,
        callback=row.callback,
        recipient=row.recipient,
        phone_number_id=row.phone_number_id,
        error_code=row.error_code,
        error_title=row.error_title,
        error_details=row.error_details,
        billable=row.billable,
        pricing_category=row.pricing_category,
    )


def _pending_due() -> list[PendingStatus]:
    return list(
        PendingStatus.objects.select_for_update(skip_locked=True)
        .filter(given_up_at__isnull=True, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at", "id")[:PENDING_BATCH]
    )


def _pending_store(updates) -> None:
    now = timezone.now()
    PendingStatus.objects.bulk_create(
        [
            PendingStatus(
                wamid=u.wamid,
                status=u.status,
                timestamp=u.timestamp,
                callback=u.callback[:512],
                recipient=u.recipient[:32],
                phone_number_id=u.phone_number_id[:64],
                error_code=u.error_code,
                error_title=u.error_title,
                error_details=u.error_details,
                billable=u.billable,
                pricing_category=u.pricing_category[:32],
                first_seen_at=now,
                next_attempt_at=now + timedelta(seconds=1),
            )
            for u in updates
        ]
    )


def _pending_reschedule(rows: list[PendingStatus]) -> None:
    """Waits 2, 4, 8... seconds (at most PENDING_MAX_PAUSE_S) before the next try; past the
    grace period the status is kept but no longer retried."""
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE webhooks_pendingstatus SET
                attempts = attempts + 1,
                next_attempt_at = now() + least(2 ^ (attempts + 1), %s) * interval '1 second',
                given_up_at = CASE WHEN first_seen_at < now() - %s THEN now() END
            WHERE id = ANY(%s)
            """,
            [
                PENDING_MAX_PAUSE_S,
                timedelta(minutes=settings.WEBHOOK_STATUS_GRACE_MINUTES),
                [row.pk for row in rows],
            ],
        )

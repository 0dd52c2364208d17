"""A slice's results, written in ONE statement per flush: the accepted Messages (one multi-row
INSERT), every touched contact (one `UPDATE ... FROM` a record set) and the campaign's counter
deltas, chained as data-modifying CTEs so they commit together or not at all (Postgres runs
every such CTE to completion whether or not the outer statement reads it).

Contacts are written only while the slice's fencing token still holds them; accepted sends are
recorded whatever happened meanwhile, since Meta has them. A flush carries sends Meta accepted,
so it is retried through a lost connection until the database is back.
"""

import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, reset_queries
from django.utils import timezone
from psycopg.errors import DeadlockDetected, SerializationFailure

from campaigns.counters import contact_moves_sql
from campaigns.engine.metrics import statements_counted

logger = logging.getLogger(__name__)

FLUSH_ATTEMPTS = 5
FLUSH_RETRY_PAUSE_S = 0.05

# Rows travel as ONE JSON document read by json_to_recordset: psycopg's client-side escaping of
# text arrays full of JSON payloads cost more CPU than the sends themselves (measured). Contacts
# are reached by `id = ANY(ARRAY(...))`, primary-key lookups whatever the planner knows. The state
# test is written `IS TRUE` so that it does not match the partial index of claimed contacts:
# without statistics the planner took that index as nearly empty, and a bitmap scan of it read
# every contact claimed since the last vacuum (dead entries included) on every flush.
_FLUSH = f"""
WITH u AS (
    SELECT * FROM json_to_recordset(%(contacts)s::json)
        AS u(id bigint, state text, attempts int, lease_until timestamptz,
             not_before timestamptz, payload text, payload_template_id bigint,
             error_code int, error text)
), sent AS (
    INSERT INTO campaigns_message (campaign_id, contact_id, phone_id, template_id, recipient,
        wamid, request_body, status, error_title, sent_at, accepted_status)
    SELECT %(campaign)s, m.contact_id, %(phone)s, m.template_id, m.recipient, m.wamid, m.body,
        'sent', '', %(now)s, m.accepted
    FROM json_to_recordset(%(messages)s::json) AS m(
        contact_id bigint, template_id bigint, recipient text, wamid text, body text, accepted text)
    ON CONFLICT (wamid) DO NOTHING
    RETURNING 1
), touched AS (
    UPDATE campaigns_contact c
    SET state = u.state, attempts = u.attempts, lease_until = u.lease_until,
        not_before = u.not_before,
        claimed_by_id = NULL,
        claim_token = CASE WHEN u.state = 'claimed' THEN c.claim_token END,
        sending = u.state = 'claimed',
        payload = COALESCE(u.payload, c.payload),
        payload_template_id = COALESCE(u.payload_template_id, c.payload_template_id),
        last_error_code = u.error_code, last_error = u.error
    FROM u
    WHERE c.id = u.id AND c.id = ANY(ARRAY(SELECT id FROM u))
        AND (c.state = 'claimed') IS TRUE AND c.claim_token = %(token)s
    RETURNING c.campaign_id, 'claimed'::text AS old_state, c.state AS new_state
)
{contact_moves_sql("touched")}
"""


@dataclass
class _Row:
    id: int
    state: str
    attempts: int
    lease_until: datetime | None = None
    not_before: datetime | None = None
    payload: str | None = None
    payload_template_id: int | None = None
    error_code: int | None = None
    error: str = ""


@dataclass
class Batch:
    campaign_id: int
    sender_id: int
    phone_id: int
    token: int
    messages: list[tuple] = field(default_factory=list)
    rows: list[_Row] = field(default_factory=list)
    statements: int = 0
    writes: list[Future] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def add_sent(
        self, contact, *, template_id: int, body: str, wamid: str, accepted: str = "accepted"
    ) -> None:
        self.messages.append((contact.id, template_id, contact.phone, wamid, body, accepted))
        # The last error stays: "sent after 131042 on another number" is worth knowing.
        self._row(
            contact,
            "sent",
            payload=body,
            payload_template_id=template_id,
            error_code=contact.last_error_code,
            error=contact.last_error,
        )

    def add_failed(self, contact, *, code, reason: str, body=None, template_id=None) -> None:
        self._row(
            contact,
            "failed",
            attempts=contact.attempts + 1,
            error_code=code,
            error=reason,
            payload=body,
            payload_template_id=template_id,
        )

    def add_retry(self, contact, *, delay_s: float, code, reason: str, body=None, template_id=None):
        not_before = timezone.now() + timedelta(seconds=delay_s) if delay_s else None
        self._row(
            contact,
            "pending",
            attempts=contact.attempts + 1,
            not_before=not_before,
            error_code=code,
            error=reason,
            payload=body,
            payload_template_id=template_id,
        )

    def add_awaiting(self, contact, *, reason: str, body: str, template_id: int) -> None:
        # Still "claimed" but by nobody: the reaper returns it only after the grace period.
        grace = timezone.now() + timedelta(seconds=settings.ENGINE_AMBIGUOUS_GRACE_SECONDS)
        self._row(
            contact,
            "claimed",
            attempts=contact.attempts + 1,
            lease_until=grace,
            error=reason,
            payload=body,
            payload_template_id=template_id,
        )

    def add_released(self, contact) -> None:
        self._row(contact, "pending", error_code=contact.last_error_code, error=contact.last_error)

    def _row(self, contact, state: str, **values) -> None:
        values.setdefault("attempts", contact.attempts)
        if contact.payload_saved and values.get("payload") == contact.payload:
            values["payload"] = values["payload_template_id"] = None  # already in the row
        self.rows.append(_Row(contact.id, state, **values))

    def flush(self) -> None:
        """Hands the rows to the process's writer thread, so sending goes on while Postgres
        works; inside a caller's transaction (tests, admin actions) it writes inline."""
        if not self.rows:
            return
        params = self._params()
        self.messages, self.rows = [], []
        self.statements += 1
        if connection.in_atomic_block:
            _write(params)
        else:
            self.writes.append(writer_thread().submit(_write, params))

    def settle(self) -> None:
        """Waits until every flush is in the database; raises what a write raised."""
        writes, self.writes = self.writes, []
        for write in writes:
            write.result()

    def _params(self) -> dict:
        keys = ("contact_id", "template_id", "recipient", "wamid", "body", "accepted")
        return {
            "campaign": self.campaign_id,
            "token": self.token,
            "phone": self.phone_id,
            "now": timezone.now(),
            "messages": _json([dict(zip(keys, m, strict=True)) for m in self.messages]),
            "contacts": _json([vars(row) for row in self.rows]),
        }


_writers: dict[int, ThreadPoolExecutor] = {}


def writer_thread() -> ThreadPoolExecutor:
    # One thread, so a slice's writes land in order; it keeps its own database connection.
    pid = os.getpid()
    if pid not in _writers:
        _writers.clear()
        _writers[pid] = ThreadPoolExecutor(1, thread_name_prefix="flush")
    return _writers[pid]


def _write(params: dict) -> None:
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            with statements_counted(), connection.cursor() as cursor:
                cursor.execute(_FLUSH, params)
            break
        except (OperationalError, InterfaceError) as exc:
            # Rolled back whole, so running it again is safe; giving up would leave contacts
            # Meta accepted unrecorded. A deadlock is retried a few times, a lost connection
            # (PostgreSQL restarting) on a new one until ENGINE_DB_RETRY_SECONDS have passed.
            if connection.in_atomic_block or not _retryable(exc, attempt, started):
                raise
            logger.warning("flush attempt %s failed (%s); trying again", attempt, exc)
            if not isinstance(exc.__cause__, (DeadlockDetected, SerializationFailure)):
                connection.close()
            time.sleep(min(FLUSH_RETRY_PAUSE_S * 2**attempt, 2.0))
    forget_queries()


def _retryable(exc: Exception, attempt: int, started: float) -> bool:
    if isinstance(exc.__cause__, (DeadlockDetected, SerializationFailure)):
        return attempt < FLUSH_ATTEMPTS
    return time.monotonic() - started < settings.ENGINE_DB_RETRY_SECONDS


def forget_queries() -> None:
    # With DEBUG on Django keeps every query (9,000 of them, each carrying a flush's JSON) per
    # thread; no request or task boundary ever clears the writer thread's, so do it here.
    reset_queries()


def _json(rows: list[dict]) -> str:
    # orjson: a flush's document carries every message's payload, and json.dumps' escaping of
    # them was a tenth of the send worker's time. Datetimes come out as RFC 3339, as isoformat().
    try:
        return orjson.dumps(rows).decode()
    except orjson.JSONEncodeError:
        # A lone surrogate (a hostile answer's "\ud800" read by json.loads) is not UTF-8, and
        # the flush must not fail on it: written as "?".
        return orjson.dumps([{k: _utf8(v) for k, v in row.items()} for row in rows]).decode()


def _utf8(value):
    return value.encode("utf-8", "replace").decode() if isinstance(value, str) else value

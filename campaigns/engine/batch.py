"""A slice's results, written in ONE statement per flush: the accepted Messages (one multi-row
INSERT), every touched contact (one `UPDATE ... FROM` a record set) and the campaign's counter
deltas, chained as data-modifying CTEs so they commit together or not at all (Postgres runs
every such CTE to completion whether or not the outer statement reads it).
"""

import json
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, reset_queries
from django.utils import timezone
from psycopg.errors import DeadlockDetected, SerializationFailure

from campaigns.engine.metrics import statements_counted

logger = logging.getLogger(__name__)

FLUSH_ATTEMPTS = 5
FLUSH_RETRY_PAUSE_S = 0.05

# Rows travel as ONE JSON document read by json_to_recordset: psycopg's client-side escaping of
# text arrays full of JSON payloads cost more CPU than the sends themselves (measured).
_FLUSH = """
WITH sent AS (
    INSERT INTO campaigns_message (campaign_id, contact_id, phone_id, template_id, recipient,
        wamid, request_body, status, error_title, sent_at)
    SELECT %(campaign)s, m.contact_id, %(phone)s, m.template_id, m.recipient, m.wamid, m.body,
        'sent', '', %(now)s
    FROM json_to_recordset(%(messages)s::json)
        AS m(contact_id bigint, template_id bigint, recipient text, wamid text, body text)
    ON CONFLICT (wamid) DO NOTHING
    RETURNING 1
), touched AS (
    UPDATE campaigns_contact c
    SET state = u.state, attempts = u.attempts, lease_until = u.lease_until,
        not_before = u.not_before,
        claimed_by_id = NULL,
        payload = COALESCE(u.payload, c.payload),
        payload_template_id = COALESCE(u.payload_template_id, c.payload_template_id),
        last_error_code = u.error_code, last_error = u.error
    FROM json_to_recordset(%(contacts)s::json)
        AS u(id bigint, state text, attempts int, lease_until timestamptz,
             not_before timestamptz, payload text, payload_template_id bigint,
             error_code int, error text)
    WHERE c.id = u.id AND c.state = 'claimed' AND c.claimed_by_id = %(sender)s
    RETURNING 1
)
UPDATE campaigns_campaign
SET sent_count = sent_count + %(sent)s, failed_count = failed_count + %(failed)s
WHERE id = %(campaign)s AND (%(sent)s > 0 OR %(failed)s > 0)
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
    messages: list[tuple] = field(default_factory=list)
    rows: list[_Row] = field(default_factory=list)
    sent: int = 0
    failed: int = 0
    statements: int = 0
    writes: list[Future] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def add_sent(self, contact, *, template_id: int, body: str, wamid: str) -> None:
        self.messages.append((contact.id, template_id, contact.phone, wamid, body))
        # The last error stays: "sent after 131042 on another number" is worth knowing.
        self._row(
            contact,
            "sent",
            payload=body,
            payload_template_id=template_id,
            error_code=contact.last_error_code,
            error=contact.last_error,
        )
        self.sent += 1

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
        self.failed += 1

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
        self.messages, self.rows, self.sent, self.failed = [], [], 0, 0
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
        keys = ("contact_id", "template_id", "recipient", "wamid", "body")
        return {
            "campaign": self.campaign_id,
            "sender": self.sender_id,
            "phone": self.phone_id,
            "now": timezone.now(),
            "messages": _json([dict(zip(keys, m, strict=True)) for m in self.messages]),
            "contacts": _json([vars(row) for row in self.rows]),
            "sent": self.sent,
            "failed": self.failed,
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
    for attempt in range(1, FLUSH_ATTEMPTS + 1):
        try:
            with statements_counted(), connection.cursor() as cursor:
                cursor.execute(_FLUSH, params)
            break
        except OperationalError as exc:
            # A deadlock or serialization failure rolled the statement back whole, so running
            # it again is safe. Giving up instead would leave contacts that Meta accepted
            # claimed, and the lease reaper would send them a second time.
            retryable = isinstance(exc.__cause__, (DeadlockDetected, SerializationFailure))
            if not retryable or connection.in_atomic_block or attempt == FLUSH_ATTEMPTS:
                raise
            logger.warning("flush attempt %s failed (%s); trying again", attempt, exc.__cause__)
            time.sleep(FLUSH_RETRY_PAUSE_S * attempt)
    forget_queries()


def forget_queries() -> None:
    # With DEBUG on Django keeps every query (9,000 of them, each carrying a flush's JSON) per
    # thread; no request or task boundary ever clears the writer thread's, so do it here.
    reset_queries()


def _json(rows: list[dict]) -> str:
    return json.dumps(rows, default=_iso, separators=(",", ":"), ensure_ascii=False)


def _iso(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def payloads_store(*, contacts) -> None:
    """Writes freshly built payloads of claimed contacts in one statement."""
    if not contacts:
        return
    rows = [{"id": c.id, "payload": c.payload, "t": c.payload_template_id} for c in contacts]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_contact c SET payload = u.payload, payload_template_id = u.t "
            "FROM json_to_recordset(%s::json) AS u(id bigint, payload text, t bigint) "
            "WHERE c.id = u.id",
            [_json(rows)],
        )
    for contact in contacts:
        contact.payload_saved = True

"""Delivery statuses reported by Meta's webhooks, applied to campaign messages set-based.

A status only ever moves a message forward: sent < delivered < read, and `failed` replaces only
`sent` (Meta reports failed for undelivered messages) and is final. Duplicates and out-of-order
deliveries therefore change nothing twice. "Read implies delivered": a message that jumps from
sent to read counts once in `delivered_count` and once in `read_count`, and gets `delivered_at`.
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from django.db import connection, transaction

from campaigns.counters import contact_moves_sql, message_moves_sql

logger = logging.getLogger(__name__)

# Which status wins when two meet; failed beats only sent, and nothing moves a failed message.
PRECEDENCE = {"sent": 1, "failed": 2, "delivered": 3, "read": 4}
_CALLBACK_CONTACT = re.compile(r"^c:(\d{1,18})$")


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    wamid: str
    status: str
    timestamp: datetime
    callback: str = ""
    recipient: str = ""
    phone_number_id: str = ""
    error_code: int | None = None
    error_title: str = ""
    error_details: str = ""
    # The status's `pricing` block: whether Meta bills the message, and under which category.
    billable: bool | None = None
    pricing_category: str = ""

    @property
    def contact_id(self) -> int | None:
        """Our contact id from `biz_opaque_callback_data` ("c:<id>"), set by the engine."""
        found = _CALLBACK_CONTACT.match(self.callback)
        return int(found.group(1)) if found else None


@dataclass
class StatusApplyResult:
    matched: int = 0
    moved: int = 0
    failed: list[tuple[int, StatusUpdate]] = field(default_factory=list)
    unmatched: list[StatusUpdate] = field(default_factory=list)


@dataclass
class _Merged:
    """Every update of one message in a batch folded into the one row the UPDATE needs."""

    best: StatusUpdate
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    priced: StatusUpdate | None = None
    updates: list[StatusUpdate] = field(default_factory=list)

    @property
    def first_sent(self) -> StatusUpdate:
        """The earliest update: its time is the best guess of when the message went out."""
        return min(self.updates, key=lambda u: u.timestamp)

    def add(self, update: StatusUpdate) -> None:
        self.updates.append(update)
        if update.status == "delivered":
            self.delivered_at = _earliest(self.delivered_at, update.timestamp)
        elif update.status == "read":
            self.read_at = _earliest(self.read_at, update.timestamp)
        if update.billable is not None and (self.priced is None or update.billable):
            self.priced = update
        if PRECEDENCE[update.status] > PRECEDENCE[self.best.status]:
            self.best = update


def statuses_apply(*, updates: list[StatusUpdate]) -> StatusApplyResult:
    """Moves campaign messages forward, adjusts campaign counters by the same deltas, and hands
    newly failed messages to the engine's failure classification, all in one transaction.

    Matches by wamid. A status for a send whose answer never came (an ambiguous send: the
    contact waits "awaiting", claimed by no sender) names the contact in
    `biz_opaque_callback_data` and reconciles it: the Message is written from the payload kept on
    the contact. Updates matching no message are returned in `unmatched` for the caller to keep
    and retry (the engine writes its messages in batches, so a status may come first).
    """
    known = [u for u in updates if u.wamid and u.status in PRECEDENCE]
    result = StatusApplyResult()
    if not known:
        return result
    with transaction.atomic():
        by_wamid = _merge(known, key=lambda u: u.wamid)
        found = _apply(by_wamid, result=result)
        leftover = {key: m for key, m in by_wamid.items() if key not in found}
        if _awaiting_reconcile(leftover):
            found = _apply(leftover, result=result)
            leftover = {key: m for key, m in leftover.items() if key not in found}
        result.unmatched = [u for m in leftover.values() for u in m.updates]
        _report_failures(result)
    return result


def _merge(updates: list[StatusUpdate], *, key) -> dict:
    merged: dict = {}
    for update in updates:
        row = merged.get(key(update))
        if row is None:
            row = merged[key(update)] = _Merged(best=update)
        row.add(update)
    return merged


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def status_precedence_sql(column: str) -> str:
    """PRECEDENCE as a SQL expression over `column`, for forward-only UPDATEs."""
    whens = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in PRECEDENCE.items())
    return f"CASE {column} {whens} ELSE 0 END"


# One statement per batch: lock the matched messages in wamid order (no deadlock between two
# processors), move those that go forward, add the counter deltas computed from the old and new
# status of exactly the rows moved, and report every match with what became of it.
# The shape leaves the planner no quadratic choice whatever it knows of the tables: each status
# finds its message through the wamid index (a LATERAL lookup, not a join the planner may turn
# into a scan of the whole table, as it did for a table without statistics), the UPDATE joins
# the rows just locked by id alone (with `id = ANY(batch)` beside it, a loop of index scans
# sorted the batch's array again for every row), and the report is the moved rows plus the
# others through a hashed NOT IN, not a join of two batch-sized sets.
# Pricing rides on the forward moves only. Meta bills a template when it is delivered and puts
# the block on the delivered and read statuses too; the "sent" status, which moves nothing the
# engine has not written already, is not worth a row version of its own for it.
# failed_count is left to the failure classification: it counts contacts that end failed, and a
# template-scope failure sends the contact again with the next template instead.
_APPLY_SQL = f"""
WITH d AS (
    SELECT * FROM json_to_recordset(%(rows)s::json) AS d(
        key text, status text, ts timestamptz, delivered_ts timestamptz, read_ts timestamptz,
        code int, title text, billable boolean, category text)
),
locked AS MATERIALIZED (
    SELECT m.id, m.old_status, d.*
    FROM (SELECT * FROM d ORDER BY key) d
    CROSS JOIN LATERAL (
        SELECT m.id, m.status AS old_status
        FROM campaigns_message m WHERE m.wamid = d.key
        FOR UPDATE
    ) m
),
moved AS (
    UPDATE campaigns_message m SET
        status = l.status,
        delivered_at = CASE WHEN l.status IN ('delivered', 'read')
            THEN COALESCE(m.delivered_at, l.delivered_ts, l.read_ts, l.ts) ELSE m.delivered_at END,
        read_at = CASE WHEN l.status = 'read'
            THEN COALESCE(m.read_at, l.read_ts, l.ts) ELSE m.read_at END,
        failed_at = CASE WHEN l.status = 'failed' THEN l.ts ELSE m.failed_at END,
        error_code = CASE WHEN l.status = 'failed' THEN l.code ELSE m.error_code END,
        error_title = CASE WHEN l.status = 'failed' THEN l.title ELSE m.error_title END,
        billable = COALESCE(l.billable, m.billable),
        pricing_category = COALESCE(NULLIF(l.category, ''), m.pricing_category)
    FROM locked l
    WHERE m.id = l.id AND m.status <> 'failed'
        AND {status_precedence_sql("l.status")} > {status_precedence_sql("m.status")}
    RETURNING m.id, m.campaign_id, l.old_status, m.status AS new_status, l.key
),
bumped AS ({message_moves_sql("moved")})
SELECT key, id, new_status FROM moved
UNION ALL
SELECT key, NULL, NULL FROM locked WHERE id NOT IN (SELECT id FROM moved)
"""


def _row(wamid: str, merged: _Merged) -> dict:
    best = merged.best
    return {
        "key": wamid,
        "status": best.status,
        # orjson writes datetimes as RFC 3339, which Postgres reads as timestamptz.
        "ts": best.timestamp,
        "delivered_ts": merged.delivered_at,
        "read_ts": merged.read_at,
        "code": best.error_code,
        "title": best.error_title[:1000],
        "billable": merged.priced.billable if merged.priced else None,
        "category": merged.priced.pricing_category if merged.priced else "",
    }


def _apply(merged: dict, *, result: StatusApplyResult) -> set:
    """Runs the batch UPDATE; returns the wamids that matched a message."""
    if not merged:
        return set()
    # One JSON document rather than seven arrays: psycopg quotes array items one by one in
    # Python, which cost more than the UPDATE itself for a few thousand statuses.
    rows = orjson.dumps([_row(wamid, m) for wamid, m in merged.items()]).decode()
    params = {"rows": rows}
    with connection.cursor() as cursor:
        cursor.execute(_APPLY_SQL, params)
        found = cursor.fetchall()
    for wamid, message_id, new_status in found:
        if message_id is None:
            continue
        result.moved += 1
        if new_status == "failed":
            result.failed.append((message_id, merged[wamid].best))
    result.matched += len(found)
    return {wamid for wamid, _, _ in found}


# The send went out (Meta reports on it) though its answer never reached us (a timeout, a worker
# killed mid-send, a flush not written yet): write the Message from the exact bytes kept on the
# contact and count it sent, as the engine would have. Only armed contacts qualify (a contact is
# armed, with its payload stored, before any request for it leaves), and only once no live slice
# holds them: a live slice writes its own results, and racing its flush would deadlock.
_RECONCILE_SQL = f"""
WITH d AS (
    SELECT * FROM unnest(%(contacts)s::bigint[], %(wamids)s::text[], %(phones)s::text[],
        %(ts)s::timestamptz[]) AS d(contact_id, wamid, phone_number_id, ts)
),
reconciled AS (
    UPDATE campaigns_contact c SET state = 'sent', lease_until = NULL, last_error = '',
        claimed_by_id = NULL, claim_token = NULL, sending = false
    FROM d JOIN templates_app_phonenumber p ON p.phone_number_id = d.phone_number_id
    WHERE c.id = d.contact_id AND c.state = 'claimed' AND c.sending AND c.claimed_by_id IS NULL
        AND c.payload <> '' AND c.payload_template_id IS NOT NULL
    RETURNING c.id, c.campaign_id, c.phone, c.payload, c.payload_template_id, p.id AS phone_id,
        d.wamid, d.ts, 'claimed'::text AS old_state, 'sent'::text AS new_state
),
written AS (
    INSERT INTO campaigns_message (campaign_id, contact_id, phone_id, template_id, recipient,
        wamid, request_body, status, error_title, sent_at)
    SELECT campaign_id, id, phone_id, payload_template_id, phone, wamid, payload, 'sent', '', ts
    FROM reconciled
    ON CONFLICT (wamid) DO NOTHING
    RETURNING campaign_id
),
bumped AS ({contact_moves_sql("reconciled")})
SELECT count(*) FROM written
"""


def _awaiting_reconcile(leftover: dict) -> int:
    """Writes the Messages of ambiguous sends that these statuses confirm; returns how many."""
    rows = [m.first_sent for m in leftover.values() if m.first_sent.contact_id]
    if not rows:
        return 0
    params = {
        "contacts": [u.contact_id for u in rows],
        "wamids": [u.wamid for u in rows],
        "phones": [u.phone_number_id for u in rows],
        "ts": [u.timestamp for u in rows],
    }
    with connection.cursor() as cursor:
        cursor.execute(_RECONCILE_SQL, params)
        return cursor.fetchone()[0]


def _report_failures(result: StatusApplyResult) -> None:
    """Webhook-reported failures feed the same classification as the API's errors."""
    if not result.failed:
        return
    from campaigns.services.failures import FailedStatus, failed_statuses_apply

    failed_statuses_apply(
        failures=[
            FailedStatus(
                message_id=message_id,
                code=update.error_code,
                title=update.error_title,
                details=update.error_details,
            )
            for message_id, update in result.failed
        ]
    )

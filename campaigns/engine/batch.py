"""A slice's results, written in ONE statement per flush: the accepted Messages (multi-row
INSERT from arrays), every touched contact (`UPDATE ... FROM unnest`) and the campaign's counter
deltas, chained as data-modifying CTEs so they commit together or not at all (Postgres runs
every such CTE to completion whether or not the outer statement reads it).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

_FLUSH = """
WITH sent AS (
    INSERT INTO campaigns_message (campaign_id, contact_id, phone_id, template_id, recipient,
        wamid, request_body, status, error_title, sent_at)
    SELECT %(campaign)s, m.contact_id, %(phone)s, m.template_id, m.recipient, m.wamid, m.body,
        'sent', '', %(now)s
    FROM unnest(%(m_contact)s::bigint[], %(m_template)s::bigint[], %(m_recipient)s::text[],
        %(m_wamid)s::text[], %(m_body)s::text[])
        AS m(contact_id, template_id, recipient, wamid, body)
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
    FROM unnest(%(c_id)s::bigint[], %(c_state)s::text[], %(c_attempts)s::int[],
        %(c_lease)s::timestamptz[], %(c_not_before)s::timestamptz[], %(c_payload)s::text[],
        %(c_template)s::bigint[], %(c_code)s::int[], %(c_error)s::text[])
        AS u(id, state, attempts, lease_until, not_before, payload, payload_template_id,
             error_code, error)
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
        self.rows.append(_Row(contact.id, state, **values))

    def flush(self) -> None:
        if not self.rows:
            return
        with connection.cursor() as cursor:
            cursor.execute(_FLUSH, self._params())
        self.statements += 1
        self.messages, self.rows, self.sent, self.failed = [], [], 0, 0

    def _params(self) -> dict:
        columns = list(zip(*self.messages, strict=True)) if self.messages else [()] * 5
        rows = self.rows
        return {
            "campaign": self.campaign_id,
            "sender": self.sender_id,
            "phone": self.phone_id,
            "now": timezone.now(),
            "m_contact": list(columns[0]),
            "m_template": list(columns[1]),
            "m_recipient": list(columns[2]),
            "m_wamid": list(columns[3]),
            "m_body": list(columns[4]),
            "c_id": [r.id for r in rows],
            "c_state": [r.state for r in rows],
            "c_attempts": [r.attempts for r in rows],
            "c_lease": [r.lease_until for r in rows],
            "c_not_before": [r.not_before for r in rows],
            "c_payload": [r.payload for r in rows],
            "c_template": [r.payload_template_id for r in rows],
            "c_code": [r.error_code for r in rows],
            "c_error": [r.error or "" for r in rows],
            "sent": self.sent,
            "failed": self.failed,
        }


def payloads_store(*, contacts) -> None:
    """Writes freshly built payloads of claimed contacts in one statement."""
    if not contacts:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_contact c SET payload = u.payload, payload_template_id = u.template "
            "FROM unnest(%s::bigint[], %s::text[], %s::bigint[]) AS u(id, payload, template) "
            "WHERE c.id = u.id",
            [
                [c.id for c in contacts],
                [c.payload for c in contacts],
                [c.payload_template_id for c in contacts],
            ],
        )

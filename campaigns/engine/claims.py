"""Contacts are the queue: senders claim batches with SKIP LOCKED and a lease; a reaper returns
the claims of dead workers.

A claim whose lease expires while its sender held it may have been sent already (the worker died
between Meta's answer and our write), so it is not resent at once: it waits "awaiting" (claimed, no
sender) for the status webhook that carries "c:<contact id>" to reconcile it, and only returns to
the pool after the grace period.
"""

import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

_CLAIM = """
    UPDATE campaigns_contact c
    SET state = 'claimed', claimed_by_id = %(sender)s, lease_until = %(lease)s
    WHERE c.id IN (
        SELECT id FROM campaigns_contact
        WHERE campaign_id = %(campaign)s AND state = 'pending' AND id > %(after)s
          AND (not_before IS NULL OR not_before <= %(now)s)
        ORDER BY id
        FOR UPDATE SKIP LOCKED
        LIMIT %(limit)s
    )
    RETURNING c.id, c.phone, c.variables, c.attempts, c.payload, c.payload_template_id,
        c.last_error_code, c.last_error
"""


@dataclass
class Claimed:
    id: int
    phone: str
    variables: dict
    attempts: int
    payload: str
    payload_template_id: int | None
    last_error_code: int | None
    last_error: str
    payload_saved: bool = False  # the row holds `payload` as it is now

    def __post_init__(self):
        self.payload_saved = bool(self.payload)


def contacts_claim(
    *, campaign_id: int, sender_id: int, limit: int, after: int = 0
) -> list[Claimed]:
    """Claims up to `limit` pending contacts with ids above `after`, oldest first.

    A slice passes the last id it claimed: the queue index keeps entries of contacts already
    sent until vacuum, and starting past them spares every claim a walk over the whole front."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.ENGINE_LEASE_SECONDS)
    params = {"sender": sender_id, "lease": lease, "campaign": campaign_id, "now": now}
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, {**params, "limit": limit, "after": after})
        rows = cursor.fetchall()
    rows.sort(key=lambda row: row[0])
    return [Claimed(*row[:2], _json(row[2]), *row[3:]) for row in rows]


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def claims_release(*, sender_id: int) -> int:
    """Returns every contact this sender holds to the pool (its slice is ending)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_contact SET state = 'pending', claimed_by_id = NULL, "
            "lease_until = NULL WHERE claimed_by_id = %s AND state = 'claimed'",
            [sender_id],
        )
        return cursor.rowcount


def claims_reap() -> tuple[int, int]:
    """Expired claims of a live sender become "awaiting"; expired "awaiting" ones go back to
    pending. Returns (awaiting, returned)."""
    now = timezone.now()
    grace = now + timedelta(seconds=settings.ENGINE_AMBIGUOUS_GRACE_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_contact SET state = 'pending', lease_until = NULL, "
            "attempts = attempts + 1 "
            "WHERE state = 'claimed' AND lease_until < %s AND claimed_by_id IS NULL",
            [now],
        )
        returned = cursor.rowcount
        cursor.execute(
            "UPDATE campaigns_contact SET claimed_by_id = NULL, lease_until = %s, "
            "last_error = 'Waiting for Meta to confirm whether this message went out.' "
            "WHERE state = 'claimed' AND lease_until < %s AND claimed_by_id IS NOT NULL",
            [grace, now],
        )
        awaiting = cursor.rowcount
    return awaiting, returned

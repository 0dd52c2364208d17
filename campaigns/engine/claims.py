"""Contacts are the queue: slices claim batches with SKIP LOCKED, a lease and a fencing token.

Every claim carries the token of the slice that took it, and every later write of that slice
names the token, so a slice whose lease was taken away (a stalled or partitioned worker) can
neither send nor write those contacts any more. Just before a group of contacts goes to Meta the
slice *arms* it: one statement that checks the token, checks the opt-out list and marks the
contacts `sending`. That splits a dead worker's claims in two:

- never armed: certainly never sent; back to the pool as soon as the lease ends;
- armed: maybe at Meta. They wait "awaiting" (claimed by no sender) for the status webhook that
  names them ("c:<contact id>") and reconciles them; only past the grace period are they sent
  again, counting an attempt.
"""

import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.counters import contact_moves_sql, contacts_move

_CLAIM = """
    UPDATE campaigns_contact c
    SET state = 'claimed', claimed_by_id = %(sender)s, claim_token = %(token)s,
        sending = false, lease_until = %(lease)s
    WHERE c.id IN (
        SELECT id FROM campaigns_contact
        WHERE campaign_id = %(campaign)s AND state = 'pending' AND id > %(after)s
          AND (not_before IS NULL OR not_before <= %(now)s)
        ORDER BY id
        FOR UPDATE SKIP LOCKED
        LIMIT %(limit)s
    )
    RETURNING c.id, c.phone, c.variables, c.attempts, c.payload, c.payload_template_id,
        c.last_error_code, c.last_error, c.ab_arm_id
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
    ab_arm_id: int | None = None  # its A/B arm; None outside a test or outside its share
    payload_saved: bool = False  # the row holds `payload` as it is now
    links: list = field(default_factory=list)  # tracked links in `payload`, stored with it

    def __post_init__(self):
        self.payload_saved = bool(self.payload)


def claim_token() -> int:
    """A slice's fencing token: random, so no two slices anywhere share one."""
    return secrets.randbits(62) + 1


def contacts_claim(
    *, campaign_id: int, sender_id: int, token: int, limit: int, after: int = 0
) -> list[Claimed]:
    """Claims up to `limit` pending contacts with ids above `after`, oldest first.

    A slice passes the last id it claimed: the queue index keeps entries of contacts already
    sent until vacuum, and starting past them spares every claim a walk over the whole front."""
    now = timezone.now()
    params = {
        "sender": sender_id,
        "token": token,
        "lease": lease_end(),
        "campaign": campaign_id,
        "now": now,
        "limit": limit,
        "after": after,
    }
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, params)
        rows = cursor.fetchall()
    rows.sort(key=lambda row: row[0])
    return [Claimed(*row[:2], _json(row[2]), *row[3:]) for row in rows]


def lease_end():
    return timezone.now() + timedelta(seconds=settings.ENGINE_LEASE_SECONDS)


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


# The fence before a send: only contacts this token still holds are armed, and opted-out ones
# end skipped here, whatever path brought them (retry, follow-up, an opt-out added mid-send).
# Each statement reaches contacts by primary key whatever the planner knows. `held` is one
# `id = ANY(...)` lookup: joined to the batch, a table without statistics had every claimed
# contact hashed or compared with every row of the batch (480 ms for 500 rows). The updates
# drive from `held` and reach each contact by `c.id = h.id` alone: an `= ANY(...)` beside that
# join is re-sorted for every row of the loop. The state test is written `IS TRUE` so that the
# partial index of claimed contacts, which keeps the dead entries of every contact claimed
# since the last vacuum, is not read instead (see batch.py).
_ARM = f"""
WITH u AS (
    SELECT * FROM json_to_recordset(%(rows)s::json) AS u(id bigint, payload text, t bigint)
), held AS MATERIALIZED (
    SELECT c.id, c.phone FROM campaigns_contact c
    WHERE c.id = ANY(ARRAY(SELECT id FROM u))
        AND c.claim_token = %(token)s AND (c.state = 'claimed') IS TRUE
        AND c.claimed_by_id IS NOT NULL
    ORDER BY c.id FOR UPDATE OF c
), stopped AS MATERIALIZED (
    SELECT h.id FROM held h JOIN campaigns_optout o ON o.phone = h.phone AND o.active
), armed AS (
    UPDATE campaigns_contact c SET sending = true, lease_until = %(lease)s,
        payload = COALESCE(u.payload, c.payload),
        payload_template_id = COALESCE(u.t, c.payload_template_id)
    FROM held h JOIN u ON u.id = h.id
    WHERE c.id = h.id AND h.id NOT IN (SELECT id FROM stopped)
    RETURNING c.id
), skipped AS (
    UPDATE campaigns_contact c SET state = 'skipped', skip_reason = 'opted_out',
        claimed_by_id = NULL, claim_token = NULL, lease_until = NULL, sending = false
    FROM stopped s WHERE c.id = s.id
    RETURNING c.campaign_id, 'claimed'::text AS old_state, 'skipped'::text AS new_state
), bumped AS ({contact_moves_sql("skipped")})
SELECT id FROM armed
"""


def contacts_arm(*, token: int, rows: list[dict]) -> set[int]:
    """Marks the contacts in `rows` ({"id", "payload", "t"}; payload and t null when the row
    holds them already) as going to Meta now; returns the ids it armed, which are the only ones
    that may be sent."""
    if not rows:
        return set()
    # orjson, as in batch.py: the document carries every payload of the group.
    params = {"rows": orjson.dumps(rows).decode(), "token": token}
    with connection.cursor() as cursor:
        cursor.execute(_ARM, {**params, "lease": lease_end()})
        return {pk for (pk,) in cursor.fetchall()}


def claims_renew(*, sender_id: int, token: int) -> int:
    """Extends the lease of every claim this slice holds; returns how many it holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_contact SET lease_until = %s "
            "WHERE claimed_by_id = %s AND claim_token = %s AND state = 'claimed'",
            [lease_end(), sender_id, token],
        )
        return cursor.rowcount


def claims_release(*, sender_id: int, token: int | None = None) -> int:
    """Returns this sender's claims that were never armed to the pool (those of one slice when
    `token` is given). Armed ones may be at Meta: the reaper and the webhook settle them."""
    sql = (
        "UPDATE campaigns_contact SET state = 'pending', claimed_by_id = NULL, claim_token = NULL,"
        " lease_until = NULL WHERE claimed_by_id = %s AND state = 'claimed' AND NOT sending"
    )
    params = [sender_id]
    if token is not None:
        sql += " AND claim_token = %s"
        params.append(token)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


AWAIT_REASON = "Waiting for Meta to confirm whether this message went out."
NEVER_CONFIRMED = (
    "Meta never confirmed whether this message went out, after {n} tries; it was not sent again."
)


def claims_reap() -> tuple[int, int]:
    """Ends expired leases: unarmed claims go back to the pool at once, armed ones wait for their
    webhook, and those that waited the whole grace period are sent again (or fail once they have
    used every attempt). Returns (awaiting, returned)."""
    now = timezone.now()
    grace = now + timedelta(seconds=settings.ENGINE_AMBIGUOUS_GRACE_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_contact SET state = 'pending', claimed_by_id = NULL, "
            "claim_token = NULL, lease_until = NULL "
            "WHERE state = 'claimed' AND lease_until < %s AND NOT sending",
            [now],
        )
        returned = cursor.rowcount
        cursor.execute(
            "UPDATE campaigns_contact SET claimed_by_id = NULL, lease_until = %s, last_error = %s "
            "WHERE state = 'claimed' AND lease_until < %s AND sending "
            "AND claimed_by_id IS NOT NULL",
            [grace, AWAIT_REASON, now],
        )
        awaiting = cursor.rowcount
    returned += _awaiting_expire(now)
    return awaiting, returned


def _awaiting_expire(now) -> int:
    expired = (
        "c.state = 'claimed' AND c.sending AND c.claimed_by_id IS NULL AND c.lease_until < %(now)s"
    )
    cap = settings.ENGINE_MAX_ATTEMPTS
    contacts_move(
        where=f"{expired} AND c.attempts + 1 >= %(cap)s",
        set_=(
            "state = 'failed', claim_token = NULL, sending = false, lease_until = NULL, "
            "attempts = c.attempts + 1, last_error_code = NULL, last_error = %(reason)s"
        ),
        params={"now": now, "cap": cap, "reason": NEVER_CONFIRMED.format(n=cap)},
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_contact c SET state = 'pending', claim_token = NULL, "
            "sending = false, lease_until = NULL, attempts = c.attempts + 1 "
            f"WHERE {expired}",
            {"now": now},
        )
        return cursor.rowcount

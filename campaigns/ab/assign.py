"""Which contacts are in the test share, and which arm each gets: a pure function of the
campaign id and the contact's phone, so retries, requeues and restarted workers agree, and the
same sums run in Python (tests, the review step) and in one SQL statement at launch."""

import hashlib
from datetime import UTC, datetime

from django.db import connection

BUCKETS = 10_000  # the test share is compared in hundredths of a percent
# Contacts outside the test share wait with this `not_before` (no claim takes them) until
# the winner is chosen; a real date, since Python cannot read Postgres's 'infinity'.
HELD_UNTIL = datetime(9999, 1, 1, tzinfo=UTC)


def contact_hash(*, campaign_id: int, phone: str) -> int:
    """48 bits of md5("<campaign>:<phone>"): the same number Postgres computes below."""
    return int(hashlib.md5(f"{campaign_id}:{phone}".encode()).hexdigest()[:12], 16)


def arm_position(*, campaign_id: int, phone: str, share: int, arms: int) -> int | None:
    """The arm (0-based position) of this contact, or None when it waits for the winner."""
    value = contact_hash(campaign_id=campaign_id, phone=phone)
    if value % BUCKETS >= share * BUCKETS // 100:
        return None
    return (value // BUCKETS) % arms


_HASH_SQL = "('x' || lpad(substr(md5(%(campaign)s::text || ':' || c.phone), 1, 12), 16, '0'))"
_ASSIGN = f"""
WITH h AS (
    SELECT c.id, {_HASH_SQL}::bit(64)::bigint AS v
    FROM campaigns_contact c WHERE c.campaign_id = %(campaign)s AND c.state = 'pending'
), a AS (
    SELECT h.id, CASE WHEN h.v %% {BUCKETS} < %(cut)s
        THEN (%(arms)s::bigint[])[(h.v / {BUCKETS}) %% %(n)s + 1] END AS arm
    FROM h
)
UPDATE campaigns_contact c
SET ab_arm_id = a.arm, not_before = CASE WHEN a.arm IS NULL THEN %(held)s ELSE c.not_before END
FROM a WHERE c.id = a.id
"""


def contacts_assign(*, campaign_id: int, share: int, arm_ids: list[int]) -> int:
    """Gives every pending contact its arm, or holds it for the winner: one statement."""
    params = {
        "campaign": campaign_id,
        "cut": share * BUCKETS // 100,
        "arms": arm_ids,
        "n": len(arm_ids),
        "held": HELD_UNTIL,
    }
    with connection.cursor() as cursor:
        cursor.execute(_ASSIGN, params)
        return cursor.rowcount


def contacts_release_to_winner(*, campaign_id: int) -> int:
    """The held contacts become claimable; the engine sends them the winner's message."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_contact SET not_before = NULL WHERE campaign_id = %s "
            "AND state = 'pending' AND ab_arm_id IS NULL AND not_before = %s",
            [campaign_id, HELD_UNTIL],
        )
        return cursor.rowcount

"""The opt-out list. Stops and resumes are ordered by when the person made them (Meta's
timestamp), not by when their webhooks arrive: an older "resume" never undoes a newer "stop".

The list is enforced when a contact is armed for sending (engine/claims.py), on every path; what
is recorded here also skips the person's pending contacts at once.
"""

from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from campaigns.counters import contacts_move

_STOP_SQL = """
INSERT INTO campaigns_optout (phone, reason, source, active, changed_at, created_at)
VALUES (%(phone)s, %(reason)s, %(source)s, true, %(at)s, now())
ON CONFLICT (phone) DO UPDATE SET active = true, reason = EXCLUDED.reason,
    source = EXCLUDED.source, changed_at = EXCLUDED.changed_at
WHERE NOT campaigns_optout.active AND campaigns_optout.changed_at <= EXCLUDED.changed_at
RETURNING id
"""
_RESUME_SQL = """
INSERT INTO campaigns_optout (phone, reason, source, active, changed_at, created_at)
VALUES (%(phone)s, 'user_preferences', %(source)s, false, %(at)s, now())
ON CONFLICT (phone) DO UPDATE SET active = false, changed_at = EXCLUDED.changed_at,
    source = EXCLUDED.source
WHERE campaigns_optout.changed_at < EXCLUDED.changed_at
RETURNING id
"""


def optout_record(*, phone: str, reason: str, source: str = "", at: datetime | None = None) -> bool:
    """Opts `phone` (E.164) out as of `at` (now when not given) unless a newer resume exists,
    and skips its contacts not sent yet. Returns True when the number was not opted out."""
    params = {"phone": phone, "reason": reason, "source": source[:255], "at": at or timezone.now()}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_STOP_SQL, params)
        changed = cursor.fetchone() is not None
        if changed:
            contacts_move(
                where="c.phone = %(phone)s AND c.state = 'pending'",
                set_="state = 'skipped', skip_reason = 'opted_out'",
                params={"phone": phone},
            )
    return changed


def optout_resume(*, phone: str, at: datetime, source: str = "") -> bool:
    """The person asked for marketing again at `at`: lifts an opt-out made before then.
    Returns True when the number was opted out and no longer is."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT active FROM campaigns_optout WHERE phone = %s", [phone])
        before = cursor.fetchone()
        cursor.execute(_RESUME_SQL, {"phone": phone, "at": at, "source": source[:255]})
        changed = cursor.fetchone() is not None
    return changed and before is not None and before[0]


def optout_remove(*, phone: str) -> bool:
    """Staff removed the opt-out by hand: it is gone, whatever its time."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_optout SET active = false, changed_at = now() "
            "WHERE phone = %s AND active",
            [phone],
        )
        return cursor.rowcount > 0

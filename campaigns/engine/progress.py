"""Whether a campaign is done, and when its next deferred contact becomes due."""

from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.services.timeline import event_record

_COMPLETE = """
    UPDATE campaigns_campaign SET status = 'completed', completed_at = %(now)s, updated_at = %(now)s
    WHERE id = %(campaign)s AND status = 'running' AND NOT EXISTS (
        SELECT 1 FROM campaigns_contact
        WHERE campaign_id = %(campaign)s AND state IN ('pending', 'claimed')
    )
"""


def campaign_complete_if_done(*, campaign_id: int) -> bool:
    """Completes a running campaign with nothing pending or claimed; True if it did."""
    with connection.cursor() as cursor:
        cursor.execute(_COMPLETE, {"now": timezone.now(), "campaign": campaign_id})
        done = cursor.rowcount == 1
    if done:
        event_record(
            campaign_id=campaign_id, kind="completed", text="Completed: every contact was tried."
        )
    return done


def next_wake_s(*, campaign_id: int) -> float:
    """Seconds until a deferred contact (backoff) is due, within one slice; others' claims and
    sends awaiting a webhook are polled once per slice."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(not_before) FROM campaigns_contact "
            "WHERE campaign_id = %s AND state = 'pending'",
            [campaign_id],
        )
        (due,) = cursor.fetchone()
    longest = settings.ENGINE_SLICE_SECONDS
    if due is None:
        return longest
    return min(max((due - timezone.now()).total_seconds(), 0.2), longest)

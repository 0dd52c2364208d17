"""The beat's watch over campaigns: start scheduled ones on time, keep running ones moving, and
queue again an import whose task was lost."""

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.engine.dispatch import campaign_kick
from campaigns.models import Campaign

_LOCK_CLASS = 4004  # campaigns.importing.load's advisory lock: held while an import runs
_IMPORTS_ADRIFT_SQL = """
    SELECT c.id FROM campaigns_campaign c
    WHERE c.status = 'importing' AND c.updated_at < %s AND NOT EXISTS (
        SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = %s
          AND l.objid = c.id AND l.granted)
    ORDER BY c.id
"""


def campaigns_start_due() -> list[int]:
    """Moves due scheduled campaigns to running, then makes sure every running campaign has a
    slice queued per active sender (a worker killed mid-slice leaves none). Returns started ids."""
    from campaigns.services.senders import senders_rebind
    from campaigns.services.timeline import event_record

    now = timezone.now()
    started = []
    due = Campaign.objects.filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now)
    for campaign_id in due.order_by("id").values_list("id", flat=True):
        with transaction.atomic():
            moved = Campaign.objects.filter(
                pk=campaign_id, status=Campaign.Status.SCHEDULED
            ).update(status=Campaign.Status.RUNNING, launched_at=now, updated_at=now)
            if moved:
                event_record(
                    campaign_id=campaign_id,
                    kind="launched",
                    text="Launched at its scheduled time.",
                )
                senders_rebind(campaign_ids=[campaign_id])
                started.append(campaign_id)
    for campaign_id in Campaign.objects.running().order_by("id").values_list("id", flat=True):
        campaign_kick(campaign_id=campaign_id)
    return started


def imports_requeue_lost() -> list[int]:
    """Imports marked running whose task is gone (no worker holds their lock, nothing moved for
    IMPORT_STALL_MINUTES) are queued again; an import is safe to run twice."""
    from campaigns.importing.tasks import import_contacts

    since = timezone.now() - timedelta(minutes=settings.IMPORT_STALL_MINUTES)
    with connection.cursor() as cursor:
        cursor.execute(_IMPORTS_ADRIFT_SQL, [since, _LOCK_CLASS])
        adrift = [pk for (pk,) in cursor.fetchall()]
    for campaign_id in adrift:
        Campaign.objects.filter(pk=campaign_id).update(updated_at=timezone.now())
        import_contacts.delay(campaign_id=campaign_id)
    return adrift

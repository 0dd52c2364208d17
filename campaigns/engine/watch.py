"""The beat's watch over campaigns: start scheduled ones on time, keep running ones moving."""

from django.db import transaction
from django.utils import timezone

from campaigns.engine.dispatch import campaign_kick
from campaigns.models import Campaign


def campaigns_start_due() -> list[int]:
    """Moves due scheduled campaigns to running, then makes sure every running campaign has a
    slice queued per active sender (a worker killed mid-slice leaves none). Returns started ids."""
    from campaigns.services.lifecycle import senders_rebind

    now = timezone.now()
    started = []
    for campaign_id in Campaign.objects.filter(
        status=Campaign.Status.SCHEDULED, scheduled_at__lte=now
    ).values_list("id", flat=True):
        with transaction.atomic():
            moved = Campaign.objects.filter(
                pk=campaign_id, status=Campaign.Status.SCHEDULED
            ).update(status=Campaign.Status.RUNNING, launched_at=now, updated_at=now)
            if moved:
                senders_rebind(campaign_id=campaign_id)
                started.append(campaign_id)
    running = Campaign.objects.filter(status=Campaign.Status.RUNNING).values_list("id", flat=True)
    for campaign_id in running.order_by("id"):
        campaign_kick(campaign_id=campaign_id)
    return started

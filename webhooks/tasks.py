from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from webhooks.models import PendingStatus, WebhookEvent
from webhooks.processor import deliveries_process

PRUNE_CHUNK = 5000
# A run that found work looks again this soon: the deliveries that arrived while it ran (and
# did not wake the processor, see kick.py) are applied within a second, not at the next beat.
FOLLOW_UP_S = 0.5
# While deliveries keep arriving, a run applies them in batches at most this often (a batch of
# a few hundred costs little more than one of a dozen). A quarter of a second is what a status
# waits at most for it, against a drain target of seconds.
GATHER_S = 0.25


@shared_task(name="webhooks.tasks.process_pending", ignore_result=True)
def process_pending() -> dict:
    """Safe to run twice or in parallel: batches are claimed with SKIP LOCKED."""
    result = deliveries_process(gather_s=GATHER_S)
    if result.deliveries:
        process_pending.apply_async(countdown=FOLLOW_UP_S, retry=False)
    return {
        "deliveries": result.deliveries,
        "statuses": result.statuses,
        "items_skipped": result.items_skipped,
    }


@shared_task(name="webhooks.tasks.prune_events", ignore_result=True)
def prune_events() -> int:
    """Deletes processed deliveries (and given-up statuses) older than the retention."""
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    PendingStatus.objects.filter(given_up_at__lt=cutoff).delete()
    old = WebhookEvent.objects.filter(received_at__lt=cutoff, processed_at__isnull=False)
    deleted = 0
    while ids := list(old.order_by("id").values_list("id", flat=True)[:PRUNE_CHUNK]):
        deleted += WebhookEvent.objects.filter(pk__in=ids).delete()[0]
    return deleted

"""Enqueueing slices: at most one queued slice per sender, whoever asks and however often."""

from django.conf import settings

from campaigns.engine import redis as engine_redis
from campaigns.models import Campaign, CampaignSender


def campaign_kick(*, campaign_id: int) -> int:
    """Queues a slice for every active sender of a running campaign that has none queued or
    running; returns how many were queued. Safe to call as often as anyone likes."""
    sender_ids = CampaignSender.objects.filter(
        campaign_id=campaign_id,
        campaign__status=Campaign.Status.RUNNING,
        state=CampaignSender.State.ACTIVE,
    ).values_list("id", flat=True)
    return sum(sender_enqueue(campaign_id=campaign_id, sender_id=pk) for pk in sender_ids)


def sender_enqueue(*, campaign_id: int, sender_id: int, countdown: float = 0) -> bool:
    """Queues one slice unless one is already queued or running for this sender."""
    redis = engine_redis.client()
    if redis.exists(engine_redis.sender_lock_key(sender_id)):
        return False
    ttl_ms = int((settings.ENGINE_LEASE_SECONDS + countdown) * 1000)
    if not redis.set(engine_redis.sender_queued_key(sender_id), "1", nx=True, px=ttl_ms):
        return False
    _send(campaign_id, sender_id, countdown)
    return True


def sender_requeue(*, campaign_id: int, sender_id: int, countdown: float = 0) -> None:
    """Called by a slice that still holds the sender's lock: queue the next slice."""
    redis = engine_redis.client()
    ttl_ms = int((settings.ENGINE_LEASE_SECONDS + countdown) * 1000)
    if redis.set(engine_redis.sender_queued_key(sender_id), "1", nx=True, px=ttl_ms):
        _send(campaign_id, sender_id, countdown)


def _send(campaign_id: int, sender_id: int, countdown: float) -> None:
    from campaigns.tasks import send_slice

    send_slice.apply_async(
        kwargs={"campaign_id": campaign_id, "sender_id": sender_id},
        countdown=countdown or None,
    )


def campaigns_start_at(*, when) -> None:
    """Starts due campaigns at `when` on the dot; the beat's 10-second check is the fallback."""
    from campaigns.tasks import start_due_campaigns

    start_due_campaigns.apply_async(eta=when)


def sender_stopped(*, sender_id: int) -> None:
    """A sender was exhausted from outside its slice: wake running slices, and free its claims
    at once when no slice of it is running (a running slice frees them itself)."""
    from campaigns.engine.claims import claims_release

    engine_redis.generation_bump()
    if not engine_redis.client().exists(engine_redis.sender_lock_key(sender_id)):
        claims_release(sender_id=sender_id)


def on_template_status_changed(sender, template_ids=(), **kwargs) -> None:
    """A template webhook was processed: every running slice re-reads its templates before its
    next send, so a paused template is not used again by any sender."""
    engine_redis.generation_bump()

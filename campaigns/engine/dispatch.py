"""Enqueueing slices: at most one queued slice per sender, whoever asks and however often."""

import functools
import logging

import redis as redis_errors
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


def _queued_ttl_ms(countdown: float) -> int:
    # A queued mark lost with its task (a Redis restart, a purge) blocks re-queueing only this
    # long: about as long as a dead slice's lock.
    return int((settings.ENGINE_LOCK_SECONDS + countdown) * 1000)


def sender_enqueue(*, campaign_id: int, sender_id: int, countdown: float = 0) -> bool:
    """Queues one slice unless one is already queued or running for this sender."""
    redis = engine_redis.client()
    if redis.exists(engine_redis.sender_lock_key(sender_id)):
        return False
    key = engine_redis.sender_queued_key(sender_id)
    if not redis.set(key, "1", nx=True, px=_queued_ttl_ms(countdown)):
        return False
    _send(campaign_id, sender_id, countdown)
    return True


def sender_requeue(*, campaign_id: int, sender_id: int, countdown: float = 0) -> None:
    """Called by a slice that still holds the sender's lock: queue the next slice."""
    redis = engine_redis.client()
    key = engine_redis.sender_queued_key(sender_id)
    if redis.set(key, "1", nx=True, px=_queued_ttl_ms(countdown)):
        _send(campaign_id, sender_id, countdown)


SEND_QUEUE = "send"
# kombu's Redis transport keeps a queue's priorities in separate lists beside the plain one.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def send_queue_keys() -> list[str]:
    return [SEND_QUEUE + suffix for suffix in _PRIORITY_SUFFIXES]


def slices_waiting() -> bool:
    """Whether a slice sits in the send queue waiting for a free worker process (slices with a
    countdown wait in a worker's memory, not here, and take no process until due)."""
    pipe = engine_redis.client().pipeline(transaction=False)
    for key in send_queue_keys():
        pipe.llen(key)
    return any(pipe.execute())


def _send(campaign_id: int, sender_id: int, countdown: float) -> None:
    from campaigns.tasks import send_slice

    send_slice.apply_async(
        kwargs={"campaign_id": campaign_id, "sender_id": sender_id},
        countdown=countdown or None,
    )


def campaigns_start_at(*, when) -> None:
    """Starts due campaigns at `when` on the dot; the beat's check is the fallback."""
    from campaigns.tasks import start_due_campaigns

    start_due_campaigns.apply_async(eta=when)


# -- what the services tell the engine (campaigns/signals.py) -------------------------------------

log = logging.getLogger(__name__)


def _redis_may_be_away(receiver):
    # These run after a commit: with Redis away the change is already safe in Postgres and the
    # beat's 5-second watch does what the receiver could not.
    @functools.wraps(receiver)
    def guarded(*args, **kwargs):
        try:
            receiver(*args, **kwargs)
        except redis_errors.RedisError as exc:
            log.warning("%s skipped: %s", receiver.__name__, exc)

    return guarded


@_redis_may_be_away
def on_campaign_wants_sending(sender, campaign_id: int, **kwargs) -> None:
    campaign_kick(campaign_id=campaign_id)


@_redis_may_be_away
def on_campaign_scheduled(sender, when, **kwargs) -> None:
    campaigns_start_at(when=when)


@_redis_may_be_away
def on_sender_stopped(sender, sender_id: int, **kwargs) -> None:
    """A sender was exhausted from outside its slice: wake running slices, and free its unsent
    claims at once when no slice of it is running (a running slice frees them itself)."""
    from campaigns.engine.claims import claims_release

    engine_redis.generation_bump()
    if not engine_redis.client().exists(engine_redis.sender_lock_key(sender_id)):
        claims_release(sender_id=sender_id)


@_redis_may_be_away
def on_engine_state_changed(sender, **kwargs) -> None:
    """Every running slice re-reads its campaign, sender and templates before its next send."""
    engine_redis.generation_bump()


def on_template_status_changed(sender, template_ids=(), **kwargs) -> None:
    """A template webhook was processed: senders using it move on now (or the campaign pauses
    with a reason when none is left), and running slices re-read their templates."""
    from campaigns.services.senders import senders_templates_changed

    senders_templates_changed(template_ids=template_ids)


def on_template_quality_changed(sender, template_ids=(), **kwargs) -> None:
    """Meta rated a template's quality low: the campaigns using it say so on their timeline."""
    from campaigns.services.timeline import events_for_template_quality

    events_for_template_quality(template_ids=template_ids)

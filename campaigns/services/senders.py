"""Sender state: the one place a sender is stopped, moved to its next template or re-bound, and a
campaign left with no sender paused. The engine's slices and the webhook reactions both call
these; they never call back into the engine (they signal it, see campaigns/signals.py).
"""

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.engine import redis as engine_redis
from campaigns.models import Campaign, CampaignSender, SenderTemplate
from campaigns.services import timeline
from campaigns.signals import engine_state_changed, sender_stopped
from templates_app.models import MessageTemplate, WhatsAppAccount

NO_TEMPLATE_LEFT = "No approved template left for this number."
SPAM_WINDOW_S = 60


def _notify_engine() -> None:
    transaction.on_commit(lambda: engine_state_changed.send(sender=CampaignSender))


def sender_exhaust(*, sender_id: int, code: int | None, reason: str) -> bool:
    """Stops one sender; True if it was active. Its running slice (if any) notices within one
    batch and returns its unsent claims itself."""
    moved = CampaignSender.objects.filter(pk=sender_id, state=CampaignSender.State.ACTIVE).update(
        state=CampaignSender.State.EXHAUSTED,
        exhausted_code=code,
        exhausted_reason=reason,
        exhausted_at=timezone.now(),
    )
    if moved:
        timeline.events_for_stopped_senders(sender_ids=[sender_id], code=code, reason=reason)
        transaction.on_commit(
            lambda: sender_stopped.send(sender=CampaignSender, sender_id=sender_id)
        )
    return bool(moved)


def sender_template_fail(
    *, sender_id: int, template_id: int, code: int | None, marks_template: str | None = None
) -> int | None:
    """Marks the template failed for this sender (and paused/disabled for everyone when Meta
    says so), moves the sender to its next usable template in the marketer's order and returns
    that template's id, or None when none is left (the sender is then exhausted)."""
    now = timezone.now()
    with transaction.atomic():
        SenderTemplate.objects.filter(
            sender_id=sender_id, template_id=template_id, failed_code__isnull=True
        ).update(failed_code=code, failed_at=now)
        if marks_template:
            marked = (
                MessageTemplate.objects.filter(pk=template_id)
                .exclude(status=marks_template)
                .update(status=marks_template, status_changed_at=now)
            )
            if marked:
                timeline.events_for_templates(template_ids=[template_id])
        next_id = _next_usable_template(sender_id)
        if next_id is None:
            sender_exhaust(sender_id=sender_id, code=code, reason=NO_TEMPLATE_LEFT)
        else:
            CampaignSender.objects.filter(pk=sender_id).update(current_template_id=next_id)
        _notify_engine()
    return next_id


def _next_usable_template(sender_id: int) -> int | None:
    return (
        SenderTemplate.objects.filter(
            sender_id=sender_id,
            failed_code__isnull=True,
            template__in=MessageTemplate.objects.sendable(),
        )
        .order_by("position", "id")
        .values_list("template_id", flat=True)
        .first()
    )


def senders_rebind(*, campaign_ids) -> int:
    """Points every active sender of these campaigns at its first usable template in the
    marketer's order; exhausts those with none and pauses campaigns left without a sender.
    Returns how many senders are active afterwards."""
    active = 0
    senders = CampaignSender.objects.filter(
        campaign_id__in=list(campaign_ids), state=CampaignSender.State.ACTIVE
    ).order_by("id")
    for sender_id, current_id in senders.values_list("id", "current_template_id"):
        usable = _next_usable_template(sender_id)
        if usable is None:
            sender_exhaust(sender_id=sender_id, code=None, reason=NO_TEMPLATE_LEFT)
            continue
        active += 1
        if usable != current_id:
            CampaignSender.objects.filter(pk=sender_id).update(current_template_id=usable)
    campaigns_pause_if_exhausted(campaign_ids=campaign_ids)
    return active


def senders_templates_changed(*, template_ids) -> None:
    """A template webhook paused, disabled or restored templates: every live campaign using
    them moves its senders on now, and pauses with a reason when no sender has one left."""
    campaign_ids = set(
        Campaign.objects.live()
        .filter(senders__template_slots__template_id__in=list(template_ids))
        .values_list("id", flat=True)
    )
    if campaign_ids:
        with transaction.atomic():
            timeline.events_for_templates(template_ids=template_ids, campaign_ids=campaign_ids)
            senders_rebind(campaign_ids=campaign_ids)
    _notify_engine()


def senders_exhaust_for_phone(*, phone_id: int, code: int | None, reason: str) -> int:
    """Stops every live sender on this number; pauses campaigns left without one."""
    return _senders_exhaust(Q(phone_id=phone_id), code=code, reason=reason)


def senders_exhaust_for_account(*, account_id: int, code: int | None, reason: str) -> int:
    """Stops every live sender on this account's numbers; pauses campaigns left without one."""
    if code == 190:
        WhatsAppAccount.objects.filter(pk=account_id).update(
            health=WhatsAppAccount.Health.TOKEN_INVALID, health_detail=reason
        )
    return _senders_exhaust(Q(phone__account_id=account_id), code=code, reason=reason)


def _senders_exhaust(where: Q, *, code: int | None, reason: str) -> int:
    senders = CampaignSender.objects.filter(
        where, state=CampaignSender.State.ACTIVE, campaign__status__in=Campaign.LIVE
    ).values_list("id", "campaign_id")
    with transaction.atomic():
        rows = list(senders.order_by("id"))
        count = sum(sender_exhaust(sender_id=pk, code=code, reason=reason) for pk, _ in rows)
        campaigns_pause_if_exhausted(campaign_ids={campaign_id for _, campaign_id in rows})
    return count


def campaigns_pause_if_exhausted(*, campaign_ids) -> list[int]:
    """Pauses running campaigns with no active sender left, naming each number and why."""
    active = CampaignSender.objects.filter(
        campaign_id=OuterRef("pk"), state=CampaignSender.State.ACTIVE
    )
    stranded = Campaign.objects.filter(
        pk__in=list(campaign_ids), status=Campaign.Status.RUNNING
    ).filter(~Exists(active))
    paused = []
    for campaign_id in stranded.order_by("id").values_list("id", flat=True):
        reason = exhausted_reason(campaign_id)
        moved = (
            Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.RUNNING)
            .filter(~Exists(active))
            .update(status=Campaign.Status.PAUSED, pause_reason=reason)
        )
        if moved:
            paused.append(campaign_id)
            timeline.event_record(campaign_id=campaign_id, kind="paused", text=reason)
    if paused:
        _notify_engine()
    return paused


def exhausted_reason(campaign_id: int) -> str:
    senders = (
        CampaignSender.objects.filter(campaign_id=campaign_id, state=CampaignSender.State.EXHAUSTED)
        .select_related("phone")
        .order_by("id")
    )
    parts = [f"{sender.phone}: {sender.exhausted_reason}" for sender in senders]
    return "All numbers exhausted: " + "; ".join(parts)


def phone_spam_strike(*, phone_number_id: str) -> int:
    """Counts one 131048 for this number; returns how many it had within the last minute
    before this one (the slice and the webhook path share the count)."""
    redis = engine_redis.client()
    key = engine_redis.spam_key(phone_number_id)
    strikes = redis.incr(key)
    if strikes == 1:
        redis.expire(key, SPAM_WINDOW_S)
    return int(strikes) - 1

"""Reactions to failed sends that reach beyond one contact: templates, numbers, accounts.

The sending slice (errors answered by the Graph API) and `failed_statuses_apply` (errors Meta
reports in a failed status webhook) decide with `campaigns.engine.reactions.decide` and act
through the functions here: one code path for both.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from campaigns.engine.dispatch import campaign_kick
from campaigns.engine.reactions import Action, decide, failure_reason
from campaigns.engine.redis import generation_bump
from campaigns.models import Campaign, CampaignSender, Contact, Message, SenderTemplate
from campaigns.services.lifecycle import sender_exhaust
from campaigns.services.optouts import optout_record
from templates_app.models import MessageTemplate, WhatsAppAccount
from titanflow.whatsapp.errors import classify

LIVE = (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED, Campaign.Status.PAUSED)


@dataclass
class FailedStatus:
    message_id: int
    code: int | None
    title: str
    details: str = ""


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
            MessageTemplate.objects.filter(pk=template_id).exclude(status=marks_template).update(
                status=marks_template, status_changed_at=now
            )
        next_id = _next_usable_template(sender_id)
        if next_id is None:
            sender_exhaust(
                sender_id=sender_id, code=code, reason="No approved template left for this number."
            )
        else:
            CampaignSender.objects.filter(pk=sender_id).update(current_template_id=next_id)
        transaction.on_commit(generation_bump)
    return next_id


def _next_usable_template(sender_id: int) -> int | None:
    slot = (
        SenderTemplate.objects.filter(
            sender_id=sender_id,
            failed_code__isnull=True,
            template__in=MessageTemplate.objects.sendable(),
        )
        .order_by("position", "id")
        .values_list("template_id", flat=True)
        .first()
    )
    return slot


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
        where, state=CampaignSender.State.ACTIVE, campaign__status__in=LIVE
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
        moved = (
            Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.RUNNING)
            .filter(~Exists(active))
            .update(status=Campaign.Status.PAUSED, pause_reason=exhausted_reason(campaign_id))
        )
        if moved:
            paused.append(campaign_id)
    if paused:
        transaction.on_commit(generation_bump)
    return paused


def exhausted_reason(campaign_id: int) -> str:
    senders = (
        CampaignSender.objects.filter(campaign_id=campaign_id, state=CampaignSender.State.EXHAUSTED)
        .select_related("phone")
        .order_by("id")
    )
    parts = [f"{sender.phone}: {sender.exhausted_reason}" for sender in senders]
    return "All numbers exhausted: " + "; ".join(parts)


def failed_statuses_apply(*, failures: list[FailedStatus]) -> None:
    """Meta accepted these sends, then reported them failed by webhook: react by error code
    exactly as if the Graph API had answered with it."""
    messages = Message.objects.filter(pk__in=[f.message_id for f in failures]).select_related(
        "contact", "phone"
    )
    by_id = {message.pk: message for message in messages.order_by("id")}
    kick = set()
    for failure in failures:
        message = by_id.get(failure.message_id)
        if message is not None and _apply_one(message, failure):
            kick.add(message.campaign_id)
    for campaign_id in sorted(kick):
        transaction.on_commit(lambda pk=campaign_id: campaign_kick(campaign_id=pk))


def _apply_one(message: Message, failure: FailedStatus) -> bool:
    """Returns True when the contact went back to the queue."""
    info = classify(failure.code)
    reason = failure_reason(info, failure.details or failure.title)
    contact = message.contact
    decision = decide(info, attempts=contact.attempts)
    with transaction.atomic():
        if decision.action == Action.NEXT_TEMPLATE:
            sender = _sender_of(message)
            if sender is not None:
                sender_template_fail(
                    sender_id=sender,
                    template_id=message.template_id,
                    code=info.code,
                    marks_template=info.marks_template,
                )
        elif decision.action == Action.EXHAUST_PHONE:
            senders_exhaust_for_phone(phone_id=message.phone_id, code=info.code, reason=reason)
        elif decision.action == Action.EXHAUST_ACCOUNT:
            senders_exhaust_for_account(
                account_id=message.phone.account_id, code=info.code, reason=reason
            )
        if decision.action in (Action.FAIL, Action.PAUSE_CAMPAIGN):
            _contact_fail(message, info.code, reason, opt_out=info.records_opt_out)
            return False
        return _contact_requeue(message, info.code, reason, delay_s=decision.delay_s)


def _sender_of(message: Message) -> int | None:
    return (
        CampaignSender.objects.filter(campaign_id=message.campaign_id, phone_id=message.phone_id)
        .values_list("id", flat=True)
        .first()
    )


def _contact_fail(message: Message, code: int | None, reason: str, *, opt_out: bool) -> None:
    moved = Contact.objects.filter(pk=message.contact_id, state=Contact.State.SENT).update(
        state=Contact.State.FAILED, last_error_code=code, last_error=reason
    )
    if moved:
        Campaign.objects.filter(pk=message.campaign_id).update(
            failed_count=_plus("failed_count", 1)
        )
    if opt_out:
        optout_record(phone=message.recipient, reason="131050", source=f"message {message.wamid}")


def _contact_requeue(message: Message, code: int | None, reason: str, *, delay_s: float) -> bool:
    # The payload stays on the contact: the same template resends the same bytes.
    not_before = timezone.now() + timedelta(seconds=delay_s) if delay_s else None
    moved = Contact.objects.filter(pk=message.contact_id, state=Contact.State.SENT).update(
        state=Contact.State.PENDING,
        not_before=not_before,
        last_error_code=code,
        last_error=reason,
        attempts=_plus("attempts", 1),
    )
    if moved:
        # It will be counted again when it is sent again.
        Campaign.objects.filter(pk=message.campaign_id, sent_count__gt=0).update(
            sent_count=_plus("sent_count", -1)
        )
    return bool(moved)


def _plus(field: str, n: int):
    return F(field) + n

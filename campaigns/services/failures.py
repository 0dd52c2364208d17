"""Failures Meta reports after it accepted a send (a failed status webhook), acted on by code
exactly as if the Graph API had answered with it: the same decision (`engine.reactions.decide`),
the same sender transitions (`services.senders`), the same attempt cap.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from campaigns.counters import contacts_move
from campaigns.engine.reactions import Action, decide, failure_reason
from campaigns.models import Campaign, CampaignSender, Message
from campaigns.services.optouts import optout_record
from campaigns.services.senders import (
    phone_spam_strike,
    sender_template_fail,
    senders_exhaust_for_account,
    senders_exhaust_for_phone,
)
from campaigns.signals import campaign_wants_sending
from titanflow.whatsapp.errors import classify

# Re-exported for the callers that stop senders from webhooks (account events).
__all__ = ["FailedStatus", "failed_statuses_apply", "senders_exhaust_for_account"]

# Contacts of these campaigns may go back to the queue; a finished one would never send them.
REQUEUE_STATUSES = (Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.SCHEDULED)


@dataclass
class FailedStatus:
    message_id: int
    code: int | None
    title: str
    details: str = ""


def failed_statuses_apply(*, failures: list[FailedStatus]) -> None:
    """Meta accepted these sends, then reported them failed by webhook."""
    messages = Message.objects.filter(pk__in=[f.message_id for f in failures]).select_related(
        "contact", "phone", "campaign"
    )
    by_id = {message.pk: message for message in messages.order_by("id")}
    kick = set()
    for failure in failures:
        message = by_id.get(failure.message_id)
        if message is not None and _apply_one(message, failure):
            kick.add(message.campaign_id)
    for campaign_id in sorted(kick):
        transaction.on_commit(
            lambda pk=campaign_id: campaign_wants_sending.send(sender=Campaign, campaign_id=pk)
        )


def _apply_one(message: Message, failure: FailedStatus) -> bool:
    """Returns True when the contact went back to the queue."""
    info = classify(failure.code)
    reason = failure_reason(info, failure.details or failure.title)
    strikes = 0
    if info.code == 131048:
        strikes = phone_spam_strike(phone_number_id=message.phone.phone_number_id)
    decision = decide(
        info,
        attempts=message.contact.attempts,
        spam_strikes=strikes,
        deadline=message.campaign.deadline,
    )
    with transaction.atomic():
        _sender_react(message, info, decision.action, reason)
        requeue = decision.action in (
            Action.NEXT_TEMPLATE,
            Action.EXHAUST_PHONE,
            Action.EXHAUST_ACCOUNT,
            Action.RETRY_LATER,
            Action.SLOW_DOWN,
        )
        if requeue and message.campaign.status in REQUEUE_STATUSES:
            return _contact_requeue(message, info.code, reason, delay_s=decision.delay_s)
        _contact_fail(message, info.code, reason, opt_out=info.records_opt_out)
        return False


def _sender_react(message: Message, info, action: Action, reason: str) -> None:
    if action == Action.NEXT_TEMPLATE:
        sender = _sender_of(message)
        if sender is not None:
            sender_template_fail(
                sender_id=sender,
                template_id=message.template_id,
                code=info.code,
                marks_template=info.marks_template,
            )
    elif action == Action.EXHAUST_PHONE:
        senders_exhaust_for_phone(phone_id=message.phone_id, code=info.code, reason=reason)
    elif action == Action.EXHAUST_ACCOUNT:
        senders_exhaust_for_account(
            account_id=message.phone.account_id, code=info.code, reason=reason
        )


def _sender_of(message: Message) -> int | None:
    return (
        CampaignSender.objects.filter(campaign_id=message.campaign_id, phone_id=message.phone_id)
        .values_list("id", flat=True)
        .first()
    )


def _contact_fail(message: Message, code: int | None, reason: str, *, opt_out: bool) -> None:
    contacts_move(
        where="c.id = %(id)s AND c.state = 'sent'",
        set_="state = 'failed', last_error_code = %(code)s, last_error = %(reason)s",
        params={"id": message.contact_id, "code": code, "reason": reason},
    )
    if opt_out:
        optout_record(phone=message.recipient, reason="131050", source=f"message {message.wamid}")


def _contact_requeue(message: Message, code: int | None, reason: str, *, delay_s: float) -> bool:
    # The payload stays on the contact: the same template resends the same bytes. The requeue
    # counts an attempt like any other, so a webhook failing every try cannot loop forever.
    not_before = timezone.now() + timedelta(seconds=delay_s) if delay_s else None
    moved = contacts_move(
        where="c.id = %(id)s AND c.state = 'sent'",
        set_=(
            "state = 'pending', not_before = %(not_before)s, last_error_code = %(code)s, "
            "last_error = %(reason)s, attempts = c.attempts + 1"
        ),
        params={"id": message.contact_id, "code": code, "reason": reason, "not_before": not_before},
    )
    return bool(moved)

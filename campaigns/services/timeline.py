"""A campaign's timeline: the one place its entries are written.

Callers describe what happened as `Entry`s and record many at once (one INSERT for every campaign
a template event touches); the page and the API read `CampaignEvent` in time order.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from campaigns.models import Campaign, CampaignEvent, CampaignSender
from templates_app.models import MessageTemplate

Kind = CampaignEvent.Kind
_TEMPLATE_KINDS = {
    MessageTemplate.Status.PAUSED: Kind.TEMPLATE_PAUSED,
    MessageTemplate.Status.DISABLED: Kind.TEMPLATE_DISABLED,
    MessageTemplate.Status.APPROVED: Kind.TEMPLATE_APPROVED,
}


@dataclass
class Entry:
    campaign_id: int
    kind: str
    text: str
    at: datetime = field(default_factory=timezone.now)
    actor_id: int | None = None
    code: int | None = None
    template_id: int | None = None
    phone_id: int | None = None


def events_record(*, entries: list[Entry]) -> int:
    """Writes the entries in one INSERT; returns how many."""
    CampaignEvent.objects.bulk_create(CampaignEvent(**vars(entry)) for entry in entries)
    return len(entries)


def event_record(*, campaign_id: int, kind: str, text: str, user=None, **fields) -> None:
    actor_id = user.pk if user is not None and user.is_authenticated else None
    events_record(entries=[Entry(campaign_id, kind, text, actor_id=actor_id, **fields)])


def events_for_templates(*, template_ids, campaign_ids=None) -> int:
    """Notes the current status of these templates (paused, disabled, approved again) on every
    live campaign that has them in a sender's list, or on `campaign_ids` when given."""
    templates = {
        t.pk: t
        for t in MessageTemplate.objects.filter(pk__in=list(template_ids)).order_by("id")
        if t.status in _TEMPLATE_KINDS
    }
    if not templates:
        return 0
    campaigns = Campaign.objects.live() if campaign_ids is None else Campaign.objects.all()
    if campaign_ids is not None:
        campaigns = campaigns.filter(pk__in=list(campaign_ids))
    pairs = (
        campaigns.filter(senders__template_slots__template_id__in=list(templates))
        .values_list("id", "senders__template_slots__template_id")
        .distinct()
        .order_by("id", "senders__template_slots__template_id")
    )
    return events_record(entries=[_template_entry(pk, templates[t]) for pk, t in pairs])


def events_for_template_quality(*, template_ids) -> int:
    """Notes Meta's low quality rating of these templates on every live campaign using them:
    the warning that comes before a pause (3 h, then 6 h, then disabled)."""
    templates = {t.pk: t for t in MessageTemplate.objects.filter(pk__in=list(template_ids))}
    pairs = (
        Campaign.objects.live()
        .filter(senders__template_slots__template_id__in=list(templates))
        .values_list("id", "senders__template_slots__template_id")
        .distinct()
        .order_by("id", "senders__template_slots__template_id")
    )
    entries = [
        Entry(
            campaign_id,
            Kind.TEMPLATE_QUALITY,
            f"Meta rates the template {templates[t].name} ({templates[t].language}) "
            f"{templates[t].quality_score}: people block or report it; Meta may pause it "
            "if it drops further.",
            template_id=t,
        )
        for campaign_id, t in pairs
    ]
    return events_record(entries=entries)


def _template_entry(campaign_id: int, template: MessageTemplate) -> Entry:
    status = template.get_status_display().lower()
    reason = f": {template.status_reason}" if template.status_reason else ""
    return Entry(
        campaign_id,
        _TEMPLATE_KINDS[template.status],
        f"Meta {status} the template {template.name} ({template.language}){reason}.",
        at=template.status_changed_at or timezone.now(),
        template_id=template.pk,
    )


def events_for_stopped_senders(*, sender_ids, code: int | None, reason: str) -> int:
    senders = CampaignSender.objects.filter(pk__in=list(sender_ids)).select_related("phone")
    entries = [
        Entry(
            sender.campaign_id,
            Kind.SENDER_STOPPED,
            f"{sender.phone.display_phone_number} stopped sending: {reason}",
            code=code,
            phone_id=sender.phone_id,
        )
        for sender in senders.order_by("id")
    ]
    return events_record(entries=entries)

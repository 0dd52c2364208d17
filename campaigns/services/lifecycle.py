"""Campaign lifecycle: launch, schedule, pause, resume, cancel, retry, retarget and statistics.

Every transition is one conditional UPDATE whose row count says whether it happened, so two
clicks, two workers or a click racing the engine never start a campaign twice or revive a
cancelled one.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count, Max, Prefetch
from django.utils import timezone

from campaigns.ab.services import AbTestError, ab_test_check_launchable, ab_test_start
from campaigns.counters import campaign_recount, contacts_move
from campaigns.models import Campaign, CampaignSender, Contact, Message, SenderTemplate
from campaigns.services.cost import campaign_spend
from campaigns.services.failure_report import campaign_failures
from campaigns.services.guard_review import contacts_skip_us_marketing
from campaigns.services.senders import senders_rebind
from campaigns.services.timeline import event_record
from campaigns.signals import campaign_scheduled, campaign_wants_sending, engine_state_changed
from templates_app.models import MessageTemplate
from titanflow.whatsapp.errors import CATALOGUE, Scope, classify


class CampaignStateError(Exception):
    """A lifecycle step that cannot happen now; the message is a sentence a marketer can read."""


LAUNCHABLE = (Campaign.Status.READY,)
PAUSABLE = (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED)
CANCELLABLE = (
    Campaign.Status.READY,
    Campaign.Status.SCHEDULED,
    Campaign.Status.RUNNING,
    Campaign.Status.PAUSED,
)
RETRYABLE = (Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.COMPLETED)
AUDIENCES = ("failed", "not_delivered", "not_read", "replied", "clicked", "read_not_clicked")


def campaign_launch(
    *, campaign: Campaign, user=None, scheduled_at: datetime | None = None
) -> Campaign:
    """Start sending now, or at `scheduled_at`, which must lie in the future."""
    now = timezone.now()
    if scheduled_at is not None and scheduled_at <= now:
        raise CampaignStateError(
            f"{scheduled_at:%Y-%m-%d %H:%M %Z} has already passed: pick a later time, "
            "or launch now."
        )
    scheduled = scheduled_at is not None
    with transaction.atomic():
        campaign_check_launchable(campaign=campaign)
        ab_test_start(campaign_id=campaign.pk)
        status = Campaign.Status.SCHEDULED if scheduled else Campaign.Status.RUNNING
        fields = {"status": status, "pause_reason": "", "updated_at": now}
        if scheduled:
            fields["scheduled_at"] = scheduled_at
        else:
            fields["launched_at"] = now
        moved = Campaign.objects.filter(pk=campaign.pk, status__in=LAUNCHABLE).update(**fields)
        if not moved:
            raise CampaignStateError("This campaign was already launched.")
        senders_rebind(campaign_ids=[campaign.pk])
        contacts_skip_us_marketing(campaign=campaign)
        if scheduled:
            when = timezone.localtime(scheduled_at)
            event_record(
                campaign_id=campaign.pk,
                kind="scheduled",
                text=f"Scheduled to start at {when:%Y-%m-%d %H:%M %Z}{_by(user)}.",
                user=user,
            )
        else:
            event_record(
                campaign_id=campaign.pk, kind="launched", text=f"Launched{_by(user)}.", user=user
            )
        if scheduled:
            transaction.on_commit(
                lambda: campaign_scheduled.send(sender=Campaign, when=scheduled_at)
            )
        else:
            _kick_on_commit(campaign.pk)
    campaign.refresh_from_db()
    return campaign


def campaign_check_launchable(*, campaign: Campaign) -> None:
    """Raises CampaignStateError with the first reason this campaign cannot be launched."""
    if campaign.status not in LAUNCHABLE:
        raise CampaignStateError(
            f"This campaign is {campaign.get_status_display().lower()}; "
            "only a ready campaign can be launched."
        )
    senders = _senders_with_templates(campaign, state=CampaignSender.State.ACTIVE)
    if not senders:
        raise CampaignStateError("Add at least one sending number before launching.")
    for sender in senders:
        if _first_usable_slot(sender) is None:
            raise CampaignStateError(
                f"The number {sender.phone} has no approved template to send with."
            )
    _check_mapping(campaign, senders)
    try:
        ab_test_check_launchable(campaign=campaign)
    except AbTestError as exc:
        raise CampaignStateError(str(exc)) from exc
    if not campaign.contacts.filter(state=Contact.State.PENDING).exists():
        raise CampaignStateError("There is no contact left to send to.")


def _senders_with_templates(campaign: Campaign, **filters) -> list[CampaignSender]:
    slots = SenderTemplate.objects.select_related("template").order_by("position", "id")
    return list(
        campaign.senders.filter(**filters)
        .select_related("phone")
        .prefetch_related(Prefetch("template_slots", queryset=slots))
        .order_by("id")
    )


def _first_usable_slot(sender: CampaignSender) -> SenderTemplate | None:
    for slot in sender.template_slots.all():
        if slot.failed_code is None and slot.template.is_sendable:
            return slot
    return None


def _check_mapping(campaign: Campaign, senders: list[CampaignSender]) -> None:
    mapping = campaign.variable_mapping or {}
    for sender in senders:
        for slot in sender.template_slots.all():
            template = slot.template
            if not template.is_sendable:
                continue
            given = mapping.get(str(template.pk)) or {}
            missing = [key for key in _slot_keys(template) if not _mapped(given.get(key))]
            if missing:
                raise CampaignStateError(
                    f"The template {template.name} has no value for {', '.join(missing)}; "
                    "complete the variable mapping first."
                )


def _slot_keys(template: MessageTemplate) -> list[str]:
    return [
        slot["key"] for slot in template.slots or [] if isinstance(slot, dict) and "key" in slot
    ]


def _mapped(source) -> bool:
    return isinstance(source, dict) and bool(source.get("column") or source.get("text"))


def campaign_pause(*, campaign: Campaign, reason: str = "", user=None) -> Campaign:
    """Stops sending; slices in flight stop at their next check (within one slice). A scheduled
    campaign keeps its time: resumed before it, it waits for it."""
    moved = Campaign.objects.filter(pk=campaign.pk, status__in=PAUSABLE).update(
        status=Campaign.Status.PAUSED, pause_reason=reason, updated_at=timezone.now()
    )
    _engine_on_commit()
    if moved:
        why = f": {reason}" if reason else ""
        text = f"Paused{_by(user)}{why}" if user else f"Paused by TitanFlow{why}"
        event_record(campaign_id=campaign.pk, kind="paused", text=text, user=user)
    if not moved:
        campaign.refresh_from_db()
        raise CampaignStateError(
            f"This campaign is {campaign.get_status_display().lower()}; "
            "only a running or scheduled campaign can be paused."
        )
    campaign.refresh_from_db()
    return campaign


def campaign_resume(*, campaign: Campaign, user=None) -> Campaign:
    """Re-activates exhausted numbers (they may be healthy again) and sends on, or waits for
    its scheduled time when that has not come yet."""
    now = timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update(no_key=True).get(pk=campaign.pk)
        if locked.status != Campaign.Status.PAUSED:
            raise CampaignStateError(
                f"This campaign is {locked.get_status_display().lower()}; "
                "only a paused campaign can be resumed."
            )
        _senders_reset(campaign_id=campaign.pk)
        if not senders_rebind(campaign_ids=[campaign.pk]):
            raise CampaignStateError(
                "No number has an approved template to send with; "
                "fix the templates or numbers, then resume."
            )
        waiting = locked.launched_at is None and locked.scheduled_at and locked.scheduled_at > now
        event_record(
            campaign_id=campaign.pk, kind="resumed", text=f"Resumed{_by(user)}.", user=user
        )
        status = Campaign.Status.SCHEDULED if waiting else Campaign.Status.RUNNING
        Campaign.objects.filter(pk=campaign.pk).update(
            status=status,
            pause_reason="",
            launched_at=locked.launched_at or (None if waiting else now),
            updated_at=now,
        )
        if waiting:
            when = locked.scheduled_at
            transaction.on_commit(lambda: campaign_scheduled.send(sender=Campaign, when=when))
        else:
            _kick_on_commit(campaign.pk)
    campaign.refresh_from_db()
    return campaign


def _senders_reset(*, campaign_id: int) -> None:
    # Template-scope failures were recorded per sender; a template Meta paused or disabled for
    # everyone stays unusable through its own status, so clearing the local marks is safe.
    CampaignSender.objects.filter(campaign_id=campaign_id).update(
        state=CampaignSender.State.ACTIVE,
        exhausted_code=None,
        exhausted_reason="",
        exhausted_at=None,
    )
    SenderTemplate.objects.filter(sender__campaign_id=campaign_id).update(
        failed_code=None, failed_at=None
    )


def campaign_cancel(*, campaign: Campaign, user=None) -> Campaign:
    moved = Campaign.objects.filter(pk=campaign.pk, status__in=CANCELLABLE).update(
        status=Campaign.Status.CANCELLED, completed_at=timezone.now(), updated_at=timezone.now()
    )
    _engine_on_commit()
    if moved:
        event_record(
            campaign_id=campaign.pk, kind="cancelled", text=f"Cancelled{_by(user)}.", user=user
        )
    if not moved:
        campaign.refresh_from_db()
        raise CampaignStateError(
            f"This campaign is {campaign.get_status_display().lower()} and cannot be cancelled."
        )
    campaign.refresh_from_db()
    return campaign


@dataclass
class RetryResult:
    queued: int
    left: dict[str, int]  # why the others stay failed -> how many

    def __int__(self) -> int:
        return self.queued


# Failures that cannot succeed by trying again now: the person opted out, Meta's per-user
# marketing cap (never within 24 h), an undeliverable or unsupported recipient, a row that fills
# no template, a send Meta may have delivered (retrying could message someone twice).
_NOT_RETRYABLE = {
    131050: "the person stopped marketing messages",
    131049: "Meta's per-user marketing limit (try again after 24 hours)",
}
_RETRY_SQL = """
    c.campaign_id = %(campaign)s AND c.state = 'failed' AND (
        (c.last_error_code IS NULL AND c.last_error NOT LIKE 'No value for%%'
            AND c.last_error NOT LIKE 'Meta never confirmed%%')
        OR c.last_error_code = ANY(%(retryable)s)
        OR NOT (c.last_error_code = ANY(%(known)s)))
"""


_NO_TEMPLATE_NOW = "no template of this campaign is approved right now"


def _retryable_codes(*, templates_usable: bool) -> list[int]:
    final = (Scope.RECIPIENT, Scope.PAYLOAD)
    if not templates_usable:  # a template refusal would only come back
        final = (*final, Scope.TEMPLATE)
    return [
        code
        for code, info in CATALOGUE.items()
        if (info.scope not in final or code == 131056) and code not in _NOT_RETRYABLE
    ]


def _templates_usable(campaign: Campaign) -> bool:
    return SenderTemplate.objects.filter(
        sender__campaign=campaign, template__in=MessageTemplate.objects.sendable()
    ).exists()


def campaign_retry_failed(*, campaign: Campaign, user=None) -> RetryResult:
    """Puts the failed contacts that can succeed now back in the queue, with fresh attempts;
    says how many stay failed and why."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update(no_key=True).get(pk=campaign.pk)
        if locked.status not in RETRYABLE:
            raise CampaignStateError(
                f"This campaign is {locked.get_status_display().lower()}; "
                "failed contacts can be retried once it has been launched."
            )
        if not locked.contacts.filter(state=Contact.State.FAILED).exists():
            raise CampaignStateError("No contact of this campaign has failed.")
        usable = _templates_usable(locked)
        queued = contacts_move(
            where=_RETRY_SQL,
            set_=(
                "state = 'pending', attempts = 0, not_before = NULL, last_error_code = NULL, "
                "last_error = ''"
            ),
            params={
                "campaign": locked.pk,
                "retryable": _retryable_codes(templates_usable=usable),
                "known": list(CATALOGUE),
            },
        )
        left = _failures_left(locked, usable=usable)
        event_record(
            campaign_id=locked.pk,
            kind="retried",
            text=f"{len(queued)} failed contacts queued again{_by(user)}; "
            f"{sum(left.values())} left failed.",
            user=user,
        )
        if queued and locked.status == Campaign.Status.COMPLETED:
            Campaign.objects.filter(pk=locked.pk).update(
                status=Campaign.Status.RUNNING, completed_at=None
            )
            senders_rebind(campaign_ids=[locked.pk])
        if queued and locked.status != Campaign.Status.PAUSED:
            _kick_on_commit(locked.pk)
    campaign.refresh_from_db()
    return RetryResult(queued=len(queued), left=left)


def _failures_left(campaign: Campaign, *, usable: bool) -> dict[str, int]:
    rows = (
        Contact.objects.filter(campaign=campaign, state=Contact.State.FAILED)
        .values_list("last_error_code")
        .annotate(n=Count("id"), example=Max("last_error"))
        .order_by("last_error_code")
    )
    left: dict[str, int] = {}
    for code, n, error in rows:
        why = _NOT_RETRYABLE.get(code) or (error or "failed").split(" Meta said:")[0]
        if not usable and classify(code).scope == Scope.TEMPLATE:
            why = _NO_TEMPLATE_NOW
        left[why] = left.get(why, 0) + n
    return left


def campaign_retarget(*, campaign: Campaign, audience: str, user, name: str = "") -> Campaign:
    """A new campaign, ready to review and launch, for the contacts in `audience`."""
    if audience not in AUDIENCES:
        raise CampaignStateError(f"Unknown audience {audience!r}; pick one of {AUDIENCES}.")
    with transaction.atomic():
        target = _campaign_copy(campaign, user=user, name=name or f"{campaign.name} ({audience})")
        count = _contacts_copy(source=campaign, target=target, audience=audience)
        if not count:
            raise CampaignStateError("No contact of this campaign matches that audience.")
        campaign_recount(campaign_id=target.pk)
    target.refresh_from_db()
    return target


def _campaign_copy(source: Campaign, *, user, name: str) -> Campaign:
    target = Campaign.objects.create(
        name=name[:200],
        owner=user,
        status=Campaign.Status.READY,
        dedup_days=source.dedup_days,
        max_mps=source.max_mps,
        columns=source.columns,
        phone_column=source.phone_column,
        name_column=source.name_column,
        phone_region=source.phone_region,
        source_name=source.source_name,
        track_clicks=source.track_clicks,
    )
    mapping = dict(source.variable_mapping or {})
    for sender in source.senders.order_by("id"):
        copy = CampaignSender.objects.create(
            campaign=target, phone_id=sender.phone_id, mps=sender.mps
        )
        SenderTemplate.objects.bulk_create(
            SenderTemplate(sender=copy, template_id=slot.template_id, position=slot.position)
            for slot in sender.template_slots.order_by("position")
        )
    Campaign.objects.filter(pk=target.pk).update(variable_mapping=mapping)
    return target


_CLICKED = (
    "EXISTS (SELECT 1 FROM campaigns_trackedlink t WHERE t.campaign_id = c.campaign_id "
    "AND t.contact_id = c.id AND t.first_clicked_at IS NOT NULL)"
)
_AUDIENCE_SQL = {
    "failed": "c.state = 'failed'",
    "not_delivered": (
        "c.state = 'sent' AND NOT EXISTS (SELECT 1 FROM campaigns_message m WHERE "
        "m.contact_id = c.id AND m.status IN ('delivered', 'read'))"
    ),
    "not_read": (
        "c.state = 'sent' AND NOT EXISTS (SELECT 1 FROM campaigns_message m WHERE "
        "m.contact_id = c.id AND m.status = 'read')"
    ),
    "replied": (
        "EXISTS (SELECT 1 FROM campaigns_message m WHERE m.contact_id = c.id "
        "AND m.replied_at IS NOT NULL)"
    ),
    "clicked": _CLICKED,
    "read_not_clicked": (
        "EXISTS (SELECT 1 FROM campaigns_message m WHERE m.contact_id = c.id "
        f"AND m.status = 'read') AND NOT {_CLICKED}"
    ),
}


def _contacts_copy(*, source: Campaign, target: Campaign, audience: str) -> int:
    # One INSERT ... SELECT: a retarget of a million contacts never passes through Python.
    sql = f"""
        INSERT INTO campaigns_contact (campaign_id, phone, name, variables, state, attempts,
            payload, last_error, skip_reason, row_number)
        SELECT DISTINCT ON (c.phone) %s, c.phone, c.name, c.variables, 'pending', 0, '', '', '',
            c.row_number
        FROM campaigns_contact c
        WHERE c.campaign_id = %s AND {_AUDIENCE_SQL[audience]}
          AND NOT EXISTS (SELECT 1 FROM campaigns_optout o WHERE o.phone = c.phone AND o.active)
        ORDER BY c.phone, c.id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [target.pk, source.pk])
        return cursor.rowcount


def campaign_stats(*, campaign: Campaign) -> dict:
    """Counters, per-sender figures and failures grouped by Meta error code."""
    campaign.refresh_from_db()
    states = dict(
        Contact.objects.filter(campaign=campaign)
        .values_list("state")
        .annotate(n=Count("id"))
        .order_by("state")
    )
    return {
        "id": campaign.pk,
        "status": campaign.status,
        "pause_reason": campaign.pause_reason,
        "progress": round(campaign.progress, 3),
        "counters": {
            field: getattr(campaign, f"{field}_count")
            for field in ("total", "skipped", "sent", "delivered", "read", "replied", "failed")
        },
        "contacts": {state: states.get(state, 0) for state in Contact.State.values},
        "senders": _sender_stats(campaign),
        "failures": [group.as_dict() for group in campaign_failures(campaign_id=campaign.pk)],
        "held_by_meta": messages_held(campaign=campaign),
        "spend": campaign_spend(campaign=campaign).as_dict(),
    }


# Template pacing: Meta accepted these sends but holds them while it assesses a new or changed
# template (or while the template is paused); they are sent, not failed, and may still deliver.
HELD_STATUSES = ("held_for_quality_assessment", "paused")


def messages_held(*, campaign: Campaign) -> dict[str, int]:
    """Messages Meta answered with a held or paused status, by that status."""
    counts = dict(
        Message.objects.filter(campaign=campaign, accepted_status__in=HELD_STATUSES)
        .values_list("accepted_status")
        .annotate(n=Count("id"))
        .order_by("accepted_status")
    )
    return {status: counts.get(status, 0) for status in HELD_STATUSES}


# A contact sent again with another template has several messages; its latest is its result, so
# per-number "sent" sums to the campaign's sent counter.
_SENT_BY_PHONE_SQL = """
SELECT lm.phone_id, count(*) FROM campaigns_contact c
JOIN LATERAL (SELECT m.phone_id FROM campaigns_message m WHERE m.contact_id = c.id
              ORDER BY m.id DESC LIMIT 1) lm ON true
WHERE c.campaign_id = %s AND c.state = 'sent'
GROUP BY lm.phone_id
"""


def _sender_stats(campaign: Campaign) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(_SENT_BY_PHONE_SQL, [campaign.pk])
        by_phone = dict(cursor.fetchall())
    delivered = dict(
        Message.objects.filter(campaign=campaign, status__in=["delivered", "read"])
        .values_list("phone_id")
        .annotate(n=Count("id"))
        .order_by("phone_id")
    )
    senders = campaign.senders.select_related("phone", "current_template").order_by("id")
    return [
        {
            "id": sender.pk,
            "phone_number_id": sender.phone.phone_number_id,
            "display_phone_number": sender.phone.display_phone_number,
            "state": sender.state,
            "mps": sender.mps or sender.phone.max_mps,
            "current_template": sender.current_template.name if sender.current_template else None,
            "exhausted_code": sender.exhausted_code,
            "exhausted_reason": sender.exhausted_reason,
            "sent": by_phone.get(sender.phone_id, 0),
            "delivered": delivered.get(sender.phone_id, 0),
        }
        for sender in senders
    ]


def _by(user) -> str:
    return f" by {user.get_username()}" if user is not None and user.is_authenticated else ""


def _kick_on_commit(campaign_id: int) -> None:
    transaction.on_commit(
        lambda: campaign_wants_sending.send(sender=Campaign, campaign_id=campaign_id)
    )


def _engine_on_commit() -> None:
    transaction.on_commit(lambda: engine_state_changed.send(sender=Campaign))

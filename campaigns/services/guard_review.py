"""What the deliverability guard will do to a campaign, said before launch: how many recipients
the portfolio's messaging limit lets go now and when the rest can, what it will cost, who is in
their quiet hours, what the deadline means, and which US numbers Meta will not deliver to.

The review step and the API's launch answer show the same lines.
"""

from dataclasses import asdict, dataclass
from datetime import datetime

from django.utils import timezone

from campaigns.counters import contacts_move
from campaigns.engine import guard
from campaigns.models import Campaign, CampaignSender
from campaigns.services import cost
from templates_app.models import WhatsAppAccount

US_MARKETING = "us_marketing"
US_MARKETING_TEXT = "Meta does not deliver marketing templates to US (+1) numbers"


def _people(count: int) -> str:
    return f"{count:,} recipient{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class BudgetLine:
    limit: int | None  # the campaign's portfolios' limits together; None: unlimited
    fit_now: int
    recipients: int
    rest_from: datetime | None
    text: str


def campaign_budget(*, campaign: Campaign, recipients: int, now=None) -> BudgetLine:
    """Recipients the portfolios of the campaign's numbers have room for in their rolling 24 h,
    by the same count the engine holds at (guard.portfolio_budget)."""
    now = now or timezone.now()
    accounts = list(
        WhatsAppAccount.objects.filter(
            phones__senders__campaign=campaign,
            phones__senders__state=CampaignSender.State.ACTIVE,
        )
        .distinct()
        .order_by("id")
    )
    if not accounts or any(account.messaging_limit is None for account in accounts):
        text = f"{_people(recipients)} can go now: no messaging limit applies."
        return BudgetLine(None, recipients, recipients, None, text)
    phones = {a.pk: list(a.phones.order_by("id").values_list("id", flat=True)) for a in accounts}
    limit = sum(account.messaging_limit for account in accounts)
    room = sum(
        guard.portfolio_budget(phone_ids=phones[a.pk], limit=a.messaging_limit, now=now).room
        for a in accounts
    )
    fit = min(room, recipients)
    if fit == recipients:
        text = (
            f"{'All ' if recipients > 1 else ''}{_people(recipients)} fit in the portfolio's "
            f"limit now ({room:,} of {limit:,} unique recipients per 24 h left)."
        )
        return BudgetLine(limit, fit, recipients, None, text)
    rest_from = min(
        guard.portfolio_next_room(phone_ids=ids, now=now) or now + guard.WINDOW
        for ids in phones.values()
    )
    return BudgetLine(
        limit, fit, recipients, rest_from, _rest_text(fit, recipients, limit, rest_from, now)
    )


def _rest_text(fit: int, recipients: int, limit: int, rest_from: datetime, now) -> str:
    when = timezone.localtime(rest_from)
    day = "" if when.date() == timezone.localtime(now).date() else f" on {when:%d %b}"
    return (
        f"{fit:,} of {recipients:,} recipients fit in the portfolio's limit of {limit:,} per "
        f"24 h now; the rest can go from {when:%H:%M}{day}, and sending continues by itself as "
        "the window frees room."
    )


def quiet_line(*, campaign: Campaign, groups: list[tuple[str, int]], now=None) -> dict | None:
    if not campaign.has_quiet_hours:
        return None
    now = now or timezone.now()
    quiet = guard.QuietHours(
        start=campaign.quiet_start, end=campaign.quiet_end, zone=campaign.quiet_zone
    )
    inside = sum(n for example, n in groups if quiet.until(example, now)[1] is not None)
    where = campaign.quiet_zone or "each recipient's local time (from their number)"
    hours = f"{campaign.quiet_start:%H:%M}–{campaign.quiet_end:%H:%M}"
    text = (
        f"Quiet hours {hours} in {where}: nobody is sent to inside them; {inside:,} "
        f"recipient{'s are' if inside != 1 else ' is'} inside them now and will be sent to "
        f"when they end ({campaign.quiet_end:%H:%M} their time)."
    )
    return {"start": campaign.quiet_start, "end": campaign.quiet_end, "inside_now": inside,
            "zone": campaign.quiet_zone, "text": text}  # fmt: skip


def deadline_line(*, campaign: Campaign, seconds: int | None, now=None) -> dict | None:
    if campaign.deadline is None:
        return None
    now = now or timezone.now()
    when = timezone.localtime(campaign.deadline)
    text = (
        f"Deadline {when:%d %b %Y %H:%M %Z}: nothing is sent after it; contacts not sent by "
        "then end 'expired'."
    )
    late = seconds is not None and (campaign.deadline - now).total_seconds() < seconds
    if late:
        text += " At the estimated rate sending takes longer than that."
    return {"at": campaign.deadline, "may_expire": late, "text": text}


def us_marketing_only(slots) -> bool:
    """Whether every template the campaign's numbers may send is a marketing one."""
    categories = {(slot.template.category or cost.MARKETING).upper() for slot in slots}
    return categories == {cost.MARKETING}


def us_recipients(groups: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return [
        (example, n) for example, n in groups if cost.recipient_region(example) == cost.US_REGION
    ]


def campaign_guard_review(*, campaign: Campaign, estimate_seconds: int | None = None) -> dict:
    """Everything the guard says before launch, as sentences and figures."""
    now = timezone.now()
    groups, slots = cost.pending_groups(campaign=campaign), cost.sender_slots(campaign=campaign)
    us = sum(n for _, n in us_recipients(groups)) if us_marketing_only(slots) else 0
    recipients = sum(n for _, n in groups) - us
    regions = cost.regions_of(groups)
    estimate = cost.campaign_cost_estimate(campaign=campaign, regions=regions, slots=slots)
    return {
        "recipients": recipients,
        "budget": asdict(campaign_budget(campaign=campaign, recipients=recipients, now=now)),
        "cost": estimate,
        "quiet_hours": quiet_line(campaign=campaign, groups=groups, now=now),
        "deadline": deadline_line(campaign=campaign, seconds=estimate_seconds, now=now),
        "us_skipped": us,
        "us_skipped_text": f"{us:,} US (+1) number{'s' if us != 1 else ''} will be skipped: "
        f"{US_MARKETING_TEXT}."
        if us
        else "",
    }


def contacts_skip_us_marketing(*, campaign: Campaign) -> int:
    """At launch: a campaign sending only marketing templates skips its US numbers, with the
    reason, rather than sending what Meta refuses."""
    if not us_marketing_only(cost.sender_slots(campaign=campaign)):
        return 0
    prefixes = [
        example[: cost.PREFIX]
        for example, _ in us_recipients(cost.pending_groups(campaign=campaign))
    ]
    if not prefixes:
        return 0
    moved = contacts_move(
        where=(
            "c.campaign_id = %(campaign)s AND c.state = 'pending' "
            f"AND left(c.phone, {cost.PREFIX}) = ANY(%(prefixes)s)"
        ),
        set_="state = 'skipped', skip_reason = %(reason)s, last_error = %(why)s",
        params={
            "campaign": campaign.pk,
            "prefixes": prefixes,
            "reason": US_MARKETING,
            "why": f"{US_MARKETING_TEXT} (since April 2025).",
        },
    )
    return len(moved)


# -- the guard's settings, from the wizard and the API -------------------------------------------


def guard_settings_errors(
    *, deadline, quiet_start, quiet_end, quiet_zone: str, starts_at=None, now=None
) -> dict[str, str]:
    """Per-field sentences for settings the guard cannot keep; empty when they are fine."""
    now = now or timezone.now()
    errors = {}
    if deadline is not None and deadline <= (starts_at or now):
        errors["deadline"] = (
            "The deadline must be later than the start of sending."
            if starts_at
            else "The deadline has already passed: pick a later time."
        )
    if (quiet_start is None) != (quiet_end is None):
        missing = "quiet_end" if quiet_end is None else "quiet_start"
        errors[missing] = "Quiet hours need both a start and an end time."
    elif quiet_start is not None and quiet_start == quiet_end:
        errors["quiet_end"] = "Quiet hours must end at another time than they start."
    if quiet_zone:
        if guard.zone_info(quiet_zone) is None:
            errors["quiet_zone"] = f"{quiet_zone!r} is not a time zone (try e.g. Asia/Dubai)."
        elif quiet_start is None and "quiet_start" not in errors:
            errors["quiet_zone"] = "A time zone applies to quiet hours: set their start and end."
    return errors


def campaign_set_guard(
    *,
    campaign: Campaign,
    deadline=None,
    quiet_start=None,
    quiet_end=None,
    quiet_zone="",
    starts_at=None,
) -> Campaign:
    """Sets the deadline and quiet hours of a campaign not launched yet (to start at
    `starts_at`, or now)."""
    from campaigns.services.setup import SetupError, _require_editable  # setup shows our lines

    _require_editable(campaign)
    errors = guard_settings_errors(
        deadline=deadline,
        quiet_start=quiet_start,
        quiet_end=quiet_end,
        quiet_zone=quiet_zone,
        starts_at=starts_at,
    )
    if errors:
        raise SetupError(" ".join(errors.values()), errors=errors)
    campaign.deadline, campaign.quiet_zone = deadline, quiet_zone
    campaign.quiet_start, campaign.quiet_end = quiet_start, quiet_end
    campaign.save(
        update_fields=["deadline", "quiet_start", "quiet_end", "quiet_zone", "updated_at"]
    )
    return campaign

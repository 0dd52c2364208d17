"""The deliverability guard: what the engine holds back to protect numbers and portfolios.

Every rule is checked once per claim (about a second of sending) or once per slice, never per
send, and costs nothing for a campaign that does not use it:

- the portfolio's messaging limit (unique recipients per rolling 24 h): one count statement per
  claim, under an advisory lock per account, only when the account has a limit;
- a number's quality: read with the sender at the start of every slice (no extra statement);
- the deadline: a clock comparison per send batch; past it one statement expires the rest;
- quiet hours: a zone look-up per claimed contact (cached) and one statement per claim that
  defers those whose local time is inside the quiet hours.
"""

import functools
import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from django.conf import settings
from django.db import connection
from django.utils import timezone
from phonenumbers import timezone as phone_zones

from campaigns.counters import contacts_move
from campaigns.models import Campaign, CampaignEvent, CampaignSender
from campaigns.services.timeline import event_record

WINDOW = timedelta(hours=24)
_PORTFOLIO_LOCK = 4014  # pg_advisory_xact_lock(class, account id): claims of one portfolio

PORTFOLIO_HELD = "Held: the portfolio's messaging limit of {limit} recipients per 24 h is reached."
QUALITY_STOPPED = {
    "RED": (
        "Stopped: Meta rates this number's quality RED (many people block or report it). "
        "It sends again when its quality is back to YELLOW or GREEN."
    ),
    "FLAGGED": (
        "Stopped: Meta flagged this number for low quality. It sends again once Meta "
        "lifts the flag."
    ),
}
QUIET_REASON = "Quiet hours in the recipient's local time ({zone}); sends after {until}."
EXPIRED = "expired"


# -- quality ---------------------------------------------------------------------------------


def quality_stop_reason(*, quality: str, status: str) -> str:
    """Why a number must not send now, or "" when it may."""
    if status.upper() == "FLAGGED":
        return QUALITY_STOPPED["FLAGGED"]
    return QUALITY_STOPPED.get(quality.upper(), "")


def quality_rate(*, rate: float, quality: str) -> float:
    """YELLOW slows a number by ENGINE_YELLOW_RATE_FACTOR before Meta acts on it."""
    if quality.upper() == "YELLOW":
        return max(1.0, rate * settings.ENGINE_YELLOW_RATE_FACTOR)
    return rate


def quality_notice(phone) -> str:
    """What the guard does with a PhoneNumber now, for the pages where a marketer picks or
    watches it (senders step, review, dashboard); "" for a number it leaves alone."""
    quality, status = phone.quality_rating or "", phone.status or ""
    if quality_stop_reason(quality=quality, status=status):
        label = "Flagged by Meta" if status.upper() == "FLAGGED" else "Quality RED"
        return (
            f"{label}: TitanFlow does not send from this number until its "
            "quality is back to YELLOW or GREEN; its contacts go to the other numbers."
        )
    slowed = quality_rate(rate=phone.max_mps, quality=quality)
    if slowed != phone.max_mps:
        return (
            f"Quality YELLOW: TitanFlow sends at most {slowed:g}/s from this number "
            f"(of {phone.max_mps}/s) until it is GREEN again, to keep Meta from restricting it."
        )
    return ""


def quality_effect(phone) -> str:
    """The same in a few words, for a table cell: "not sending", "slowed to 40/s" or ""."""
    quality = phone.quality_rating or ""
    if quality_stop_reason(quality=quality, status=phone.status or ""):
        return "not sending"
    slowed = quality_rate(rate=phone.max_mps, quality=quality)
    return f"slowed to {slowed:g}/s" if slowed != phone.max_mps else ""


# -- holds shown on the campaign page -------------------------------------------------------------


def sender_hold(*, sender_id: int, reason: str, until: datetime | None) -> None:
    CampaignSender.objects.filter(pk=sender_id).exclude(
        hold_reason=reason, held_until=until
    ).update(hold_reason=reason, held_until=until)


def sender_hold_clear(*, sender_id: int, campaign_id: int) -> None:
    CampaignSender.objects.filter(pk=sender_id).exclude(hold_reason="").update(
        hold_reason="", held_until=None
    )
    Campaign.objects.filter(pk=campaign_id).exclude(hold_reason="").update(
        hold_reason="", held_until=None
    )


def campaign_hold(*, campaign_id: int, reason: str, until: datetime | None) -> None:
    began = Campaign.objects.filter(pk=campaign_id, hold_reason="").update(
        hold_reason=reason, held_until=until
    )
    if began:  # the timeline notes each hold once, not each look at the window
        room = f" Next room at {timezone.localtime(until):%H:%M}." if until else ""
        event_record(
            campaign_id=campaign_id,
            kind=CampaignEvent.Kind.PORTFOLIO_HOLD,
            text=f"{reason}{room}",
        )
        return
    Campaign.objects.filter(pk=campaign_id).exclude(hold_reason=reason, held_until=until).update(
        hold_reason=reason, held_until=until
    )


# -- the portfolio's messaging limit ------------------------------------------------------------

_USED = """
SELECT
  (SELECT count(DISTINCT m.recipient) FROM campaigns_message m
    WHERE m.phone_id = ANY(%(phones)s) AND m.sent_at > %(since)s),
  (SELECT count(*) FROM campaigns_contact c
    WHERE c.state = 'claimed' AND c.claimed_by_id IN (
      SELECT s.id FROM campaigns_campaignsender s WHERE s.phone_id = ANY(%(phones)s)))
"""
_NEXT_ROOM = """
SELECT min(last) FROM (
  SELECT max(m.sent_at) AS last FROM campaigns_message m
  WHERE m.phone_id = ANY(%(phones)s) AND m.sent_at > %(since)s GROUP BY m.recipient) r
"""


@dataclass(frozen=True)
class Budget:
    limit: int | None
    used: int
    next_room_at: datetime | None = None

    @property
    def room(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


def portfolio_lock(*, account_id: int) -> None:
    """Serialises the claims of one portfolio's senders until the transaction ends, so two
    numbers cannot both take the last room."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_PORTFOLIO_LOCK, account_id])


def portfolio_budget(*, phone_ids: list[int], limit: int | None, now=None) -> Budget:
    """Unique recipients the portfolio messaged in the last 24 h plus contacts its numbers hold
    claimed (about to be sent), against its limit; when full, when the oldest frees room."""
    if limit is None:
        return Budget(limit=None, used=0)
    now = now or timezone.now()
    params = {"phones": phone_ids, "since": now - WINDOW}
    with connection.cursor() as cursor:
        cursor.execute(_USED, params)
        messaged, claimed = cursor.fetchone()
        used = messaged + claimed
    if used < limit:
        return Budget(limit=limit, used=used)
    return Budget(
        limit=limit, used=used, next_room_at=portfolio_next_room(phone_ids=phone_ids, now=now)
    )


def portfolio_next_room(*, phone_ids: list[int], now=None) -> datetime | None:
    """When the oldest recipient of the window leaves it and frees room; None when the window
    is empty."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_ROOM, {"phones": phone_ids, "since": now - WINDOW})
        (oldest,) = cursor.fetchone()
    return oldest + WINDOW if oldest else None


def hold_countdown_s(until: datetime | None) -> float:
    """How long a held sender waits before it looks again: until the room is due, at most
    ENGINE_HOLD_POLL_SECONDS (a number's quality or the limit may change meanwhile)."""
    poll = settings.ENGINE_HOLD_POLL_SECONDS
    if until is None:
        return poll
    return min(max((until - timezone.now()).total_seconds(), 1.0), poll)


# -- deadline ---------------------------------------------------------------------------------


def campaign_expire(*, campaign_id: int) -> int:
    """Past the deadline nothing is sent: every contact still waiting ends skipped, `expired`."""
    moved = contacts_move(
        where="c.campaign_id = %(campaign)s AND c.state = 'pending'",
        set_=(
            "state = 'skipped', skip_reason = %(reason)s, not_before = NULL, last_error = %(why)s"
        ),
        params={
            "campaign": campaign_id,
            "reason": EXPIRED,
            "why": "The campaign's deadline passed before this contact could be sent.",
        },
    )
    return len(moved)


# -- quiet hours ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def recipient_zone(phone: str) -> str:
    """The recipient's time zone from their number's country and region ("" when unknown)."""
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return ""
    zones = _known(phone_zones.time_zones_for_number(number))
    if not zones:  # a range phonenumbers cannot place: the country's own zone
        example = phonenumbers.example_number(phonenumbers.region_code_for_number(number) or "")
        zones = _known(phone_zones.time_zones_for_number(example)) if example else []
    return zones[0] if zones else ""


def _known(zones) -> list[str]:
    return [z for z in zones if z != "Etc/Unknown"]


@functools.lru_cache(maxsize=512)
def zone_info(name: str) -> ZoneInfo | None:
    """The time zone of that IANA name, or None for an empty or unknown one."""
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def quiet_until(*, now: datetime, zone_name: str, start: time, end: time) -> datetime | None:
    """When the quiet hours end for a recipient in `zone_name`, or None when they are not in
    them now. Hours may wrap past midnight (21:00-09:00)."""
    zone = zone_info(zone_name)
    if zone is None:
        return None
    local = now.astimezone(zone)
    clock = local.time()
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    opens = datetime.combine(local.date(), end, tzinfo=zone)
    if opens <= local:
        opens += timedelta(days=1)
    return opens


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    zone: str = ""  # the campaign's zone for every recipient; "" means each number's own

    def until(self, phone: str, now: datetime) -> tuple[str, datetime | None]:
        zone = self.zone or recipient_zone(phone)
        return zone, quiet_until(now=now, zone_name=zone, start=self.start, end=self.end)


_DEFER = """
UPDATE campaigns_contact c SET state = 'pending', claimed_by_id = NULL, claim_token = NULL,
    lease_until = NULL, not_before = u.not_before, last_error = u.why
FROM json_to_recordset(%(rows)s::json) AS u(id bigint, not_before timestamptz, why text)
WHERE c.id = u.id AND c.claim_token = %(token)s AND c.state = 'claimed' AND NOT c.sending
"""


def contacts_defer_quiet(*, token: int, claimed: list, quiet: QuietHours) -> list:
    """Returns the claimed contacts that may be sent now; those inside their quiet hours go back
    to the pool (one statement) until the hours end, and are claimed then in id order."""
    now = timezone.now()
    keep, rows = [], []
    for contact in claimed:
        zone, until = quiet.until(contact.phone, now)
        if until is None:
            keep.append(contact)
            continue
        why = QUIET_REASON.format(zone=zone, until=f"{until:%H:%M}")
        rows.append({"id": contact.id, "not_before": until.isoformat(), "why": why})
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(_DEFER, {"rows": json.dumps(rows), "token": token})
    return keep

"""What a campaign costs: the estimate before launch and the spend so far, from the rate card.

Meta bills per delivered template by category and by the recipient's market (country). Both
figures group recipients in SQL by the first seven digits of their number and place each group
with phonenumbers once: a number's region follows from its country code and, where several
regions share one (+1, +7, +44), from the leading digits of its national number, which lie
within those seven digits for every market of the rate card. So a page costs one query and a
few hundred look-ups, not one per recipient.
"""

import csv
import functools
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import phonenumbers
from django.db import connection

from campaigns.models import Campaign, CampaignSender, Rate, SenderTemplate

MARKETING = "MARKETING"
US_REGION = "US"
PREFIX = 8  # "+" and seven digits


@functools.lru_cache(maxsize=65536)
def recipient_region(phone: str) -> str:
    """The recipient's country code (ISO 3166) from their number, "" when unknown."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone)) or ""
    except phonenumbers.NumberParseException:
        return ""


@dataclass(frozen=True)
class CostLine:
    category: str
    market: str  # a rate card market: the region, or "*" for every other
    recipients: int
    rate: Decimal
    currency: str

    @property
    def amount(self) -> Decimal:
        return self.rate * self.recipients

    def as_dict(self) -> dict:
        return {
            "category": self.category,
            "market": self.market,
            "messages": self.recipients,
            "rate": str(self.rate),
            "currency": self.currency,
            "amount": str(self.amount),
        }


@dataclass(frozen=True)
class Cost:
    lines: list[CostLine]

    @property
    def totals(self) -> dict[str, Decimal]:
        """Amount per currency (one currency unless an admin mixes them in the card)."""
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for line in self.lines:
            sums[line.currency] += line.amount
        return dict(sorted(sums.items()))

    @property
    def messages(self) -> int:
        return sum(line.recipients for line in self.lines)

    def as_dict(self) -> dict:
        return {
            "messages": self.messages,
            "totals": [{"currency": c, "amount": str(a)} for c, a in self.totals.items()],
            "lines": [line.as_dict() for line in self.lines],
        }


RATE_CARD_FILE = Path(__file__).resolve().parent.parent / "data" / "rate_card.csv"


def rate_card_seed() -> int:
    """Adds the shipped rate card's rows that are missing (an admin's edits stay); returns how
    many were added. Migration 0010 does the same on install."""
    added = 0
    with RATE_CARD_FILE.open(newline="") as handle:
        for row in csv.DictReader(handle):
            _, created = Rate.objects.get_or_create(
                category=row["category"],
                market=row["market"],
                defaults={"price": Decimal(row["price"]), "currency": row["currency"]},
            )
            added += created
    return added


class RateCard:
    def __init__(self):
        self.rates = {
            (rate.category.upper(), rate.market.upper()): rate
            for rate in Rate.objects.order_by("category", "market", "id")
        }

    def rate_for(self, category: str, region: str) -> Rate | None:
        category = category.upper()
        return self.rates.get((category, region)) or self.rates.get((category, Rate.OTHER_MARKET))

    def cost(self, counts: dict[tuple[str, str], int]) -> Cost:
        """Lines for {(category, region): recipients}; a category without a rate is left out."""
        merged: dict[tuple, int] = defaultdict(int)
        for (category, region), n in counts.items():
            rate = self.rate_for(category, region)
            if rate is not None and n:
                merged[(category.upper(), rate.market, rate.price, rate.currency)] += n
        lines = [CostLine(*key[:2], n, *key[2:]) for key, n in merged.items()]
        return Cost(lines=sorted(lines, key=lambda line: (line.category, line.market)))


# -- spend so far -------------------------------------------------------------------------------

_BILLED = f"""
SELECT m.pricing_category, left(m.recipient, {PREFIX}), min(m.recipient), count(*)
FROM campaigns_message m
WHERE m.campaign_id = %s AND m.billable
GROUP BY 1, 2
"""


def campaign_spend(*, campaign: Campaign) -> Cost:
    """What Meta bills so far: every message a status webhook's pricing block called billable,
    at the rate card's rate for its category and its recipient's market."""
    with connection.cursor() as cursor:
        cursor.execute(_BILLED, [campaign.pk])
        rows = cursor.fetchall()
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for category, _, example, n in rows:
        counts[(category or MARKETING, recipient_region(example))] += n
    return RateCard().cost(counts)


# -- estimate before launch ----------------------------------------------------------------------

_PENDING = f"""
SELECT left(c.phone, {PREFIX}), min(c.phone), count(*)
FROM campaigns_contact c
WHERE c.campaign_id = %s AND c.state = 'pending'
GROUP BY 1
"""


def pending_groups(*, campaign: Campaign) -> list[tuple[str, int]]:
    """The contacts still to send as (one number of the group, how many), grouped by the first
    seven digits: enough to place each group's region and time zone."""
    with connection.cursor() as cursor:
        cursor.execute(_PENDING, [campaign.pk])
        return [(example, n) for _, example, n in cursor.fetchall()]


def regions_of(groups: list[tuple[str, int]]) -> dict[str, int]:
    regions: dict[str, int] = defaultdict(int)
    for example, n in groups:
        regions[recipient_region(example)] += n
    return dict(regions)


def sender_slots(*, campaign: Campaign) -> list[SenderTemplate]:
    """The usable template slots of the campaign's active senders, in each sender's order
    (one query, which the estimate and the US rule share)."""
    slots = (
        SenderTemplate.objects.filter(
            sender__campaign=campaign,
            sender__state=CampaignSender.State.ACTIVE,
            failed_code__isnull=True,
        )
        .select_related("template", "sender__phone")
        .order_by("sender_id", "position", "id")
    )
    return [slot for slot in slots if slot.template.is_sendable]


def sender_categories(slots: list[SenderTemplate]) -> dict[str, float]:
    """The share of the contacts each template category will carry: every active sender sends
    its first usable template, at a pace in proportion to its rate."""
    weights: dict[str, float] = defaultdict(float)
    first = {}
    for slot in slots:
        first.setdefault(slot.sender_id, slot)
    for slot in first.values():
        sender = slot.sender
        rate = max(min(sender.mps or sender.phone.max_mps, sender.phone.max_mps), 1)
        weights[(slot.template.category or MARKETING).upper()] += rate
    total = sum(weights.values())
    return {category: weight / total for category, weight in weights.items()} if total else {}


def campaign_cost_estimate(
    *, campaign: Campaign, regions: dict[str, int] | None = None, slots=None
) -> Cost:
    """Recipients × the rate for their market, per category the senders will send."""
    if regions is None:
        regions = regions_of(pending_groups(campaign=campaign))
    if slots is None:
        slots = sender_slots(campaign=campaign)
    shares = sender_categories(slots)
    counts: dict[tuple[str, str], int] = {}
    for category, share in shares.items():
        for region, n in regions.items():
            if category == MARKETING and region == US_REGION:
                continue  # skipped at launch: Meta delivers no marketing template to US numbers
            counts[(category, region)] = round(n * share)
    return RateCard().cost(counts)

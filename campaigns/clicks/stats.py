"""Clicks in the funnel: sent → delivered → read → clicked → replied, per template and number.

A recipient counts as clicked once, however many links they followed or how often."""

from django.db.models import Count, Q

from campaigns.clicks.models import TrackedLink
from campaigns.models import Message

STAGES = ("sent", "delivered", "read", "clicked", "replied")


def click_funnel(*, campaign) -> dict:
    """{"clicked": n, "by_template": [row], "by_number": [row]}; each row has a name and every
    stage's count. Two grouped queries, whatever the campaign's size."""
    groups = _message_groups(campaign)
    for key, clicked in _clicked_groups(campaign).items():
        groups.setdefault(key, _empty(key)).update(clicked=clicked)
    clicked = (
        TrackedLink.objects.filter(campaign=campaign, first_clicked_at__isnull=False)
        .values("contact_id")
        .distinct()
        .count()
    )
    return {
        "clicked": clicked,
        "by_template": _rolled(groups.values(), "template"),
        "by_number": _rolled(groups.values(), "number"),
    }


def _message_groups(campaign) -> dict:
    rows = (
        Message.objects.filter(campaign=campaign)
        .values("template_id", "template__name", "phone_id", "phone__display_phone_number")
        .annotate(
            sent=Count("id"),
            delivered=Count("id", filter=Q(status__in=("delivered", "read"))),
            read=Count("id", filter=Q(status="read")),
            replied=Count("id", filter=Q(replied_at__isnull=False)),
        )
        .order_by("template_id", "phone_id")
    )
    groups = {}
    for row in rows:
        key = (row["template_id"], row["template__name"], row["phone_id"])
        groups[key] = {
            **_empty(key),
            "number": row["phone__display_phone_number"],
            **{stage: row[stage] for stage in ("sent", "delivered", "read", "replied")},
        }
    return groups


def _clicked_groups(campaign) -> dict:
    rows = (
        TrackedLink.objects.filter(campaign=campaign, first_clicked_at__isnull=False)
        .values("template_id", "template__name", "phone_id")
        .annotate(n=Count("contact_id", distinct=True))
        .order_by("template_id", "phone_id")
    )
    return {(r["template_id"], r["template__name"], r["phone_id"]): r["n"] for r in rows}


def _empty(key) -> dict:
    return {"template": key[1], "phone_id": key[2], "number": "", **dict.fromkeys(STAGES, 0)}


def _rolled(groups, by: str) -> list[dict]:
    totals: dict[str, dict] = {}
    for group in groups:
        name = group[by] or str(group["phone_id"])
        row = totals.setdefault(name, {"name": name, **dict.fromkeys(STAGES, 0)})
        for stage in STAGES:
            row[stage] += group[stage]
    return sorted(totals.values(), key=lambda row: (-row["sent"], row["name"]))

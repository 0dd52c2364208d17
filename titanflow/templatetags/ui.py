"""Small display helpers shared by the marketers' pages: badges, percentages, progress."""

from django import template

register = template.Library()

_CAMPAIGN_BADGES = {
    "running": "blue",
    "scheduled": "blue",
    "importing": "blue",
    "paused": "yellow",
    "completed": "green",
    "failed": "red",
}
_QUALITY_BADGES = {"GREEN": "green", "YELLOW": "yellow", "RED": "red"}
_HEALTH_BADGES = {"ok": "green", "token_invalid": "red", "restricted": "red"}


@register.filter
def campaign_badge(status: str) -> str:
    return f"badge badge-{_CAMPAIGN_BADGES.get(status, 'gray')}"


@register.filter
def quality_badge(rating: str) -> str:
    return f"badge badge-{_QUALITY_BADGES.get((rating or '').upper(), 'gray')}"


@register.filter
def health_badge(health: str) -> str:
    return f"badge badge-{_HEALTH_BADGES.get(health, 'gray')}"


@register.filter
def percent_of(part, whole) -> str:
    """`{{ read|percent_of:sent }}` → "42.5%", or an en dash when nothing was sent."""
    if not whole:
        return "–"
    return f"{100 * (part or 0) / whole:.1f}%"


@register.filter
def progress(campaign) -> int:
    """Share of the campaign's contacts that reached an end state, 0-100."""
    if not campaign.total_count:
        return 0
    done = campaign.sent_count + campaign.failed_count + campaign.skipped_count
    return min(100, round(100 * done / campaign.total_count))


@register.simple_tag(takes_context=True)
def page_url(context, param: str, number: int) -> str:
    """The current URL with one page parameter changed, keeping search and sort."""
    query = context["request"].GET.copy()
    query[param] = number
    return f"?{query.urlencode()}"

"""Small display helpers shared by the marketers' pages: badges, percentages, progress."""

from django import template

from campaigns.engine import guard

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
def quality_notice(phone) -> str:
    """`{{ phone|quality_notice }}`: how the deliverability guard treats the number now."""
    return guard.quality_notice(phone)


@register.filter
def quality_effect(phone) -> str:
    """`{{ phone|quality_effect }}`: the same in a few words, for a table cell."""
    return guard.quality_effect(phone)


@register.filter
def health_badge(health: str) -> str:
    return f"badge badge-{_HEALTH_BADGES.get(health, 'gray')}"


@register.filter
def percent_of(part, whole) -> str:
    """`{{ read|percent_of:sent }}` → "42.5%", or an en dash when nothing was sent."""
    if not whole:
        return "–"
    return percent(100 * (part or 0) / whole)


@register.filter
def percent(value: float | None) -> str:
    """42.46 → "42.5%"; one reply in 5,000 reads "<0.1%", never a "0.0%" that hides it."""
    if value is None:
        return "–"
    if value == 0 or value >= 100:
        return f"{value:.0f}%"
    if value < 0.1:
        return "<0.1%"
    if value > 99.9:
        return ">99.9%"
    return f"{value:.1f}%"


@register.filter
def progress(campaign) -> str:
    """The campaign's progress as text: `{{ campaign|progress }} done`."""
    return percent(campaign.progress)


@register.filter
def bar_width(campaign) -> str:
    """The progress bar's CSS width, with a dot for the decimal whatever the locale."""
    return f"{campaign.progress:.2f}%"


@register.simple_tag(takes_context=True)
def page_url(context, param: str, number: int) -> str:
    """The current URL with one page parameter changed, keeping search and sort."""
    query = context["request"].GET.copy()
    query[param] = number
    return f"?{query.urlencode()}"

from django import template

register = template.Library()

# Meta's words for states, grouped by how worried a marketer should be.
_COLOURS = {
    "green": {"APPROVED", "GREEN", "CONNECTED", "HIGH", "ok", "done"},
    "yellow": {"PAUSED", "FLAGGED", "YELLOW", "LIMIT_EXCEEDED", "restricted", "waiting", "MEDIUM"},
    "red": {"REJECTED", "DISABLED", "RED", "DELETED", "BANNED", "token_invalid", "failed", "LOW"},
    "blue": {"PENDING", "IN_APPEAL", "running", "PENDING_DELETION"},
}
_BY_VALUE = {value: colour for colour, values in _COLOURS.items() for value in values}


@register.filter
def badge(value) -> str:
    """The badge class for a status, quality rating, health or sync state."""
    return f"badge badge-{_BY_VALUE.get(str(value), 'gray')}"


@register.filter
def tier(value) -> str:
    """Meta's messaging limit tier ("TIER_10K") as a marketer reads it."""
    value = str(value or "")
    if not value.upper().startswith("TIER_"):
        return value or "—"
    rest = value[5:].upper()
    return "Unlimited" if rest == "UNLIMITED" else f"{rest} users / 24 h"

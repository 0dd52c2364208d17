"""Whether a campaign can track clicks, and the marketer's choice (the review step)."""

from campaigns.clicks.links import is_link, tracked_buttons
from campaigns.models import Campaign, Contact
from campaigns.services.setup import chosen_templates, template_slots

SAMPLE_ROWS = 20  # rows read to tell whether a mapped column holds links


def tracking_offer(*, campaign: Campaign, templates=None, rows=None) -> dict:
    """{"possible", "buttons": names of templates whose URL button is always tracked,
    "body_links": names of templates whose mapped body values hold a link}. The review step
    passes the templates and sample rows it has loaded already."""
    if templates is None:
        templates = [t for t in chosen_templates(campaign=campaign) if t.is_sendable]
    if rows is None:
        contacts = Contact.objects.filter(campaign=campaign).order_by("id")
        rows = list(contacts.values_list("variables", flat=True)[:SAMPLE_ROWS])
    mapping = campaign.variable_mapping or {}
    body = [t.name for t in templates if _body_has_links(t, mapping.get(str(t.pk)) or {}, rows)]
    buttons = [t.name for t in templates if tracked_buttons(t)]
    return {"possible": bool(body or buttons), "buttons": buttons, "body_links": body}


def _body_has_links(template, rules: dict, rows: list[dict]) -> bool:
    for slot in template_slots(template):
        rule = rules.get(slot.key) or {}
        if slot.component != "body":
            continue
        if "column" in rule and any(is_link(str((r or {}).get(rule["column"], ""))) for r in rows):
            return True
        if is_link(str(rule.get("text", ""))):
            return True
    return False


def campaign_track_clicks(*, campaign: Campaign, on: bool) -> None:
    campaign.track_clicks = on
    campaign.save(update_fields=["track_clicks", "updated_at"])

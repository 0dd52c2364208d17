"""Tracked links: minted while a payload is built, answered by `/r/<token>`.

A link is minted before its payload is built and becomes part of it, so every retry resends
the same bytes and the same link. Tokens are made here, in memory; the rows reach the database
in one statement with the group's arm (`links_store`), and only for contacts actually armed.
"""

import json
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

# A link inside a body value: up to the first space; a closing bracket or full stop after it
# is the sentence's, not the link's.
BODY_LINK = re.compile(r"https?://[^\s<>\"']+?(?=[).,;:!?]*(?:\s|$))", re.IGNORECASE)
TOKEN_BYTES = 16  # 128 random bits: 22 URL-safe characters, never guessed
TOKEN_PATTERN = r"[A-Za-z0-9_-]{22}"


def redirect_prefix() -> str:
    return settings.PUBLIC_BASE_URL + "/r/"


def button_link_prefixes(components: list) -> dict[int, str]:
    """The fixed start of each URL button's link, by button index."""
    prefixes = {}
    for component in components or []:
        if str(component.get("type", "")).upper() == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or []):
                if str(button.get("type", "")).upper() == "URL":
                    prefixes[index] = str(button.get("url") or "").split("{{", 1)[0]
    return prefixes


def is_link(value: str) -> bool:
    return bool(BODY_LINK.search(value or ""))


@dataclass
class LinkMinter:
    """Rewrites one sender's values: links in body values when the campaign tracks clicks, and
    always the value of a URL button whose template link is TitanFlow's redirect (that button
    has no other way to reach its destination)."""

    campaign_id: int
    phone_id: int
    track_body: bool
    staged: tuple[int, list] = (0, [])  # the links of the payload built last

    def rewrite(self, *, contact_id: int, template, values: dict) -> dict:
        rows: list[tuple] = []
        self.staged = (contact_id, rows)
        buttons = tracked_buttons(template)
        out = dict(values)
        for slot in template.slots:
            value = out.get(slot.key)
            if not value:
                continue
            if slot.component == "button" and slot.button_index in buttons:
                out[slot.key] = self._mint(rows, template.id, value.strip(), suffix_only=True)
            elif slot.component == "body" and self.track_body:
                out[slot.key] = BODY_LINK.sub(
                    lambda m: self._mint(rows, template.id, m.group(0)), value
                )
        return out

    def take(self, contact_id: int) -> list[tuple]:
        """The links minted into `contact_id`'s payload just built: (token, template id, url)."""
        staged_for, rows = self.staged
        self.staged = (0, [])
        return rows if staged_for == contact_id else []

    def _mint(self, rows: list, template_id: int, url: str, *, suffix_only=False) -> str:
        if not url.lower().startswith(("http://", "https://")):
            return url  # not a destination we would redirect to: sent as the marketer gave it
        token = secrets.token_urlsafe(TOKEN_BYTES)
        rows.append((token, template_id, url))
        return token if suffix_only else redirect_prefix() + token


def tracked_buttons(template) -> set[int]:
    prefix = redirect_prefix()
    return {
        index
        for index, start in button_link_prefixes(template.components).items()
        if start == prefix
    }


_STORE = """
INSERT INTO campaigns_trackedlink
    (token, campaign_id, contact_id, phone_id, template_id, url, clicks, created_at)
SELECT u.token, %(campaign)s, u.contact, %(phone)s, u.template, u.url, 0, now()
FROM json_to_recordset(%(rows)s::json) AS u(token text, contact bigint, template bigint, url text)
"""


def links_store(*, campaign_id: int, phone_id: int, links: dict[int, list], armed: set[int]):
    """Writes the links of the contacts armed, in one statement per group."""
    rows = [
        {"token": token, "contact": contact_id, "template": template_id, "url": url}
        for contact_id, minted in links.items()
        if contact_id in armed
        for token, template_id, url in minted
    ]
    if not rows:
        return
    params = {
        "campaign": campaign_id,
        "phone": phone_id,
        "rows": json.dumps(rows, separators=(",", ":")),
    }
    with connection.cursor() as cursor:
        cursor.execute(_STORE, params)


_CLICK = """
UPDATE campaigns_trackedlink
SET clicks = clicks + 1, first_clicked_at = COALESCE(first_clicked_at, now()),
    last_clicked_at = now()
WHERE token = %s
RETURNING url
"""


def click_record(*, token: str) -> str | None:
    """Counts a click and gives the link's own URL; None for a token that was never minted.
    One statement: the unique token index finds the row and the same UPDATE records it."""
    with connection.cursor() as cursor:
        cursor.execute(_CLICK, [token])
        row = cursor.fetchone()
    return row[0] if row else None

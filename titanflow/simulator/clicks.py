"""Recipients who follow links: for a share of read messages the simulator opens the message's
TitanFlow short link (`/r/<token>`), as a person tapping it would, so demos and tests show real
click data. Only short links are followed, never a link to anywhere else."""

import re

SHORT_LINK = re.compile(r"https?://[^\s/]+(?:/[^\s]*)?/r/[A-Za-z0-9_-]{22}(?![A-Za-z0-9_-])")


def message_links(components: list | None, template_components: list | None) -> tuple[str, ...]:
    """The short links a sent template message carries: in its body text and in URL buttons
    (the template's link with the sent suffix)."""
    found: list[str] = []
    buttons = _button_urls(template_components or [])
    for part in components or []:
        kind = part.get("type")
        for parameter in part.get("parameters") or []:
            text = str(parameter.get("text") or "")
            if kind == "button" and part.get("sub_type") == "url":
                text = buttons.get(int(part.get("index") or 0), "").replace("{{1}}", text)
            found.extend(SHORT_LINK.findall(text))
    return tuple(found)


def _button_urls(components: list) -> dict[int, str]:
    for component in components:
        if str(component.get("type", "")).upper() == "BUTTONS":
            return {i: str(b.get("url") or "") for i, b in enumerate(component.get("buttons", []))}
    return {}

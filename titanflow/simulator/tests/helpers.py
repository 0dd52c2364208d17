"""Requests a Graph API client would make, against the demo world."""

import requests

from titanflow.simulator.demo import DEMO_PHONES, DEMO_WABA

TOKEN = "demo-token"
PHONE = DEMO_PHONES[0]
OTHER_PHONE = DEMO_PHONES[1]
WABA = DEMO_WABA


def text_parameters(*values: str) -> list[dict]:
    return [{"type": "text", "text": value} for value in values]


def order_update(to: str, *, language: str = "en_US", body_values=("Ana", "A-1", "12 March")):
    """A valid send of the demo's `order_update` template (text header + 3 body variables)."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": language, "policy": "deterministic"},
            "components": [
                {"type": "header", "parameters": text_parameters("A-1")},
                {"type": "body", "parameters": text_parameters(*body_values)},
            ],
        },
    }


def template_send(to: str, name: str, components: list, *, language: str = "en_US") -> dict:
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {"name": name, "language": {"code": language}, "components": components},
    }


def text_send(to: str, body: str = "Thanks, see you soon!") -> dict:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}


def send(
    url: str,
    body,
    *,
    phone: str = PHONE,
    token: str | None = TOKEN,
    session: requests.Session | None = None,
    timeout: float = 10,
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    poster = session or requests
    kwargs = {"data": body} if isinstance(body, bytes | str) else {"json": body}
    return poster.post(f"{url}/v23.0/{phone}/messages", headers=headers, timeout=timeout, **kwargs)


def graph_get(url: str, path: str, *, token: str | None = TOKEN, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    target = path if path.startswith("http") else f"{url}/v23.0/{path}"
    return requests.get(target, headers=headers, params=params or None, timeout=10)


def error_code(response: requests.Response) -> int:
    return response.json()["error"]["code"]

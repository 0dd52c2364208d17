"""Meta's error answers, shaped byte for byte like the Graph API's.

The titles and details are Meta's own wording from its error-code reference, so a client that
(wrongly) parsed text would see what it sees in production; TitanFlow decides on `code` alone.
"""

import secrets
from dataclasses import dataclass

_META: dict[int, tuple[str, str]] = {
    4: ("Application request limit reached", "The app has reached its API call rate limit."),
    100: ("Invalid parameter", "Invalid parameter"),
    131000: ("Something went wrong", "Message failed to send due to an unknown error."),
    131005: ("Access denied", "Permission is either not granted or has been removed."),
    131008: ("Required parameter is missing", "The request is missing a required parameter."),
    131009: ("Parameter value is not valid", "One or more parameter values are invalid."),
    131016: ("Service unavailable", "A service is temporarily unavailable."),
    131021: ("Recipient cannot be sender", "Sender and recipient phone number is the same."),
    131026: (
        "Message Undeliverable",
        "Unable to deliver message. The recipient may not be a WhatsApp user.",
    ),
    131031: ("Business Account locked", "The WhatsApp Business Account has been locked."),
    131042: (
        "Business eligibility payment issue",
        "Message failed to send because there were one or more errors related to your payment "
        "method.",
    ),
    131045: (
        "Incorrect certificate",
        "Message failed to send due to a phone number registration error.",
    ),
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last "
        "replied to this number.",
    ),
    131048: (
        "Spam rate limit hit",
        "Message failed to send because there are restrictions on how many messages can be sent "
        "from this phone number.",
    ),
    131049: (
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    131050: (
        "Unable to deliver the message. This recipient has chosen to stop receiving marketing "
        "messages on WhatsApp from your business.",
        "The user has stopped marketing messages from this business.",
    ),
    131051: ("Unsupported message type", "Message type is not currently supported."),
    131052: ("Media download error", "Unable to download the media sent by the user."),
    131053: ("Media upload error", "Unable to upload the media used in the message."),
    131056: (
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient phone number "
        "in a short period of time.",
    ),
    131057: ("Account in maintenance mode", "Business Account is in maintenance mode."),
    131064: (
        "Messaging limit reached",
        "The business reached its messaging limit for this template category.",
    ),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    130472: (
        "User's number is part of an experiment",
        "Failed to send message because this user's phone number is part of an experiment.",
    ),
    132000: (
        "Number of parameters does not match the expected number of params",
        "The number of variable parameter values included in the request did not match the "
        "number of variable parameters defined in the template.",
    ),
    132001: (
        "Template name does not exist in the translation",
        "The template does not exist in the specified language or has not been approved.",
    ),
    132005: ("Translated text too long", "Translated text is too long."),
    132007: (
        "Template Format Character Policy Violated",
        "Template content violates a WhatsApp policy.",
    ),
    132012: (
        "Parameter format does not match format in the created template",
        "Variable parameter values formatted incorrectly.",
    ),
    132015: (
        "Template is Paused",
        "Template is paused due to low quality so it cannot be sent in a template message.",
    ),
    132016: (
        "Template is Disabled",
        "Template has been paused too many times due to low quality and is now permanently "
        "disabled.",
    ),
    133010: ("Phone number Not Registered", "The phone number is not registered on WhatsApp."),
    190: ("Invalid OAuth access token - Cannot parse access token", "Invalid OAuth access token"),
    368: (
        "Temporarily blocked for policies violations",
        "The WhatsApp Business Account associated with the app has been restricted or "
        "disabled for violating a platform policy.",
    ),
    80007: ("Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
}

DEFAULT_HTTP_STATUS = {190: 401, 131000: 500, 131016: 503}


def title_of(code: int) -> str:
    return _META.get(code, (f"Simulated error {code}", ""))[0]


def details_of(code: int) -> str:
    return _META.get(code, ("", f"Simulated error {code}"))[1]


@dataclass(eq=False)
class GraphError(Exception):
    """An error answer: raise it anywhere on the request path, the handler renders it."""

    code: int
    details: str = ""
    http_status: int = 0
    type: str = "OAuthException"
    subcode: int | None = None
    message: str = ""

    def __post_init__(self):
        self.http_status = self.http_status or DEFAULT_HTTP_STATUS.get(self.code, 400)
        self.details = self.details or details_of(self.code)
        # Graph's own (non-WhatsApp) errors carry no "(#code)" prefix.
        self.message = self.message or f"(#{self.code}) {title_of(self.code)}"

    def __str__(self) -> str:
        return f"{self.message}: {self.details}"

    def body(self) -> dict:
        error = {
            "message": self.message,
            "type": self.type,
            "code": self.code,
            "error_data": {"messaging_product": "whatsapp", "details": self.details},
            "fbtrace_id": fbtrace_id(),
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return {"error": error}

    def webhook_error(self) -> dict:
        """The same error as a failed status webhook carries it in `errors[]`."""
        return {
            "code": self.code,
            "title": title_of(self.code),
            "message": title_of(self.code),
            "error_data": {"details": self.details},
        }


def unknown_object(node_id: str, method: str) -> GraphError:
    message = (
        f"Unsupported {method} request. Object with ID '{node_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation."
    )
    return GraphError(100, message, type="GraphMethodException", subcode=33, message=message)


def invalid_token() -> GraphError:
    return GraphError(190, message=title_of(190))


def fbtrace_id() -> str:
    return secrets.token_urlsafe(8)

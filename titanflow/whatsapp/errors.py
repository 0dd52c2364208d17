"""THE one catalogue of Meta error codes, and the exceptions the Graph client raises.

Every decision about a failed send is taken on Meta's numeric `code` (never on message text):
`classify(code)` says which scope the failure belongs to and what TitanFlow does about it.
"""

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum


class Scope(StrEnum):
    THROTTLE = "throttle"  # too fast: back off, resend the same payload
    TRANSIENT = "transient"  # Meta or the network hiccupped: retry with backoff
    PAYLOAD = "payload"  # this contact's parameters are wrong: fail the contact, no rotation
    TEMPLATE = "template"  # this template cannot be used: move to the sender's next template
    PHONE = "phone"  # this sender number cannot send: exhaust it
    ACCOUNT = "account"  # the whole WhatsApp account cannot send: exhaust all its numbers
    RECIPIENT = "recipient"  # this recipient cannot receive it: fail the contact, no rotation
    AMBIGUOUS = "ambiguous"  # sent, but no answer: never resend blindly, reconcile by webhook
    UNKNOWN = "unknown"  # an answer TitanFlow does not understand: stop and look


@dataclass(frozen=True)
class ErrorInfo:
    code: int | None
    scope: Scope
    meaning: str
    action: str
    marks_template: str | None = None
    records_opt_out: bool = False
    retry_after_s: float | None = None


def _entries(codes, scope, meaning, action, **flags) -> dict[int, ErrorInfo]:
    return {code: ErrorInfo(code, scope, meaning, action, **flags) for code in codes}


_EXHAUST_ACCOUNT = "Stop every number of this account and pause the campaign if none is left."
_NEXT_TEMPLATE = "Switch this number to its next template and resend to this contact."

CATALOGUE: dict[int, ErrorInfo] = {
    **_entries(
        [4, 80007],
        Scope.THROTTLE,
        "Too many API calls for this app or WhatsApp account right now.",
        "Wait until Meta allows calls again, then retry the same request.",
        retry_after_s=60.0,
    ),
    **_entries(
        [100, 131008, 131009, 132012, 132008],
        Scope.PAYLOAD,
        "A variable for this contact is missing or has a format Meta does not accept.",
        "Mark this contact failed with Meta's reason; other numbers would fail the same way.",
    ),
    **_entries(
        [190],
        Scope.ACCOUNT,
        "The account's access token has expired or was revoked.",
        "Stop every number of this account and flag the account: paste a new token.",
    ),
    **_entries(
        [368],
        Scope.ACCOUNT,
        "The account is temporarily blocked by Meta for policy violations.",
        _EXHAUST_ACCOUNT,
    ),
    **_entries(
        [130429],
        Scope.THROTTLE,
        "This number sent faster than Meta's throughput limit.",
        "Slow this number down, wait, and resend the same message.",
        # Meta counts over the last second; the bunch that crossed the line leaves that window
        # within a fraction of it, and the cut rate keeps the number under it meanwhile. A
        # paced bench: 0.907-0.912 of the allowed rate blocking 0.2 s, 0.874-0.923 at 0.5 s.
        retry_after_s=0.2,
    ),
    **_entries(
        [130472],
        Scope.RECIPIENT,
        "Meta held the message back because the recipient is in an experiment group.",
        "Mark this contact failed; do not retry soon.",
    ),
    **_entries(
        [131000, 131016],
        Scope.TRANSIENT,
        "Meta had an unknown error or a service was briefly unavailable.",
        "Retry the same message with growing pauses.",
        retry_after_s=5.0,
    ),
    **_entries(
        [131005],
        Scope.ACCOUNT,
        "The account's token lacks the permission to send messages.",
        _EXHAUST_ACCOUNT,
    ),
    **_entries(
        [131026],
        Scope.RECIPIENT,
        "The message could not be delivered: the number may not use WhatsApp or must update it.",
        "Mark this contact failed; the number is a candidate for suppression.",
    ),
    **_entries(
        [131031],
        Scope.ACCOUNT,
        "The WhatsApp account is locked by Meta.",
        _EXHAUST_ACCOUNT,
    ),
    **_entries(
        [131042],
        Scope.ACCOUNT,
        "Meta refused the send because of a payment or eligibility problem on the account.",
        _EXHAUST_ACCOUNT + " Fix the payment method in Meta Business Manager.",
    ),
    **_entries(
        [131045],
        Scope.PHONE,
        "This number's registration with WhatsApp is broken (certificate error).",
        "Stop this number; the other numbers take over its contacts.",
    ),
    **_entries(
        [131047],
        Scope.RECIPIENT,
        "More than 24 hours passed since the recipient last wrote (free-form messages only).",
        "Mark this contact failed.",
    ),
    **_entries(
        [131048],
        Scope.PHONE,
        "Too many recent messages from this number were blocked or reported as spam.",
        "Pause this number; stop it for the campaign if it keeps happening.",
    ),
    **_entries(
        [131049],
        Scope.RECIPIENT,
        "Held by Meta's per-user limit: Meta limits how many marketing messages one person "
        "receives, and held this one back.",
        "Retry no sooner than 24 hours later, a few times, never after the deadline "
        "(another number would not help).",
    ),
    **_entries(
        [131050],
        Scope.RECIPIENT,
        "The recipient has stopped marketing messages from this business.",
        "Mark this contact failed and record an opt-out.",
        records_opt_out=True,
    ),
    **_entries(
        [131051],
        Scope.RECIPIENT,
        "The recipient cannot receive this type of message.",
        "Mark this contact failed.",
    ),
    **_entries(
        [131052, 131053],
        Scope.PAYLOAD,
        "Meta could not download or upload the media (image, video or document) of the message.",
        "Mark this contact failed with Meta's reason; check that the media link works.",
    ),
    **_entries(
        [131056],
        Scope.RECIPIENT,
        "Too many messages to this recipient from this number in a short time.",
        "Retry this contact later, waiting 4, 16, 64... seconds (4^n); fail it after a few tries.",
        retry_after_s=4.0,
    ),
    **_entries(
        [131057],
        Scope.TRANSIENT,
        "The account is in maintenance, usually its throughput upgrade, for about a minute.",
        "Wait about a minute and resend the same message.",
        retry_after_s=60.0,
    ),
    **_entries(
        [131064],
        Scope.ACCOUNT,
        "The account reached its messaging limit for this template category.",
        _EXHAUST_ACCOUNT,
    ),
    **_entries(
        [132000],
        Scope.TEMPLATE,
        "The template expects a different number of variables than were sent.",
        _NEXT_TEMPLATE,
    ),
    **_entries(
        [132001],
        Scope.TEMPLATE,
        "The template does not exist in this language or is not approved.",
        _NEXT_TEMPLATE,
    ),
    **_entries(
        [132005],
        Scope.TEMPLATE,
        "The message text is too long once the variables are filled in.",
        _NEXT_TEMPLATE,
    ),
    **_entries(
        [132007],
        Scope.TEMPLATE,
        "The template's content violates a WhatsApp policy.",
        _NEXT_TEMPLATE,
    ),
    **_entries(
        [132015],
        Scope.TEMPLATE,
        "Meta paused the template because of low quality.",
        _NEXT_TEMPLATE + " Mark the template paused for every campaign.",
        marks_template="PAUSED",
    ),
    **_entries(
        [132016],
        Scope.TEMPLATE,
        "Meta disabled the template for good after repeated low quality.",
        _NEXT_TEMPLATE + " Mark the template disabled for every campaign.",
        marks_template="DISABLED",
    ),
    **_entries(
        [132068, 132069],
        Scope.TEMPLATE,
        "The Flow used by the template is blocked or throttled.",
        _NEXT_TEMPLATE,
    ),
    **_entries(
        [133010],
        Scope.PHONE,
        "This number is not registered with the WhatsApp Cloud API.",
        "Stop this number; the other numbers take over its contacts.",
    ),
    # Codes outside META_API.md's table that Meta documents and that do reach senders.
    **_entries(
        [1, 2, 133004],
        Scope.TRANSIENT,
        "Meta's API had a temporary problem.",
        "Retry the same message with growing pauses.",
        retry_after_s=5.0,
    ),
    **_entries(
        [0, 3, 10],
        Scope.ACCOUNT,
        "The account's token cannot be authenticated or lacks a permission.",
        _EXHAUST_ACCOUNT,
    ),
    **_entries(
        [131021, 131030],
        Scope.RECIPIENT,
        "The recipient is the sending number itself, or is not on a test number's allowed list.",
        "Mark this contact failed.",
    ),
    **_entries(
        [131037],
        Scope.PHONE,
        "This number's display name has not been approved yet.",
        "Stop this number; the other numbers take over its contacts.",
    ),
    **_entries(
        [135000],
        Scope.PAYLOAD,
        "Meta rejected the message with a generic error, usually an invalid parameter.",
        "Mark this contact failed with Meta's reason.",
    ),
}

TRANSPORT_INFO = ErrorInfo(
    None,
    Scope.TRANSIENT,
    "Meta could not be reached (connection refused, timed out or name lookup failed).",
    "Resend the same message after a pause; it never reached Meta.",
    retry_after_s=2.0,
)
AMBIGUOUS_INFO = ErrorInfo(
    None,
    Scope.AMBIGUOUS,
    "The message was sent but Meta's answer never arrived; it may or may not have gone out.",
    "Do not resend now: wait for the status webhook, resend only after a grace period without one.",
)
_SERVER_ERROR = ErrorInfo(
    None,
    Scope.TRANSIENT,
    "Meta answered with a server error.",
    "Retry the same message with growing pauses.",
    retry_after_s=5.0,
)
_HTTP_429 = ErrorInfo(
    None,
    Scope.THROTTLE,
    "Meta asked TitanFlow to slow down.",
    "Wait and resend the same message.",
    retry_after_s=1.0,
)


def classify(code: int | None, *, http_status: int | None = None) -> ErrorInfo:
    """The catalogue entry for `code`, or the safest reading of an unknown failure.

    `http_status=None` means no HTTP answer (a connection problem) or a webhook error.
    """
    if code is not None and code in CATALOGUE:
        return CATALOGUE[code]
    if http_status is not None and http_status >= 500:
        return _SERVER_ERROR
    if code is None:
        return _classify_without_code(http_status)
    if http_status is None or 400 <= http_status < 500:
        # Meta adds codes (133004 "temporarily unavailable" is one): an unknown one is retried
        # a few times with growing pauses rather than failing a contact that may go through.
        return ErrorInfo(
            code,
            Scope.TRANSIENT,
            f"Meta refused this message with error code {code}, which TitanFlow does not know.",
            "Retry the same message a few times with growing pauses, then mark it failed.",
            retry_after_s=5.0,
        )
    return _unexpected(code, http_status)


def _classify_without_code(http_status: int | None) -> ErrorInfo:
    if http_status is None:
        return TRANSPORT_INFO
    if http_status == 429:
        return _HTTP_429
    if 400 <= http_status < 500:
        return ErrorInfo(
            None,
            Scope.PAYLOAD,
            f"Meta rejected this message with HTTP {http_status} and no error code.",
            "Mark this contact failed; do not switch numbers.",
        )
    return _unexpected(None, http_status)


def _unexpected(code: int | None, http_status: int) -> ErrorInfo:
    # A 2xx or 3xx failure is no answer from Meta's API: most likely a wrong Graph URL or proxy.
    return ErrorInfo(
        code,
        Scope.UNKNOWN,
        f"The Graph API answered HTTP {http_status}, which is not a Meta answer.",
        "Nothing was sent; check the WhatsApp Graph URL setting before resending.",
    )


class MetaAPIError(Exception):
    """A failed Graph API call; `info` says what to do about it."""

    def __init__(
        self,
        title: str = "",
        *,
        code: int | None = None,
        subcode: int | None = None,
        details: str = "",
        http_status: int | None = None,
        fbtrace_id: str = "",
        retry_after: float | None = None,
    ):
        super().__init__(title)
        self.title = title
        self.code = code
        self.subcode = subcode
        self.details = details
        self.http_status = http_status
        self.fbtrace_id = fbtrace_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        prefix = f"(#{self.code}) " if self.code is not None else ""
        suffix = f": {self.details}" if self.details and self.details != self.title else ""
        status = f" [HTTP {self.http_status}]" if self.http_status is not None else ""
        return f"{prefix}{self.title}{suffix}{status}"

    def __reduce__(self):
        # Celery pickles exceptions between processes; keep every attribute across the trip.
        return _rebuild, (type(self), self.title, self._state())

    def _state(self) -> dict:
        return {
            "code": self.code,
            "subcode": self.subcode,
            "details": self.details,
            "http_status": self.http_status,
            "fbtrace_id": self.fbtrace_id,
            "retry_after": self.retry_after,
        }

    @property
    def info(self) -> ErrorInfo:
        return classify(self.code, http_status=self.http_status)

    @classmethod
    def from_response(
        cls, status: int, body: bytes, headers: Mapping[str, str] | None = None
    ) -> "MetaAPIError":
        """Build the error from an HTTP answer; any body, JSON or not, is accepted."""
        error = _error_object(body)
        return cls(
            str(error.get("message") or error.get("error_user_title") or f"HTTP {status}"),
            code=_int_or_none(error.get("code")),
            subcode=_int_or_none(error.get("error_subcode")),
            details=_details(error),
            http_status=status,
            fbtrace_id=str(error.get("fbtrace_id") or ""),
            retry_after=retry_after_from_headers(headers or {}),
        )


class TransportError(MetaAPIError):
    """The request never reached Meta (refused, connect timeout, DNS): safe to resend."""

    @property
    def info(self) -> ErrorInfo:
        return TRANSPORT_INFO


class AmbiguousSendError(MetaAPIError):
    """The request went out but no answer came back: resending could send twice."""

    @property
    def info(self) -> ErrorInfo:
        return AMBIGUOUS_INFO


def _rebuild(cls, title, state):
    return cls(title, **state)


def _error_object(body: bytes) -> dict:
    try:
        parsed = json.loads(body)
    except (ValueError, TypeError):
        return {}
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else {}


def _details(error: dict) -> str:
    data = error.get("error_data")
    if isinstance(data, dict) and data.get("details"):
        return str(data["details"])
    return str(error.get("error_user_msg") or "")


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """Seconds Meta asks us to wait, from `x-business-use-case-usage` or `Retry-After`."""
    lowered = {key.lower(): value for key, value in headers.items()}
    usage = _usage_wait(lowered.get("x-business-use-case-usage"))
    if usage:
        return usage
    return _retry_after_wait(lowered.get("retry-after"))


def _usage_wait(raw: str | None) -> float | None:
    # {"<business id>": [{"type": ..., "estimated_time_to_regain_access": <minutes>}, ...]}
    try:
        usage = json.loads(raw) if raw else {}
    except ValueError:
        return None
    if not isinstance(usage, dict):
        return None
    minutes = [
        _number(entry.get("estimated_time_to_regain_access"))
        for entries in usage.values()
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    longest = max((m for m in minutes if m), default=0.0)
    return longest * 60.0 if longest > 0 else None


def _retry_after_wait(raw: str | None) -> float | None:
    if not raw:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return seconds if seconds > 0 else None
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    wait = moment.timestamp() - time.time()
    return wait if wait > 0 else None


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None

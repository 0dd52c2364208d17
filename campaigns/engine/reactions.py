"""What the engine does about one failed send, decided from Meta's error code alone.

The slice (errors answered by the Graph API) and `failures.failed_statuses_apply` (errors Meta
reports later in a failed status webhook) both decide here, so the two paths cannot drift apart.
"""

import random
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.utils import timezone

from titanflow.whatsapp.errors import ErrorInfo, Scope

PAIR_RATE_CODE = 131056
MARKETING_CAP_CODE = 131049
SPAM_CODE = 131048
PAIR_RATE_MAX_ATTEMPTS = 3
MAX_BACKOFF_S = 300.0
THROTTLE_ALLOWANCE = 3


class Action(StrEnum):
    NEXT_TEMPLATE = "next_template"  # mark the template failed for the sender, resend at once
    EXHAUST_PHONE = "exhaust_phone"  # stop this sender; others take its contacts
    EXHAUST_ACCOUNT = "exhaust_account"  # stop every sender of the account
    FAIL = "fail"  # end the contact with the reason
    RETRY_LATER = "retry_later"  # back to pending after `delay_s`, same payload
    SLOW_DOWN = "slow_down"  # cut the number's rate, then resend the same payload
    AWAIT = "await"  # may have gone out: wait for the webhook, resend only after a grace period
    PAUSE_CAMPAIGN = "pause_campaign"  # an answer nobody understands: stop and let a human look


# Decisions after which the contact is sent again (by this number or another).
_AGAIN = frozenset({Action.RETRY_LATER, Action.SLOW_DOWN})


@dataclass(frozen=True)
class Decision:
    action: Action
    delay_s: float = 0.0


def decide(info: ErrorInfo, *, attempts: int, spam_strikes: int = 0, deadline=None) -> Decision:
    """`attempts`: earlier tries of this contact; `spam_strikes`: the number's recent 131048s.

    Every decision that sends the contact again counts an attempt; past ENGINE_MAX_ATTEMPTS the
    contact fails with its reason, whichever path (the API's answer or a webhook) reported it."""
    if info.code == MARKETING_CAP_CODE:
        return _marketing_cap(attempts, deadline)
    decision = _decide(info, attempts, spam_strikes)
    cap = settings.ENGINE_MAX_ATTEMPTS
    if decision.action == Action.SLOW_DOWN:
        # Too fast is the number's state, not the person's: a burst of 130429s may hit one
        # contact several times, so throttles get a larger (still finite) allowance.
        cap *= THROTTLE_ALLOWANCE
    if decision.action in _AGAIN and attempts + 1 >= cap:
        return Decision(Action.FAIL)
    return decision


def _decide(info: ErrorInfo, attempts: int, spam_strikes: int) -> Decision:
    if info.scope == Scope.TEMPLATE:
        return Decision(Action.NEXT_TEMPLATE)
    if info.scope == Scope.ACCOUNT:
        return _account(info)
    if info.scope == Scope.PHONE:
        return _phone(info, spam_strikes)
    if info.scope == Scope.RECIPIENT:
        return _recipient(info, attempts)
    if info.scope == Scope.PAYLOAD:
        return Decision(Action.FAIL)
    if info.scope == Scope.THROTTLE:
        return Decision(Action.SLOW_DOWN, _jitter(info.retry_after_s or 1.0))
    if info.scope == Scope.TRANSIENT:
        return _transient(info, attempts)
    if info.scope == Scope.AMBIGUOUS:
        return Decision(Action.AWAIT, settings.ENGINE_AMBIGUOUS_GRACE_SECONDS)
    return Decision(Action.PAUSE_CAMPAIGN)


def _account(info: ErrorInfo) -> Decision:
    # The catalogue says so and Meta means it: a locked, blocked or unpaid account (or a bad
    # token) sends from none of its numbers, so all of them stop at the first answer.
    return Decision(Action.EXHAUST_ACCOUNT)


def _phone(info: ErrorInfo, spam_strikes: int) -> Decision:
    if info.code == SPAM_CODE and spam_strikes < settings.ENGINE_SPAM_THRESHOLD:
        return Decision(Action.SLOW_DOWN, _jitter(30.0))
    return Decision(Action.EXHAUST_PHONE)


def _recipient(info: ErrorInfo, attempts: int) -> Decision:
    if info.code == PAIR_RATE_CODE and attempts < PAIR_RATE_MAX_ATTEMPTS:
        return Decision(Action.RETRY_LATER, _jitter(4.0 ** (attempts + 1)))
    return Decision(Action.FAIL)


def _marketing_cap(attempts: int, deadline) -> Decision:
    # Meta's per-user marketing cap: another number would not help and a retry within 24 h
    # is refused again; past the retries or the campaign's deadline the contact ends failed.
    delay = settings.ENGINE_MARKETING_CAP_RETRY_SECONDS
    if attempts >= settings.ENGINE_MARKETING_CAP_RETRIES:
        return Decision(Action.FAIL)
    if deadline is not None and timezone.now() + timedelta(seconds=delay) > deadline:
        return Decision(Action.FAIL)
    return Decision(Action.RETRY_LATER, delay)


def _transient(info: ErrorInfo, attempts: int) -> Decision:
    base = info.retry_after_s or 2.0
    return Decision(Action.RETRY_LATER, _jitter(min(base * 2**attempts, MAX_BACKOFF_S)))


def _jitter(seconds: float) -> float:
    # Spread retries so a burst of failures does not come back as a burst.
    return seconds * random.uniform(0.75, 1.25)


def failure_reason(info: ErrorInfo, details: str = "") -> str:
    """The sentence stored on a contact or sender: Meta's meaning, its details and the code."""
    code = f" ({info.code})" if info.code is not None else ""
    extra = f" Meta said: {details}" if details else ""
    return f"{info.meaning}{code}{extra}"

"""What the webhook door decides for one POST, shared by the Django view and the WSGI fast path.

Only what must happen before the 200: the size, the signature and that the body looks like a
JSON object; then the delivery is stored durably and the processor woken. Parsing waits for
the processor, so the answer takes milliseconds whatever the delivery holds; only a delivery
signed with an account's own secret is parsed here, to check whose entries it carries.
"""

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.conf import settings

from titanflow.whatsapp.signature import verify_signature
from webhooks.committer import delivery_store
from webhooks.kick import processor_kick
from webhooks.ownership import delivery_belongs
from webhooks.secrets import AccountSecrets, account_secrets, app_secret

# Meta's webhook URL on the web server (webhooks/urls.py) and on the door (door_server.py).
WEBHOOK_PATH = "/webhooks/whatsapp/"
MAX_BODY_BYTES = 3 * 1024 * 1024
TOO_LARGE = (413, "Delivery larger than 3 MB.")
NO_SECRET = (403, "No app secret is configured; deliveries cannot be verified.")
BAD_SIGNATURE = (403, "Invalid signature.")
NOT_ITS_ACCOUNT = (403, "Signed with an account's app secret, for another account's items.")
CHALLENGE_FAILED = (403, "Verification failed.")
_JSON_WHITESPACE = b" \t\r\n"


@dataclass(frozen=True)
class Verdict:
    refusal: tuple[int, str] | None = None
    app_signed: bool = False
    # The accounts' own secrets were needed and the loader had none at hand (see door_server).
    needs_accounts: bool = False


def delivery_accept(*, body: bytes, signature: str | None) -> tuple[int, str]:
    """Stores a genuine delivery and answers (200, "ok"), or says why it is refused."""
    verdict = delivery_verdict(body=body, signature=signature)
    if verdict.refusal:
        return verdict.refusal
    # Postgres, not a Redis stream: Redis here keeps nothing across a restart, and a stream would
    # need this same INSERT behind it to be durable. Deliveries arriving together share one
    # commit (committer.py); each is answered only once its commit is done.
    delivery_store(body, app_signed=verdict.app_signed)
    processor_kick()
    return 200, "ok"


def delivery_verdict(
    *,
    body: bytes,
    signature: str | None,
    accounts: Callable[[], AccountSecrets | None] = account_secrets,
) -> Verdict:
    """Whether a delivery may be stored, before anything is stored: size, signature, shape."""
    if len(body) > MAX_BODY_BYTES:
        return Verdict(TOO_LARGE)
    if not signature:
        return Verdict((401, "Missing X-Hub-Signature-256."))
    own = app_secret()
    # Meta signs with the app's secret: one HMAC and no parse for nearly every delivery.
    app_signed = bool(own) and verify_signature(own, body, signature)
    if not app_signed:
        known = accounts()
        if known is None:
            return Verdict(needs_accounts=True)
        refusal = _account_refusal(body, signature, own, known)
        if refusal:
            return Verdict(refusal)
    # A JSON object starts with '{'. Checking that byte (not a full parse, which costs
    # milliseconds for a 1,000-status delivery) refuses form posts and garbage at no cost;
    # the processor records anything else that fails to parse.
    if not body.lstrip(_JSON_WHITESPACE).startswith(b"{"):
        return Verdict((400, "Body is not a JSON object."))
    return Verdict(app_signed=app_signed)


def challenge_answer(query: Mapping[str, str]) -> tuple[int, str]:
    """Meta's subscription check: echo `hub.challenge` when the verify token matches."""
    token = query.get("hub.verify_token", "")
    expected = settings.META_VERIFY_TOKEN
    if (
        query.get("hub.mode") == "subscribe"
        and expected
        and hmac.compare_digest(token.encode(), expected.encode())
    ):
        return 200, query.get("hub.challenge", "")
    return CHALLENGE_FAILED


def _account_refusal(
    body: bytes, signature: str, own: str, accounts: AccountSecrets
) -> tuple[int, str] | None:
    if not own and not accounts.waba_ids_by_secret:
        return NO_SECRET
    # The secrets are distinct, so at most one of them signed this body.
    signed_for = next(
        (
            waba_ids
            for secret, waba_ids in accounts.waba_ids_by_secret.items()
            if verify_signature(secret, body, signature)
        ),
        None,
    )
    if signed_for is None:
        return BAD_SIGNATURE
    if not delivery_belongs(body, waba_ids=signed_for, accounts=accounts):
        return NOT_ITS_ACCOUNT
    return None

"""What the webhook door decides for one POST, shared by the Django view and the WSGI fast path.

Only what must happen before the 200: the size, the signature and that the body looks like a
JSON object; then the delivery is stored durably and the processor woken. Parsing waits for
the processor, so the answer takes milliseconds whatever the delivery holds; only a delivery
signed with an account's own secret is parsed here, to check whose entries it carries.
"""

from titanflow.whatsapp.signature import verify_signature
from webhooks.committer import delivery_store
from webhooks.kick import processor_kick
from webhooks.ownership import delivery_belongs
from webhooks.secrets import account_secrets, app_secret

MAX_BODY_BYTES = 3 * 1024 * 1024
TOO_LARGE = (413, "Delivery larger than 3 MB.")
NO_SECRET = (403, "No app secret is configured; deliveries cannot be verified.")
BAD_SIGNATURE = (403, "Invalid signature.")
NOT_ITS_ACCOUNT = (403, "Signed with an account's app secret, for another account's items.")
_JSON_WHITESPACE = b" \t\r\n"


def delivery_accept(*, body: bytes, signature: str | None) -> tuple[int, str]:
    """Stores a genuine delivery and answers (200, "ok"), or says why it is refused."""
    if len(body) > MAX_BODY_BYTES:
        return TOO_LARGE
    if not signature:
        return 401, "Missing X-Hub-Signature-256."
    refusal, app_signed = _signature_refusal(body, signature)
    if refusal:
        return refusal
    # A JSON object starts with '{'. Checking that byte (not a full parse, which costs
    # milliseconds for a 1,000-status delivery) refuses form posts and garbage at no cost;
    # the processor records anything else that fails to parse.
    if not body.lstrip(_JSON_WHITESPACE).startswith(b"{"):
        return 400, "Body is not a JSON object."
    # Postgres, not a Redis stream: Redis here keeps nothing across a restart, and a stream would
    # need this same INSERT behind it to be durable. Deliveries arriving together share one
    # commit (committer.py); each is answered only once its commit is done.
    delivery_store(body, app_signed=app_signed)
    processor_kick()
    return 200, "ok"


def _signature_refusal(body: bytes, signature: str) -> tuple[tuple[int, str] | None, bool]:
    """(why it is refused or None, whether META_APP_SECRET signed it)."""
    own = app_secret()
    # Meta signs with the app's secret: one HMAC and no parse for nearly every delivery.
    if own and verify_signature(own, body, signature):
        return None, True
    return _account_refusal(body, signature, own), False


def _account_refusal(body: bytes, signature: str, own: str) -> tuple[int, str] | None:
    accounts = account_secrets()
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

"""The one place that signs and checks Meta's `X-Hub-Signature-256` header."""

import hashlib
import hmac

PREFIX = "sha256="


def compute_signature(secret: str | bytes, body: bytes) -> str:
    """Return `sha256=<hex HMAC-SHA256 of the raw body>`, as Meta sends it."""
    key = secret.encode() if isinstance(secret, str) else secret
    return PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """True only when `header` is the signature of `body` under a non-empty `secret`."""
    if not secret or not header:
        return False
    header = header.strip()
    if not header.startswith(PREFIX):
        return False
    expected = compute_signature(secret, body)
    # Bytes, because compare_digest refuses non-ASCII str and a forged header may hold any text.
    return hmac.compare_digest(expected.encode(), header.lower().encode("utf-8", "replace"))

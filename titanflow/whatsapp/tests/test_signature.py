import hashlib
import hmac

from titanflow.whatsapp.signature import compute_signature, verify_signature

BODY = b'{"object":"whatsapp_business_account","entry":[]}'
SECRET = "app-secret-123"


def meta_header(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_signature_matches_what_meta_computes():
    assert compute_signature(SECRET, BODY) == meta_header(SECRET, BODY)
    assert compute_signature(SECRET.encode(), BODY) == meta_header(SECRET, BODY)


def test_genuine_delivery_is_accepted():
    assert verify_signature(SECRET, BODY, meta_header(SECRET, BODY))
    assert verify_signature(SECRET.encode(), BODY, meta_header(SECRET, BODY))


def test_tampered_body_is_refused():
    assert not verify_signature(SECRET, BODY + b" ", meta_header(SECRET, BODY))


def test_signature_from_another_secret_is_refused():
    assert not verify_signature(SECRET, BODY, meta_header("other-secret", BODY))


def test_missing_or_malformed_header_is_refused():
    digest = meta_header(SECRET, BODY).removeprefix("sha256=")
    assert not verify_signature(SECRET, BODY, None)
    assert not verify_signature(SECRET, BODY, "")
    assert not verify_signature(SECRET, BODY, digest)
    assert not verify_signature(SECRET, BODY, "sha1=" + digest)
    assert not verify_signature(SECRET, BODY, "sha256=")
    assert not verify_signature(SECRET, BODY, "sha256=" + digest[:-2])
    assert not verify_signature(SECRET, BODY, "sha256=é" + digest[1:])


def test_no_secret_configured_refuses_everything():
    assert not verify_signature("", BODY, meta_header("", BODY))
    assert not verify_signature(b"", BODY, compute_signature(b"", BODY))

"""Encryption at rest for secrets stored in the database (access tokens, app secrets).

The key comes from FIELD_ENCRYPTION_KEY. Any string works: it is stretched to a Fernet key with
SHA-256, so operators can use a password manager's output. Several comma-separated keys may be
given; the first encrypts, all decrypt (key rotation).
"""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@cache
def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.FIELD_ENCRYPTION_KEY.split(",") if k.strip()]
    return MultiFernet(
        [Fernet(base64.urlsafe_b64encode(hashlib.sha256(k.encode()).digest())) for k in keys]
    )


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError(
            "cannot decrypt: FIELD_ENCRYPTION_KEY does not match the stored data"
        ) from exc


class EncryptedTextField(models.TextField):
    """Stores ciphertext; Python code only ever sees the plain text."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)

"""The app secrets a delivery may be signed with, cached so the webhook door queries nothing.

META_APP_SECRET is the project's own Meta app and speaks for every account. An account's own
secret was typed in by whoever added the account, so it speaks only for that account: the door
checks that a delivery it signed names no other account's WABA or number.
"""

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from templates_app.models import PhoneNumber, WhatsAppAccount

CACHE_SECONDS = 60


@dataclass(frozen=True)
class AccountSecrets:
    # One Meta app may serve several WABAs, so one secret may speak for several accounts.
    waba_ids_by_secret: dict[str, frozenset[str]]
    # Which WABA owns each known number, to refuse a change about another account's number.
    waba_by_phone: dict[str, str]


_EMPTY = AccountSecrets({}, {})
_lock = threading.Lock()
_cached: tuple[float, AccountSecrets] = (0.0, _EMPTY)


def app_secret() -> str:
    return settings.META_APP_SECRET


def account_secrets() -> AccountSecrets:
    global _cached
    expires, secrets = _cached
    if time.monotonic() < expires:
        return secrets
    with _lock:
        secrets = _account_secrets_load()
        _cached = (time.monotonic() + CACHE_SECONDS, secrets)
    return secrets


def account_secrets_if_fresh() -> AccountSecrets | None:
    """The cached secrets, or None when they must be read again (which queries the database)."""
    expires, secrets = _cached
    return secrets if time.monotonic() < expires else None


def _account_secrets_load() -> AccountSecrets:
    # The secrets are encrypted at rest, so they are compared here rather than in SQL.
    accounts = WhatsAppAccount.objects.order_by("id").values_list("waba_id", "app_secret")
    by_secret: dict[str, set[str]] = {}
    for waba_id, secret in accounts:
        if secret:
            by_secret.setdefault(secret, set()).add(waba_id)
    phones = PhoneNumber.objects.order_by("id").values_list("phone_number_id", "account__waba_id")
    return AccountSecrets(
        waba_ids_by_secret={secret: frozenset(wabas) for secret, wabas in by_secret.items()},
        waba_by_phone=dict(phones),
    )


def clear_secret_cache() -> None:
    global _cached
    _cached = (0.0, _EMPTY)


@receiver(post_save, sender=WhatsAppAccount)
@receiver(post_delete, sender=WhatsAppAccount)
def _account_changed(**kwargs) -> None:
    # Other processes catch up within CACHE_SECONDS; this one at once.
    clear_secret_cache()

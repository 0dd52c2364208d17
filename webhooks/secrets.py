"""The app secrets a delivery may be signed with, cached so the webhook door queries nothing."""

import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from templates_app.models import WhatsAppAccount

CACHE_SECONDS = 60

_lock = threading.Lock()
_cached: tuple[float, tuple[str, ...]] = (0.0, ())


def signing_secrets() -> tuple[str, ...]:
    """META_APP_SECRET and every account's own app secret; empty means refuse everything.

    The body is not parsed before it is authenticated, so the WABA it comes from is unknown:
    a delivery is genuine when any of these secrets signed it.
    """
    app_secret = settings.META_APP_SECRET
    return ((app_secret,) if app_secret else ()) + _account_secrets()


def _account_secrets() -> tuple[str, ...]:
    global _cached
    expires, secrets = _cached
    if time.monotonic() < expires:
        return secrets
    with _lock:
        values = WhatsAppAccount.objects.order_by("id").values_list("app_secret", flat=True)
        secrets = tuple(dict.fromkeys(s for s in values if s))
        _cached = (time.monotonic() + CACHE_SECONDS, secrets)
    return secrets


def clear_secret_cache() -> None:
    global _cached
    _cached = (0.0, ())


@receiver(post_save, sender=WhatsAppAccount)
@receiver(post_delete, sender=WhatsAppAccount)
def _account_changed(**kwargs) -> None:
    # Other processes catch up within CACHE_SECONDS; this one at once.
    clear_secret_cache()

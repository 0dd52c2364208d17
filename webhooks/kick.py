"""Wakes the processor from the webhook door, cheaply and never at the door's expense."""

import logging
import time
from functools import cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

KICK_KEY = "webhooks:kick"
# At most one enqueue per window: a burst of deliveries wakes one run, which drains them all.
KICK_WINDOW_MS = 100

# This process's own window: most deliveries of a burst skip even the Redis round trip.
_local_next_try = 0.0


@cache
def _client(url: str) -> redis.Redis:
    # Short timeouts: when Redis is away the delivery is already safe in Postgres, and the beat
    # schedule picks it up; the answer to Meta must not wait on Redis.
    return redis.Redis.from_url(url, socket_connect_timeout=0.05, socket_timeout=0.1)


def processor_kick() -> bool:
    """Enqueues `webhooks.tasks.process_pending` unless one was enqueued in the last window."""
    global _local_next_try
    now = time.monotonic()
    if now < _local_next_try:
        return False
    _local_next_try = now + KICK_WINDOW_MS / 1000
    # Imported here, past the window check: nearly every delivery returns above, and an import
    # statement run per delivery was a twelfth of the door's Python time.
    from webhooks.tasks import process_pending

    try:
        if not _client(settings.REDIS_URL).set(KICK_KEY, 1, nx=True, px=KICK_WINDOW_MS):
            return False
        process_pending.apply_async(retry=False)
    except Exception as exc:  # redis and kombu raise several kinds; none may fail the delivery
        logger.warning("could not wake the webhook processor: %s", exc)
        return False
    return True


def kick_window_reset() -> None:
    """Forgets this process's window (tests post bursts that must each be judged afresh)."""
    global _local_next_try
    _local_next_try = 0.0

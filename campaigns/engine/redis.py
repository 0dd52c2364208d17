"""The engine's one Redis connection per process, and its key names.

Keys use `phone_number_id` for numbers (the one identifier outside the database) and database ids
for senders and campaigns.
"""

import os

import redis
from django.conf import settings

_clients: dict[int, redis.Redis] = {}

GENERATION = "tf:engine:gen"


def client() -> redis.Redis:
    # A forked Celery child must not share its parent's sockets.
    pid = os.getpid()
    if pid not in _clients:
        _clients.clear()
        _clients[pid] = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=3
        )
    return _clients[pid]


def generation_bump() -> None:
    """Tells every running slice to re-read its campaign, sender and templates now."""
    client().incr(GENERATION)


def sender_lock_key(sender_id: int) -> str:
    return f"tf:lock:sender:{sender_id}"


def sender_queued_key(sender_id: int) -> str:
    return f"tf:queued:sender:{sender_id}"


def bucket_key(phone_number_id: str) -> str:
    return f"tf:bucket:{phone_number_id}"


def campaign_bucket_key(campaign_id: int) -> str:
    return f"tf:bucket:campaign:{campaign_id}"


def spam_key(phone_number_id: str) -> str:
    return f"tf:spam:{phone_number_id}"

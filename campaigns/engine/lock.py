"""The one-slice-per-sender lock: short, renewed by the running slice, released by token.

A killed worker stops renewing, so its senders are free again after ENGINE_LOCK_SECONDS (not a
whole lease) and the beat's watch queues them anew. The lock only keeps two slices of one
sender from sharing its pace; correctness never depends on it (claims are fenced by token).
"""

import logging

import redis
from django.conf import settings

from campaigns.engine import redis as engine_redis

log = logging.getLogger(__name__)

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SenderLock:
    def __init__(self, *, sender_id: int, token: int):
        self.sender_id = sender_id
        self.key = engine_redis.sender_lock_key(sender_id)
        self.value = str(token)
        self.ttl_ms = int(settings.ENGINE_LOCK_SECONDS * 1000)

    def acquire(self) -> bool:
        client = engine_redis.client()
        # This slice is running now: the next one may be queued again from here on.
        client.delete(engine_redis.sender_queued_key(self.sender_id))
        return bool(client.set(self.key, self.value, nx=True, px=self.ttl_ms))

    def extend(self) -> bool:
        """False when the lock is no longer ours (it expired) or Redis cannot be reached."""
        try:
            return bool(engine_redis.client().eval(_EXTEND, 1, self.key, self.value, self.ttl_ms))
        except redis.RedisError as exc:
            log.warning("could not renew the lock of sender %s: %s", self.sender_id, exc)
            return False

    def release(self) -> None:
        try:
            engine_redis.client().eval(_UNLOCK, 1, self.key, self.value)
        except redis.RedisError as exc:  # it expires by itself
            log.warning("could not release the lock of sender %s: %s", self.sender_id, exc)

"""Hot-path statement counting for `manage.py bench`: every statement a slice sends to Postgres,
and every message it got accepted, added up in Redis across worker processes."""

from contextlib import contextmanager

from django.conf import settings
from django.db import connection

from campaigns.engine import redis as engine_redis

STATEMENTS = "tf:bench:statements"
SENT = "tf:bench:sent"


@contextmanager
def statements_counted():
    """Counts the statements run inside the block when ENGINE_COUNT_STATEMENTS is on."""
    if not settings.ENGINE_COUNT_STATEMENTS:
        yield None
        return
    tally = Tally()
    with connection.execute_wrapper(tally):
        yield tally
    engine_redis.client().incrby(STATEMENTS, tally.statements)


class Tally:
    def __init__(self):
        self.statements = 0

    def __call__(self, execute, sql, params, many, context):
        self.statements += 1
        return execute(sql, params, many, context)


def sent_add(count: int) -> None:
    if settings.ENGINE_COUNT_STATEMENTS and count:
        engine_redis.client().incrby(SENT, count)


def totals() -> dict:
    redis = engine_redis.client()
    return {"statements": int(redis.get(STATEMENTS) or 0), "sent": int(redis.get(SENT) or 0)}


def reset() -> None:
    engine_redis.client().delete(STATEMENTS, SENT)

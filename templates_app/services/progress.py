"""Where a running sync reports how far it got, so the page can poll it without a reload.

Progress lives in the cache (Redis): it is a view of work in flight, not state to keep. A lost
entry only means the page shows "unknown" until the next sync.
"""

import uuid
from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone

TTL_SECONDS = 6 * 3600
ACTIVE_STATES = ("queued", "running", "waiting")
# A sync silent for this long lost its worker; a new click may start another.
STALE_AFTER = timedelta(minutes=15)


def _key(sync_id: str) -> str:
    return f"templates_app:sync:{sync_id}"


def _account_key(account_id: int) -> str:
    return f"templates_app:sync:account:{account_id}"


class SyncProgress:
    """One sync run of one account: its state, counters and the sentence shown to marketers."""

    def __init__(self, sync_id: str):
        self.sync_id = sync_id

    @classmethod
    def start(cls, *, account_id: int) -> "SyncProgress":
        progress = cls(uuid.uuid4().hex)
        progress._write(
            {
                "sync_id": progress.sync_id,
                "account_id": account_id,
                "state": "queued",
                "phones": 0,
                "templates": 0,
                "deleted": 0,
                "message": "Waiting for a worker…",
                "started_at": timezone.now().isoformat(),
            }
        )
        cache.set(_account_key(account_id), progress.sync_id, TTL_SECONDS)
        return progress

    @classmethod
    def latest(cls, *, account_id: int) -> dict | None:
        sync_id = cache.get(_account_key(account_id))
        return cls(sync_id).read() if sync_id else None

    @classmethod
    def latest_many(cls, *, account_ids: list[int]) -> dict[int, dict]:
        ids = cache.get_many([_account_key(pk) for pk in account_ids])
        states = cache.get_many([_key(sync_id) for sync_id in ids.values()])
        by_account = {}
        for state in states.values():
            by_account[state["account_id"]] = state
        return by_account

    def read(self) -> dict | None:
        return cache.get(_key(self.sync_id))

    def update(self, **fields) -> None:
        self._write({**(self.read() or {"sync_id": self.sync_id}), **fields})

    def _write(self, state: dict) -> None:
        state["updated_at"] = timezone.now().isoformat()
        cache.set(_key(self.sync_id), state, TTL_SECONDS)


def is_active(state: dict | None) -> bool:
    """Queued, running or waiting to retry, and heard from recently."""
    if not state or state.get("state") not in ACTIVE_STATES:
        return False
    return timezone.now() - datetime.fromisoformat(state["updated_at"]) < STALE_AFTER

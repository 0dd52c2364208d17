"""What every in-process engine test starts from: short slices and flushes, no Redis state left
by an earlier test, and slices that are queued by the code under test but never run by Celery."""

from campaigns.engine import dispatch
from campaigns.engine import redis as engine_redis


def engine_test_setup(settings, monkeypatch, *, on_queue=lambda *args: None) -> None:
    settings.ENGINE_SLICE_SECONDS = 0.5
    settings.ENGINE_SLICE_MAX_SECONDS = 0.5  # each slice ends on time: tests count slices
    settings.ENGINE_FLUSH_SECONDS = 0.2
    settings.ENGINE_READ_TIMEOUT_SECONDS = 1.0
    client = engine_redis.client()
    for key in client.scan_iter("tf:*"):
        client.delete(key)
    # Tasks an earlier test left queued would read as slices waiting for a worker.
    client.delete(*dispatch.send_queue_keys())
    monkeypatch.setattr(dispatch, "_send", on_queue)

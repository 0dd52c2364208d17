"""What every in-process engine test starts from: short slices and flushes, no Redis state left
by an earlier test, and slices that are queued by the code under test but never run by Celery."""

from contextlib import contextmanager

from campaigns.engine import dispatch
from campaigns.engine import redis as engine_redis
from campaigns.engine.slice import sender_run_slice
from campaigns.models import Campaign
from titanflow.simulator.testing import start_simulator


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


def campaign_drive(campaign: Campaign, *, rounds: int) -> Campaign:
    """Runs slices for every active sender, round-robin, until the campaign stops running."""
    for _ in range(rounds):
        campaign.refresh_from_db()
        if campaign.status != Campaign.Status.RUNNING:
            return campaign
        senders = campaign.senders.filter(state="active").order_by("id")
        for sender_id in senders.values_list("id", flat=True):
            sender_run_slice(campaign_id=campaign.pk, sender_id=sender_id)
    campaign.refresh_from_db()
    return campaign


@contextmanager
def simulators(settings):
    """`start(world, scenario=None)` starts a simulator the engine talks to; all stop on exit."""
    started = []

    def start(world: dict, *, scenario=None):
        handle = start_simulator(world=world)
        if scenario:
            handle.set_scenario({"rules": scenario})
        settings.WHATSAPP_GRAPH_URL = handle.url
        started.append(handle)
        return handle

    try:
        yield start
    finally:
        for handle in started:
            handle.stop()

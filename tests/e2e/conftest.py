"""End-to-end harness: the in-process Meta simulator posting signed webhooks to a live server,
and a real Celery worker process on the test database and this run's Redis."""

from contextlib import contextmanager

import pytest
from django.conf import settings

from campaigns.engine import processes
from campaigns.engine import redis as engine_redis
from campaigns.engine.staging import campaign_stage, world_dict
from campaigns.models import Campaign
from tests.e2e.stack import wait_until  # noqa: F401 (the e2e modules' one waiting helper)
from titanflow.simulator.testing import start_simulator

NUMBERS = 3
MPS = 50
# Short slices, leases and grace periods keep the whole suite within a few minutes.
ENGINE = {
    "ENGINE_SLICE_SECONDS": 0.5,
    "ENGINE_FLUSH_SECONDS": 0.2,
    "ENGINE_READ_TIMEOUT_SECONDS": 3.0,
    "ENGINE_LEASE_SECONDS": 5.0,
    "ENGINE_LOCK_SECONDS": 2.0,
    "ENGINE_AMBIGUOUS_GRACE_SECONDS": 25.0,
}


@pytest.fixture
def engine_settings(settings):
    for key, value in ENGINE.items():
        setattr(settings, key, value)
    redis = engine_redis.client()
    for key in [*redis.scan_iter("tf:*"), *settings.WORK_QUEUES, "webhooks:kick"]:
        redis.delete(key)
    return settings


SALE = "https://shop.example/sale"  # the link the tracked campaigns' body carries


@contextmanager
def simulator_for(live_server, engine_settings, **options):
    """The simulator posting its webhooks to the live server, and the engine pointed at it."""
    with start_simulator(
        world=world_dict(numbers=NUMBERS, mps=MPS),
        webhook_url=f"{live_server.url}/webhooks/whatsapp/",
        app_secret=settings.META_APP_SECRET,
        latency_ms=5,
        stage_delay_ms=(10, 50),
        **options,
    ) as handle:
        engine_settings.WHATSAPP_GRAPH_URL = handle.url
        yield handle


@contextmanager
def link_stack(live_server, engine_settings, *, name: str, **options):
    """A simulator that may open tracked links on the live server, and a worker minting them
    for that server: (simulator handle, worker process)."""
    engine_settings.PUBLIC_BASE_URL = live_server.url
    with simulator_for(live_server, engine_settings, **options) as handle:
        env = processes.child_env(
            WHATSAPP_GRAPH_URL=handle.url,
            PUBLIC_BASE_URL=live_server.url,
            LOG_LEVEL="WARNING",
            **ENGINE,
        )
        process = processes.worker_start(concurrency=NUMBERS + 1, env=env, name=name)
        try:
            yield handle, process
        finally:
            process.stop()


def tracked_campaign_stage(owner, *, contacts: int) -> Campaign:
    """A staged campaign whose body carries SALE, with click tracking on."""
    campaign = campaign_stage(
        world=world_dict(numbers=NUMBERS, mps=MPS), owner=owner, contacts=contacts
    )
    mapping = {
        key: {**rules, "body.2": {"text": f"20% at {SALE}"}}
        for key, rules in campaign.variable_mapping.items()
    }
    Campaign.objects.filter(pk=campaign.pk).update(variable_mapping=mapping, track_clicks=True)
    campaign.refresh_from_db()
    return campaign


@pytest.fixture
def meta(live_server, engine_settings):
    with simulator_for(live_server, engine_settings) as handle:
        yield handle


@pytest.fixture
def worker(meta):
    """Starts a worker; call it again after a SIGKILL to restart one."""
    started = []

    def start(**settings):
        env = processes.child_env(
            WHATSAPP_GRAPH_URL=meta.url, LOG_LEVEL="WARNING", **{**ENGINE, **settings}
        )
        # Every queue, with a process per sender and one left for webhooks and beat's jobs.
        process = processes.worker_start(concurrency=NUMBERS + 1, env=env, name="e2e-worker")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def staged(marketer):
    def stage(*, contacts: int):
        return campaign_stage(
            world=world_dict(numbers=NUMBERS, mps=MPS), owner=marketer, contacts=contacts
        )

    return stage

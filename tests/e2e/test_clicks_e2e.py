"""Tracked links end to end: a real worker mints them, the simulator reads every message and
opens its short link on the live server, and each recipient's click is counted once."""

import json

import pytest
from django.conf import settings

from campaigns.clicks.models import TrackedLink
from campaigns.engine import processes
from campaigns.engine.staging import campaign_stage, world_dict
from campaigns.models import Campaign, Message
from campaigns.services.lifecycle import campaign_launch
from tests.e2e.conftest import ENGINE, MPS, NUMBERS, wait_until
from titanflow.simulator.testing import start_simulator

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SALE = "https://shop.example/sale"


@pytest.fixture
def clicking_meta(live_server, engine_settings):
    engine_settings.PUBLIC_BASE_URL = live_server.url
    with start_simulator(
        world=world_dict(numbers=NUMBERS, mps=MPS),
        webhook_url=f"{live_server.url}/webhooks/whatsapp/",
        app_secret=settings.META_APP_SECRET,
        latency_ms=5,
        stage_delay_ms=(10, 50),
        click_rate=1.0,
    ) as handle:
        engine_settings.WHATSAPP_GRAPH_URL = handle.url
        yield handle


@pytest.fixture
def link_worker(clicking_meta, live_server):
    env = processes.child_env(
        WHATSAPP_GRAPH_URL=clicking_meta.url,
        PUBLIC_BASE_URL=live_server.url,
        LOG_LEVEL="WARNING",
        **ENGINE,
    )
    process = processes.worker_start(concurrency=NUMBERS + 1, env=env, name="clicks-worker")
    yield process
    process.stop()


def _tracked_campaign(owner, *, contacts: int) -> Campaign:
    world = world_dict(numbers=NUMBERS, mps=MPS)
    campaign = campaign_stage(world=world, owner=owner, contacts=contacts)
    mapping = {
        key: {**rules, "body.2": {"text": f"20% at {SALE}"}}
        for key, rules in campaign.variable_mapping.items()
    }
    Campaign.objects.filter(pk=campaign.pk).update(variable_mapping=mapping, track_clicks=True)
    campaign.refresh_from_db()
    return campaign


def test_every_reader_who_opens_their_link_is_counted_once_and_lands_on_the_stored_url(
    clicking_meta, link_worker, marketer
):
    campaign = campaign_launch(campaign=_tracked_campaign(marketer, contacts=40))
    links = TrackedLink.objects.filter(campaign=campaign)

    wait_until(
        lambda: links.filter(first_clicked_at__isnull=False).count() == 40,
        timeout=60,
        what="every recipient's click",
    )

    assert links.count() == 40
    assert set(links.values_list("clicks", flat=True)) == {1}
    assert set(links.values_list("url", flat=True)) == {SALE}
    assert clicking_meta.stats()["webhooks"]["clicks_by_status"] == {"302": 40}
    for message in Message.objects.filter(campaign=campaign).select_related("contact"):
        link = links.get(contact=message.contact)
        sent = json.loads(message.request_body)
        assert f"{settings.PUBLIC_BASE_URL}/r/{link.token}" in json.dumps(sent)
        assert SALE not in message.request_body

"""Tracked links end to end: a real worker mints them, the simulator reads every message and
opens its short link on the live server, and each recipient's click is counted once."""

import json

import pytest
from django.conf import settings

from campaigns.clicks.models import TrackedLink
from campaigns.models import Message
from campaigns.services.lifecycle import campaign_launch
from tests.e2e.conftest import SALE, link_stack, tracked_campaign_stage, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clicking(live_server, engine_settings):
    with link_stack(live_server, engine_settings, name="clicks-worker", click_rate=1.0) as stack:
        yield stack


def test_every_reader_who_opens_their_link_is_counted_once_and_lands_on_the_stored_url(
    clicking, marketer
):
    clicking_meta, _ = clicking
    campaign = campaign_launch(campaign=tracked_campaign_stage(marketer, contacts=40))
    links = TrackedLink.objects.filter(campaign=campaign)

    def answered():
        # The server commits a click before it answers, and the simulator counts the answer only
        # once it arrives, so both sides are awaited before either is compared.
        followed = sum(clicking_meta.stats()["webhooks"]["clicks_by_status"].values())
        return followed >= 40 and links.filter(first_clicked_at__isnull=False).count() == 40

    wait_until(answered, timeout=60, what="every recipient's click, answered")

    assert links.count() == 40
    assert set(links.values_list("clicks", flat=True)) == {1}
    assert set(links.values_list("url", flat=True)) == {SALE}
    assert clicking_meta.stats()["webhooks"]["clicks_by_status"] == {"302": 40}
    for message in Message.objects.filter(campaign=campaign).select_related("contact"):
        link = links.get(contact=message.contact)
        sent = json.loads(message.request_body)
        assert f"{settings.PUBLIC_BASE_URL}/r/{link.token}" in json.dumps(sent)
        assert SALE not in message.request_body

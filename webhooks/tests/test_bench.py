"""The processor benchmark measures what it claims: every status applied, nothing left behind."""

import pytest

from campaigns.models import Campaign, Message
from webhooks.bench import processor_benchmark
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("per_delivery", [1, 50])
def test_processor_benchmark_applies_every_status_and_cleans_up(per_delivery):
    report = processor_benchmark(statuses=500, per_delivery=per_delivery)

    assert report["applied"] == report["delivered_count"] == 500
    assert report["deliveries"] == 500 // per_delivery
    assert report["statuses_per_s"] > 0
    assert not Campaign.objects.exists()
    assert not Message.objects.exists()
    assert not WebhookEvent.objects.exists()

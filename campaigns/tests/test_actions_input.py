"""The campaign page's lifecycle buttons refuse bad typed values with a message, never a 500."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from campaigns.models import Campaign
from tests.factories import CampaignFactory


@pytest.mark.parametrize(
    ("action", "status", "data", "sentence"),
    [
        ("campaign-pause", "running", {"reason": "x\x00"}, "cannot contain NUL characters"),
        ("campaign-pause", "running", {"reason": "x" * 501}, "under 500 characters"),
        ("campaign-launch", "ready", {"scheduled_at": "2026-13-45T10:00"}, "real date and time"),
        ("campaign-retarget", "completed", {"audience": "failed", "name": "a\x00"}, "NUL"),
    ],
)
def test_a_bad_value_is_a_message_and_changes_nothing(
    marketer_client, marketer, action, status, data, sentence
):
    campaign = CampaignFactory(owner=marketer, status=status)

    response = marketer_client.post(reverse(action, kwargs={"pk": campaign.pk}), data)

    assert response.status_code == 302
    assert sentence in " ".join(str(m) for m in get_messages(response.wsgi_request))
    campaign.refresh_from_db()
    assert campaign.status == status
    assert Campaign.objects.count() == 1

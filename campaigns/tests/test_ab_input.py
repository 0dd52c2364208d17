"""A/B test and launch inputs from the API and the campaign page: a bad value is a 400 or a
message, never a 500, and changes nothing."""

import json

import pytest

from campaigns.ab.models import AbTest
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    PhoneFactory,
    SenderFactory,
    SenderTemplateFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db

HOSTILE = [
    None, "", "\x00", "x" * 5000, -1, 0, 1e308, "NaN", [], {}, [1], {"a": 1}, True, 2**31,
    2**63, "2026-13-01T00:00:00Z", "25:00", "Asia/Nowhere", "\u202e",
]  # fmt: skip


@pytest.fixture
def draft(marketer):
    phone = PhoneFactory()
    first = TemplateFactory(account=phone.account, name="arm_a")
    second = TemplateFactory(account=phone.account, name="arm_b")
    campaign = CampaignFactory(owner=marketer, status="draft")
    sender = SenderFactory(campaign=campaign, phone=phone)
    SenderTemplateFactory(sender=sender, template=first, position=0)
    ContactFactory(campaign=campaign)
    return campaign, first, second


def test_a_patch_with_an_ab_test_but_no_arms_is_a_400_naming_the_arms(marketer_client, draft):
    campaign, _, _ = draft
    response = marketer_client.patch(
        f"/api/campaigns/{campaign.pk}/",
        data=json.dumps({"ab_test": {"test_share": 30}}),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["ab_test"]["arms"] == ["This field is required."]
    assert not AbTest.objects.exists()


def test_hostile_ab_and_launch_values_never_reach_a_500(marketer_client, draft):
    campaign, first, second = draft
    base = f"/api/campaigns/{campaign.pk}/"
    served = []

    def send(method, path, body):
        response = getattr(marketer_client, method)(
            path, data=json.dumps(body), content_type="application/json"
        )
        served.append((response.status_code, method, path, body))

    for value in HOSTILE:
        arms = [{"template": first.pk}, {"template": second.pk}]
        for key in ("test_share", "metric", "auto_pick_hours", "min_sample", "arms"):
            send("patch", base, {"ab_test": {"arms": arms, key: value}})
        send("patch", base, {"ab_test": value})
        send("patch", base, {"ab_test": {"arms": [{"template": value}, arms[1]]}})
        send("patch", base, {"ab_test": {"arms": [{"template": first.pk, "values": value}]}})
        for key in ("deadline", "quiet_start", "quiet_end", "quiet_zone", "scheduled_at"):
            send("post", base + "launch/", {key: value})
        send("post", base + "ab/winner/", {"arm": value})

    assert [s for s in served if s[0] >= 500] == []
    assert not AbTest.objects.filter(min_sample__gt=2**31 - 1).exists()


def test_hostile_values_in_the_pages_ab_form_are_messages_not_500s(marketer_client, draft):
    campaign, first, second = draft
    form = {
        "enabled": "on",
        "test_share": "20",
        "metric": "read",
        "min_sample": "10",
        "arm_template_0": str(first.pk),
        "arm_template_1": str(second.pk),
    }
    codes = []
    for value in HOSTILE:
        if isinstance(value, (list, dict)) or value is None:
            continue
        for key in (*form, "arm_values_0", "auto_pick_hours"):
            response = marketer_client.post(f"/campaigns/{campaign.pk}/ab/", {**form, key: value})
            codes.append(response.status_code)
        winner = marketer_client.post(f"/campaigns/{campaign.pk}/ab/winner/", {"arm": value})
        codes.append(winner.status_code)

    assert max(codes) < 500


def test_hostile_guard_values_on_the_review_step_never_reach_a_500(marketer_client, draft):
    campaign, _, _ = draft
    codes = []
    for value in HOSTILE:
        if isinstance(value, (list, dict)) or value is None:
            continue
        for key in ("deadline", "quiet_start", "quiet_end", "quiet_zone"):
            for action in ({"action": "check"}, {"when": "now"}):
                response = marketer_client.post(
                    f"/campaigns/{campaign.pk}/setup/review/", {key: value, **action}
                )
                codes.append(response.status_code)

    assert max(codes) < 500
    campaign.refresh_from_db()
    assert campaign.status == "draft"

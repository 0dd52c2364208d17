"""Hostile form input in the wizard and the setup API: every bad field is a sentence and a 4xx,
never a 500, and nothing is half saved."""

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from campaigns.models import Campaign, CampaignSender
from tests.factories import CampaignFactory, PhoneFactory, TemplateFactory


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def draft(marketer):
    return CampaignFactory(owner=marketer, status=Campaign.Status.DRAFT, name="Spring")


@pytest.fixture
def api(marketer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=marketer).key}")
    return client


def step(campaign, name):
    return reverse("campaign-wizard", kwargs={"pk": campaign.pk, "step": name})


@pytest.mark.parametrize(
    ("fields", "sentence"),
    [
        ({"name": "Spring", "dedup_days": str(10**20)}, "from 0 to 3650"),
        ({"name": "Spring", "dedup_days": "-1"}, "from 0 to 3650"),
        ({"name": "Spring", "dedup_days": "soon"}, "from 0 to 3650"),
        ({"name": "Spr\x00ing", "dedup_days": "0"}, "cannot contain NUL characters"),
        ({"name": "x" * 201, "dedup_days": "0"}, "under 200 characters"),
        ({"name": "  ", "dedup_days": "0"}, "Give the campaign a name"),
    ],
)
def test_the_new_campaign_page_refuses_bad_fields_with_a_sentence(
    marketer_client, fields, sentence
):
    response = marketer_client.post(reverse("campaign-new"), fields)

    assert response.status_code == 400
    assert sentence in response.content.decode()
    assert not Campaign.objects.exists()


def test_the_upload_step_refuses_a_huge_dedup_window_and_keeps_the_draft(marketer_client, draft):
    response = marketer_client.post(
        step(draft, "upload"), {"name": "Renamed", "dedup_days": str(10**20)}
    )

    assert response.status_code == 400
    assert "from 0 to 3650" in response.content.decode()
    draft.refresh_from_db()
    assert (draft.name, draft.dedup_days) == ("Spring", 0)


@pytest.fixture
def number(db):
    phone = PhoneFactory(max_mps=20)
    return phone, TemplateFactory(account=phone.account, name="promo_a")


@pytest.mark.parametrize(
    ("field", "value", "sentence"),
    [
        ("mps", "fast", "The rate for"),
        ("mps", "999", "from 1 to 20"),
        ("mps", str(10**30), "from 1 to 20"),
        ("pos", "first", "The order of promo_a"),
        ("pos", "0", "from 1 to 999"),
    ],
)
def test_the_senders_step_refuses_non_numbers_with_a_field_sentence(
    marketer_client, draft, number, field, value, sentence
):
    phone, template = number
    form = {f"use_{phone.pk}": "1", f"mps_{phone.pk}": "", f"pos_{phone.pk}_{template.pk}": "1"}
    key = f"mps_{phone.pk}" if field == "mps" else f"pos_{phone.pk}_{template.pk}"
    form[key] = value

    response = marketer_client.post(step(draft, "senders"), form)

    assert response.status_code == 400
    assert sentence in response.content.decode()
    assert not CampaignSender.objects.filter(campaign=draft).exists()


def test_the_senders_step_ignores_fields_of_numbers_it_does_not_show(
    marketer_client, draft, number
):
    phone, template = number
    form = {f"use_{phone.pk}": "1", f"pos_{phone.pk}_{template.pk}": "1", "use_abc": "1"}

    response = marketer_client.post(step(draft, "senders"), {**form, "pos_x_y": "2"})

    assert response.status_code == 302
    assert CampaignSender.objects.get(campaign=draft).phone == phone


def test_a_mapping_text_with_a_nul_character_is_refused(marketer_client, draft, number):
    phone, template = number
    marketer_client.post(
        step(draft, "senders"), {f"use_{phone.pk}": "1", f"pos_{phone.pk}_{template.pk}": "1"}
    )

    response = marketer_client.post(
        step(draft, "mapping"),
        {f"txt__{template.pk}__body.1": "Hi\x00", f"txt__{template.pk}__body.2": "ok"},
    )

    assert response.status_code == 400
    assert "cannot contain NUL characters" in response.content.decode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "API", "dedup_days": 10**20}, "dedup_days"),
        ({"name": "API", "dedup_days": -1}, "dedup_days"),
        ({"name": "A\x00PI"}, "name"),
    ],
)
def test_the_api_refuses_bad_campaign_fields_with_a_400(api, body, field):
    response = api.post("/api/campaigns/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Campaign.objects.exists()


def test_the_api_refuses_a_huge_dedup_window_on_update(api, draft):
    response = api.patch(f"/api/campaigns/{draft.pk}/", {"dedup_days": 10**20}, format="json")

    assert response.status_code == 400
    draft.refresh_from_db()
    assert draft.dedup_days == 0


def test_the_model_refuses_a_dedup_window_past_ten_years(marketer):
    from django.core.exceptions import ValidationError

    campaign = Campaign(name="Long", owner=marketer, dedup_days=Campaign.DEDUP_DAYS_MAX + 1)

    with pytest.raises(ValidationError) as refused:
        campaign.full_clean()
    assert list(refused.value.message_dict) == ["dedup_days"]

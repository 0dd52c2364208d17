"""Setup services: the rules a campaign must satisfy before it can be reviewed and launched."""

import math

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from campaigns.engine.pacing import PACE_SHARE
from campaigns.importing import import_start
from campaigns.importing.load import import_run
from campaigns.models import Campaign, Contact, Message
from campaigns.services import setup
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    MessageFactory,
    PhoneFactory,
    SenderFactory,
    SenderTemplateFactory,
    TemplateFactory,
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DEFAULT_PHONE_REGION = "AE"


@pytest.fixture
def draft(db):
    return CampaignFactory(status=Campaign.Status.DRAFT, columns=["phone", "name", "code"])


def test_set_senders_refuses_templates_that_cannot_be_sent(draft):
    phone = PhoneFactory(max_mps=50)
    paused = TemplateFactory(account=phone.account, status="PAUSED")

    with pytest.raises(setup.SetupError, match="cannot be sent"):
        setup.campaign_set_senders(
            campaign=draft, senders=[{"phone_id": phone.pk, "template_ids": [paused.pk]}]
        )
    assert not draft.senders.exists()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"template_ids": []}, "at least one template"),
        ({"mps": 51}, "between 1 and 50"),
        ({"template_ids": "twice"}, "listed twice"),
    ],
)
def test_set_senders_explains_each_refusal(draft, entry, message):
    phone = PhoneFactory(max_mps=50)
    template = TemplateFactory(account=phone.account)
    sender = {"phone_id": phone.pk, "template_ids": [template.pk], **entry}
    if entry.get("template_ids") == "twice":
        sender["template_ids"] = [template.pk, template.pk]

    with pytest.raises(setup.SetupError, match=message):
        setup.campaign_set_senders(campaign=draft, senders=[sender])


def test_set_senders_replaces_the_previous_choice_in_the_given_order(draft):
    phone = PhoneFactory()
    first, second, third = (TemplateFactory(account=phone.account) for _ in range(3))
    setup.campaign_set_senders(
        campaign=draft, senders=[{"phone_id": phone.pk, "template_ids": [first.pk]}]
    )

    (sender,) = setup.campaign_set_senders(
        campaign=draft,
        senders=[{"phone_id": phone.pk, "template_ids": [third.pk, first.pk, second.pk]}],
    )

    slots = sender.template_slots.order_by("position")
    assert [s.template_id for s in slots] == [third.pk, first.pk, second.pk]
    assert sender.current_template_id == third.pk
    assert draft.senders.count() == 1


def test_a_launched_campaign_cannot_change(db):
    running = CampaignFactory(status=Campaign.Status.RUNNING)
    with pytest.raises(setup.SetupError, match="only a draft"):
        setup.campaign_set_mapping(campaign=running, mapping={})


def test_mapping_rejects_unknown_columns_and_plain_http_media(draft):
    template = TemplateFactory(
        components=[
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "Hi {{1}}"},
        ]
    )
    SenderTemplateFactory(sender__campaign=draft, template=template, position=0)
    mapping = {
        str(template.pk): {
            "header.media": {"text": "http://insecure.test/a.png"},
            "body.1": {"column": "surname"},
        }
    }

    with pytest.raises(setup.SetupError) as refused:
        setup.campaign_set_mapping(campaign=draft, mapping=mapping)

    assert refused.value.errors[str(template.pk)] == {
        "header.media": "A media header needs an https:// link.",
        "body.1": "The list has no column “surname”.",
    }


def test_remapping_releases_rows_that_can_now_be_filled(draft):
    template = TemplateFactory(components=[{"type": "BODY", "text": "Code {{1}}"}])
    SenderTemplateFactory(sender__campaign=draft, template=template, position=0)
    ContactFactory(campaign=draft, variables={"code": "", "name": "Ana"})
    setup.campaign_set_mapping(
        campaign=draft, mapping={str(template.pk): {"body.1": {"column": "code"}}}
    )
    assert draft.skipped_count == 1

    setup.campaign_set_mapping(
        campaign=draft, mapping={str(template.pk): {"body.1": {"column": "name"}}}
    )

    draft.refresh_from_db()
    assert draft.skipped_count == 0
    assert Contact.objects.get(campaign=draft).state == "pending"


def test_estimate_is_the_pacers_share_of_the_active_senders_rates_under_the_campaign_cap(draft):
    SenderFactory(campaign=draft, mps=30)
    SenderFactory(campaign=draft, mps=None, phone__max_mps=80)
    SenderFactory(campaign=draft, mps=None, phone__max_mps=80, state="exhausted")
    for _ in range(300):
        ContactFactory(campaign=draft)

    # The pacer's share of 30 + 80 messages/s: what it grants, not what Meta would allow.
    estimate = setup.campaign_estimate(campaign=draft)
    assert estimate["rate"] == pytest.approx(110 * PACE_SHARE)
    assert (estimate["pending"], estimate["seconds"]) == (300, math.ceil(300 / (110 * PACE_SHARE)))
    draft.max_mps = 10
    estimate = setup.campaign_estimate(campaign=draft)
    assert estimate["rate"] == pytest.approx(10 * PACE_SHARE)
    assert estimate["seconds"] == math.ceil(300 / (10 * PACE_SHARE))


def test_estimate_leaves_out_a_red_number_and_counts_a_yellow_one_slowed(draft, settings):
    settings.ENGINE_YELLOW_RATE_FACTOR = 0.5
    SenderFactory(campaign=draft, mps=None, phone__max_mps=80, phone__quality_rating="GREEN")
    SenderFactory(campaign=draft, mps=None, phone__max_mps=80, phone__quality_rating="YELLOW")
    SenderFactory(campaign=draft, mps=None, phone__max_mps=80, phone__quality_rating="RED")
    SenderFactory(campaign=draft, mps=None, phone__max_mps=80, phone__status="FLAGGED")
    ContactFactory(campaign=draft)

    # What the guard lets them send: 80 + 40, nothing from the RED or the flagged number.
    assert setup.campaign_estimate(campaign=draft)["rate"] == pytest.approx(120 * PACE_SHARE)


def test_preview_uses_the_first_pending_contacts_and_reports_missing_values(draft):
    template = TemplateFactory(components=[{"type": "BODY", "text": "Hi {{1}}, {{2}}"}])
    SenderTemplateFactory(sender__campaign=draft, template=template, position=0)
    draft.variable_mapping = {
        str(template.pk): {"body.1": {"column": "name"}, "body.2": {"column": "code"}}
    }
    ContactFactory(campaign=draft, phone="+971500000001", variables={"name": "Ana", "code": "X"})
    ContactFactory(campaign=draft, phone="+971500000002", variables={"name": "Bo", "code": ""})

    first, second = setup.campaign_preview(campaign=draft, limit=3)

    assert first["payload"]["to"] == "971500000001"
    assert first["payload"]["template"]["components"][0]["parameters"][1] == {
        "type": "text",
        "text": "X",
    }
    assert second["payload"] is None and second["missing"] == ["body.2"]


def test_delete_removes_contacts_messages_and_keeps_other_campaigns(db):
    done = CampaignFactory(status=Campaign.Status.COMPLETED)
    message = MessageFactory(contact__campaign=done, campaign=done)
    other = MessageFactory()

    setup.campaign_delete(campaign=done)

    assert not Campaign.objects.filter(pk=done.pk).exists()
    assert not Message.objects.filter(pk=message.pk).exists()
    assert Message.objects.filter(pk=other.pk).exists()


def test_a_sending_campaign_cannot_be_deleted(db):
    running = CampaignFactory(status=Campaign.Status.RUNNING)
    with pytest.raises(setup.SetupError, match="cancel it"):
        setup.campaign_delete(campaign=running)


def test_changing_the_dedup_window_reimports_the_list(draft):
    import_start(campaign=draft, uploaded_file=SimpleUploadedFile("c.csv", b"phone\n0501234567\n"))
    import_run(campaign_id=draft.pk)
    draft.refresh_from_db()
    MessageFactory(recipient="+971501234567", sent_at=timezone.now())

    setup.campaign_update(campaign=draft, name="Renamed", dedup_days=2)
    import_run(campaign_id=draft.pk)

    draft.refresh_from_db()
    assert draft.name == "Renamed"
    assert draft.import_report["skipped"]["recently_messaged"] == 1

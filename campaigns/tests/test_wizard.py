"""The setup wizard through Django's test client: every step, plain forms, pinned queries."""

import csv
import io
import os
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns.importing.load import import_run
from campaigns.models import Campaign, CampaignSender, Contact, SenderTemplate
from templates_app.models import MessageTemplate, PhoneNumber
from tests.factories import (
    CampaignFactory,
    OptOutFactory,
    PhoneFactory,
    SenderFactory,
    SenderTemplateFactory,
    TemplateFactory,
)

NAMED = [
    {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://x.test/a.png"]}},
    {"type": "BODY", "text": "Hi {{1}}, {{2}} off today."},
]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DEFAULT_PHONE_REGION = "AE"


def csv_upload(rows, name="list.csv"):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return SimpleUploadedFile(name, buffer.getvalue().encode(), content_type="text/csv")


ROWS = [
    ["Mobile", "First name", "Discount"],
    ["0501234567", "Ana", "20%"],
    ["+971507654321", "Bo", ""],
    ["0501234567", "Ana again", "5%"],
    ["nope", "Cy", "1%"],
]


def url(campaign, step):
    return reverse("campaign-wizard", kwargs={"pk": campaign.pk, "step": step})


@pytest.fixture
def imported(marketer_client, marketer):
    response = marketer_client.post(
        reverse("campaign-new"), {"name": "Spring", "dedup_days": "0", "file": csv_upload(ROWS)}
    )
    campaign = Campaign.objects.get(name="Spring")
    assert response.status_code == 302
    assert response["Location"] == url(campaign, "columns")
    confirm = {"phone_column": "Mobile", "name_column": "First name", "phone_region": "AE"}
    marketer_client.post(url(campaign, "columns"), confirm)
    import_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def test_continue_without_a_file_says_so_and_creates_nothing(marketer_client):
    response = marketer_client.post(reverse("campaign-new"), {"name": "Spring", "dedup_days": "0"})

    assert response.status_code == 400
    assert "Choose the contact list to upload." in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_picture_renamed_csv_is_refused_with_a_sentence_and_creates_nothing(
    marketer_client, settings
):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 4
    upload = SimpleUploadedFile("contacts.csv", png, content_type="text/csv")
    response = marketer_client.post(reverse("campaign-new"), {"name": "Spring", "file": upload})

    assert response.status_code == 400
    assert "This file is not a contact list" in response.content.decode()
    assert not Campaign.objects.exists()
    assert not [path for path in settings.MEDIA_ROOT.rglob("*") if path.is_file()]


def test_nothing_is_imported_until_the_marketer_confirms_the_columns(marketer_client):
    marketer_client.post(reverse("campaign-new"), {"name": "Spring", "file": csv_upload(ROWS)})
    campaign = Campaign.objects.get(name="Spring")
    import_run(campaign_id=campaign.pk)  # a worker finding the draft does nothing
    body = marketer_client.get(url(campaign, "columns")).content.decode()

    assert campaign.status == Campaign.Status.DRAFT
    assert not Contact.objects.filter(campaign=campaign).exists()
    assert "Check the columns, then import." in body
    assert '<option value="Mobile" selected>' in body
    assert '<option value="AE" selected>' in body

    confirm = {"phone_column": "Mobile", "name_column": "First name", "phone_region": "AE"}
    marketer_client.post(url(campaign, "columns"), confirm)
    import_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.READY
    assert Contact.objects.filter(campaign=campaign, state="pending").count() == 2


def test_national_numbers_are_read_in_the_region_the_marketer_picks(marketer_client):
    rows = [["Phone", "Name"], ["07911 123456", "Ann"], ["+971507654321", "Bo"]]
    marketer_client.post(reverse("campaign-new"), {"name": "UK", "file": csv_upload(rows)})
    campaign = Campaign.objects.get(name="UK")
    marketer_client.post(
        url(campaign, "columns"),
        {"phone_column": "Phone", "name_column": "Name", "phone_region": "GB"},
    )
    import_run(campaign_id=campaign.pk)
    campaign.refresh_from_db()

    assert campaign.phone_region == "GB"
    phones = Contact.objects.filter(campaign=campaign, state="pending").order_by("row_number")
    assert list(phones.values_list("phone", flat=True)) == ["+447911123456", "+971507654321"]


def test_an_unknown_region_is_refused_and_nothing_is_imported(marketer_client):
    marketer_client.post(reverse("campaign-new"), {"name": "Spring", "file": csv_upload(ROWS)})
    campaign = Campaign.objects.get(name="Spring")
    response = marketer_client.post(
        url(campaign, "columns"), {"phone_column": "Mobile", "phone_region": "XX"}, follow=True
    )
    campaign.refresh_from_db()

    assert "is not a region code" in response.content.decode()
    assert campaign.status == Campaign.Status.DRAFT


def test_new_campaign_detects_columns_and_shows_the_first_rows(marketer_client, imported):
    assert (imported.phone_column, imported.name_column) == ("Mobile", "First name")
    response = marketer_client.get(url(imported, "columns"))

    body = response.content.decode()
    assert response.status_code == 200
    assert "+971507654321" in body and "Ana again" in body
    assert 'data-skip="duplicate_in_file"' in body
    assert imported.import_report["skipped"] == {
        "invalid_phone": 1,
        "duplicate_in_file": 1,
        "opted_out": 0,
        "recently_messaged": 0,
        "missing_variable": 0,
    }


def test_progress_fragment_polls_while_importing(marketer_client, marketer):
    campaign = CampaignFactory(
        owner=marketer,
        status=Campaign.Status.IMPORTING,
        import_rows_done=2_500,
        import_rows_estimate=10_000,
    )
    response = marketer_client.get(
        url(campaign, "columns"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="import-progress"
    )

    body = response.content.decode()
    assert 'hx-trigger="every 1s"' in body
    assert "width: 25%" in body
    assert "<html" not in body


def test_choosing_another_phone_column_reimports(marketer_client, imported):
    response = marketer_client.post(
        url(imported, "columns"), {"phone_column": "First name", "name_column": ""}
    )
    import_run(campaign_id=imported.pk)
    imported.refresh_from_db()

    assert response.status_code == 302
    assert imported.phone_column == "First name"
    assert imported.import_report["skipped"]["invalid_phone"] == 4


def test_a_list_without_phones_shows_the_reason_and_a_retry(marketer_client, marketer):
    marketer_client.post(
        reverse("campaign-new"),
        {"name": "Bad", "file": csv_upload([["a", "b"], ["x", "y"]])},
    )
    campaign = Campaign.objects.get(name="Bad")
    response = marketer_client.post(
        url(campaign, "columns"), {"phone_column": "", "name_column": ""}, follow=True
    )
    campaign.refresh_from_db()

    assert campaign.status == Campaign.Status.FAILED
    assert "No phone column" in response.content.decode()
    assert not Contact.objects.filter(campaign=campaign).exists()


@pytest.fixture
def phone_with_templates(db):
    phone = PhoneFactory(max_mps=20)
    first = TemplateFactory(account=phone.account, name="promo_a")
    second = TemplateFactory(account=phone.account, name="promo_b", components=NAMED)
    TemplateFactory(account=phone.account, name="paused_one", status="PAUSED")
    return phone, first, second


def test_senders_step_lists_only_sendable_templates_of_the_numbers_account(
    marketer_client, imported, phone_with_templates
):
    TemplateFactory(name="other_account")
    body = marketer_client.get(url(imported, "senders")).content.decode()

    assert "promo_a" in body and "promo_b" in body
    assert "paused_one" not in body and "other_account" not in body


def test_the_senders_step_warns_before_a_red_or_yellow_number_is_chosen(
    marketer_client, imported, phone_with_templates, settings
):
    settings.ENGINE_YELLOW_RATE_FACTOR = 0.5
    phone = phone_with_templates[0]
    yellow = PhoneFactory(account=phone.account, max_mps=80, quality_rating="YELLOW")
    PhoneFactory(account=phone.account, quality_rating="RED")
    flagged = PhoneFactory(account=phone.account, quality_rating="GREEN", status="FLAGGED")

    body = marketer_client.get(url(imported, "senders")).content.decode()

    notices = re.findall(
        r'class="flash flash-warning quality-notice" data-phone="(\d+)">([^<]+)', body
    )
    said = {int(pk): text for pk, text in notices}
    assert len(said) == 3 and phone.pk not in said
    assert said[yellow.pk].startswith("Quality YELLOW: TitanFlow sends at most 40/s")
    assert "until it is GREEN again" in said[yellow.pk]
    assert [text for pk, text in said.items() if pk not in (yellow.pk, flagged.pk)][0].startswith(
        "Quality RED: TitanFlow does not send from this number"
    )
    assert said[flagged.pk].startswith("Flagged by Meta: TitanFlow does not send")


def test_saving_senders_keeps_the_typed_order_and_moves_work_without_js(
    marketer_client, imported, phone_with_templates
):
    phone, first, second = phone_with_templates
    form = {
        f"use_{phone.pk}": "1",
        f"mps_{phone.pk}": "10",
        f"pos_{phone.pk}_{first.pk}": "2",
        f"pos_{phone.pk}_{second.pk}": "1",
    }
    response = marketer_client.post(url(imported, "senders"), form)
    assert response["Location"] == url(imported, "mapping")
    sender = CampaignSender.objects.get(campaign=imported)
    assert sender.mps == 10
    assert list(sender.template_slots.order_by("position").values_list("template", flat=True)) == [
        second.pk,
        first.pk,
    ]

    marketer_client.post(url(imported, "senders"), {**form, "move": f"{phone.pk}:{first.pk}:up"})

    order = SenderTemplate.objects.filter(sender__campaign=imported).order_by("position")
    assert [slot.template_id for slot in order] == [first.pk, second.pk]


def test_mapping_refuses_unfilled_slots_then_saves_and_skips_unfillable_rows(
    marketer_client, imported, phone_with_templates
):
    phone, first, second = phone_with_templates
    sender = SenderFactory(campaign=imported, phone=phone)
    SenderTemplateFactory(sender=sender, template=second, position=0)

    refused = marketer_client.post(
        url(imported, "mapping"), {f"col__{second.pk}__body.1": "First name"}
    )
    assert refused.status_code == 400
    assert "Choose a column or type a text for Body {{2}}" in refused.content.decode()

    saved = marketer_client.post(
        url(imported, "mapping"),
        {
            f"col__{second.pk}__header.media": "",
            f"txt__{second.pk}__header.media": "https://cdn.test/spring.png",
            f"col__{second.pk}__body.1": "First name",
            f"col__{second.pk}__body.2": "Discount",
        },
    )
    assert saved["Location"] == url(imported, "review")
    imported.refresh_from_db()
    assert imported.variable_mapping[str(second.pk)]["body.2"] == {"column": "Discount"}
    bo = Contact.objects.get(campaign=imported, name="Bo")
    assert (bo.state, bo.skip_reason) == ("skipped", "missing_variable")


def _follow_up_with_a_paused_first_template(campaign, phone_with_templates):
    """A follow-up carries its source's order, where Meta has since paused the first template."""
    phone, first, second = phone_with_templates
    paused = MessageTemplate.objects.get(name="paused_one")
    sender = SenderFactory(campaign=campaign, phone=phone)
    for position, template in enumerate((paused, second, first)):
        SenderTemplateFactory(sender=sender, template=template, position=position)
    return paused, second, first


def test_the_senders_step_numbers_the_chosen_templates_from_one(
    marketer_client, imported, phone_with_templates
):
    paused, second, first = _follow_up_with_a_paused_first_template(imported, phone_with_templates)
    body = marketer_client.get(url(imported, "senders")).content.decode()

    assert f'data-template="{second.pk}" data-position="1"' in body
    assert f'data-template="{first.pk}" data-position="2"' in body
    assert 'data-position="3"' not in body
    assert "paused_one was chosen before and is left out: Meta reports it paused." in body


def test_a_follow_ups_review_shows_a_paused_template_as_paused_and_what_is_sent_instead(
    marketer_client, imported, phone_with_templates
):
    paused, second, first = _follow_up_with_a_paused_first_template(imported, phone_with_templates)
    imported.variable_mapping = {
        str(second.pk): {
            "header.media": {"text": "https://cdn.test/a.png"},
            "body.1": {"column": "First name"},
            "body.2": {"text": "10%"},
        },
        str(first.pk): {"body.1": {"text": "x"}},
    }
    imported.save(update_fields=["variable_mapping"])
    body = marketer_client.get(url(imported, "review")).content.decode()

    unavailable = body.split('id="templates-unavailable"')[1].split("</div>")[0]
    assert "Paused" in unavailable and "paused_one" in unavailable
    assert f'data-instead="{second.pk}"' in unavailable
    assert f'class="sample" data-template="{paused.pk}"' not in body
    assert f'class="sample" data-template="{second.pk}"' in body


@pytest.fixture
def reviewed(imported, phone_with_templates):
    phone, first, _ = phone_with_templates
    sender = SenderFactory(campaign=imported, phone=phone, mps=4)
    SenderTemplateFactory(sender=sender, template=first, position=0)
    imported.variable_mapping = {
        str(first.pk): {
            "header.1": {"text": "Hello"},
            "body.1": {"column": "First name"},
            "body.2": {"column": "Discount"},
        }
    }
    imported.save()
    return imported, first


def test_review_shows_counts_estimate_and_samples_as_sent(marketer_client, reviewed):
    campaign, template = reviewed
    body = marketer_client.get(url(campaign, "review")).content.decode()

    assert 'data-stat="pending"><div class="value">2<' in body
    assert "Estimated at 3.8 messages/s" in body  # the pacer's 95% of the number's 4/s
    assert '<mark class="var">Ana</mark>' in body
    assert "Cannot be sent with this template: no value for body.2" in body  # Bo, no discount
    assert "no chosen template can be filled" in body


def test_review_warns_about_a_chosen_red_number(marketer_client, reviewed):
    campaign, _ = reviewed
    sender = campaign.senders.get()
    PhoneNumber.objects.filter(pk=sender.phone_id).update(quality_rating="RED")
    body = marketer_client.get(url(campaign, "review")).content.decode()

    assert f'quality-notice" data-phone="{sender.phone_id}">' in body
    assert "Quality RED: TitanFlow does not send from this number" in body
    assert "No chosen number can send now" in body


def test_launch_now_from_the_review_starts_the_campaign(marketer_client, reviewed):
    campaign, _ = reviewed
    Contact.objects.filter(campaign=campaign, name="Bo").update(variables={"Discount": "3%"})
    response = marketer_client.post(url(campaign, "review"), {"when": "now"})

    campaign.refresh_from_db()
    assert response["Location"] == reverse("campaign-detail", kwargs={"pk": campaign.pk})
    assert campaign.status == Campaign.Status.RUNNING


def test_schedule_reads_the_time_in_the_marketers_time_zone(marketer_client, reviewed):
    campaign, _ = reviewed
    marketer_client.post(
        url(campaign, "review"),
        {"when": "later", "scheduled_at": "2099-03-01T09:30", "tz": "Asia/Dubai"},
    )

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.scheduled_at.isoformat() == "2099-03-01T05:30:00+00:00"


def test_launch_refusal_is_shown_on_the_review(marketer_client, imported):
    response = marketer_client.post(url(imported, "review"), {"when": "now"})

    assert response.status_code == 400
    assert "Add at least one sending number" in response.content.decode()


def test_skipped_rows_download_lists_reasons_and_original_cells(marketer_client, imported):
    OptOutFactory(phone="+971507654321")
    response = marketer_client.get(reverse("campaign-skipped-csv", kwargs={"pk": imported.pk}))

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["row", "reason", "explanation", "Mobile", "First name", "Discount"]
    assert [r[:2] for r in rows[1:]] == [["4", "duplicate_in_file"], ["5", "invalid_phone"]]
    assert rows[2][3] == "nope"


def test_list_filters_by_status_and_pins_its_queries(
    marketer_client, marketer, django_assert_num_queries
):
    for n in range(30):
        CampaignFactory(owner=marketer, status="draft" if n % 2 else "completed")
    with django_assert_num_queries(5):
        response = marketer_client.get(reverse("campaign-list"), {"status": "draft"})

    assert response.context["page"].paginator.count == 15
    assert len(response.context["page"].object_list) == 15


def test_duplicate_copies_setup_and_reimports_the_same_file(marketer_client, reviewed):
    campaign, template = reviewed
    response = marketer_client.post(reverse("campaign-duplicate", kwargs={"pk": campaign.pk}))
    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    import_run(campaign_id=copy.pk)
    copy.refresh_from_db()

    assert response.status_code == 302
    assert copy.name == "Copy of Spring" and copy.status == Campaign.Status.READY
    assert copy.variable_mapping == campaign.variable_mapping
    assert copy.senders.get().template_slots.get().template == template
    assert copy.contacts.count() == 4
    assert copy.phone_region == campaign.phone_region == "AE"


def test_delete_removes_the_campaign_and_its_uploaded_file(
    marketer_client, imported, django_capture_on_commit_callbacks
):
    path = imported.source_file.path
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(reverse("campaign-delete", kwargs={"pk": imported.pk}))

    assert response["Location"] == reverse("campaign-list")
    assert not Campaign.objects.filter(pk=imported.pk).exists()
    assert not os.path.exists(path)


def test_a_running_campaign_cannot_be_deleted_or_edited(marketer_client, marketer):
    running = CampaignFactory(owner=marketer, status=Campaign.Status.RUNNING)

    marketer_client.post(reverse("campaign-delete", kwargs={"pk": running.pk}))
    edit = marketer_client.get(url(running, "senders"))

    assert Campaign.objects.filter(pk=running.pk).exists()
    assert edit["Location"] == reverse("campaign-detail", kwargs={"pk": running.pk})


@pytest.mark.parametrize(
    ("step", "queries"),
    # The review's guard lines add four: contacts by number prefix, the senders' template
    # slots, the rate card and the portfolios (a portfolio with a limit adds two more).
    [("upload", 4), ("columns", 4), ("senders", 8), ("mapping", 6), ("review", 15)],
)
def test_each_step_pins_its_queries(
    marketer_client, reviewed, django_assert_num_queries, step, queries
):
    campaign, _ = reviewed
    TemplateFactory(account=campaign.senders.get().phone.account)  # more rows, same queries
    PhoneFactory()
    with django_assert_num_queries(queries):
        response = marketer_client.get(url(campaign, step))
    assert response.status_code == 200


def test_the_new_campaign_page_pins_its_queries(marketer_client, django_assert_num_queries):
    marketer_client.get("/")
    with django_assert_num_queries(3):  # the session, its user and their groups
        response = marketer_client.get(reverse("campaign-new"))
    assert response.status_code == 200


def test_a_new_list_on_an_imported_campaign_waits_for_the_columns_again(marketer_client, imported):
    rows = [["Tel", "Name"], ["0509999999", "Di"]]
    response = marketer_client.post(
        url(imported, "upload"), {"name": "Spring", "dedup_days": "0", "file": csv_upload(rows)}
    )
    import_run(campaign_id=imported.pk)
    imported.refresh_from_db()

    assert response["Location"] == url(imported, "columns")
    assert imported.status == Campaign.Status.DRAFT
    assert (imported.columns, imported.phone_column) == (["Tel", "Name"], "Tel")
    assert (
        "Check the columns, then import."
        in marketer_client.get(url(imported, "columns")).content.decode()
    )


def test_renaming_without_a_new_list_keeps_the_imported_one(marketer_client, imported):
    response = marketer_client.post(url(imported, "upload"), {"name": "Renamed", "dedup_days": "0"})
    imported.refresh_from_db()

    assert response["Location"] == url(imported, "columns")
    assert (imported.name, imported.status) == ("Renamed", Campaign.Status.READY)


def test_boosted_form_errors_come_back_swappable(marketer_client, imported, phone_with_templates):
    phone, _, second = phone_with_templates
    sender = SenderFactory(campaign=imported, phone=phone)
    SenderTemplateFactory(sender=sender, template=second, position=0)

    response = marketer_client.post(url(imported, "mapping"), {}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200  # htmx swaps only 2xx answers
    assert "Choose a column or type a text" in response.content.decode()


def test_the_senders_step_shows_each_templates_text_and_names_the_number_once(
    marketer_client, imported, phone_with_templates
):
    phone, first, _ = phone_with_templates
    phone.account.name = phone.verified_name
    phone.account.save(update_fields=["name"])
    body = marketer_client.get(url(imported, "senders")).content.decode()

    item = body.split(f'data-template="{first.pk}"')[1].split("</li>")[0]
    assert first.components[-1]["text"] in item
    assert f"{phone.verified_name} · {phone.verified_name}" not in body
    assert f"{phone.verified_name} · up to 20/s" in body


def test_one_numbers_templates_can_be_used_for_every_number(
    marketer_client, imported, phone_with_templates
):
    phone, first, second = phone_with_templates
    other = PhoneFactory(account=phone.account, max_mps=20)
    elsewhere = PhoneFactory(max_mps=20)  # another account with its own copy of promo_b
    copy_of_second = TemplateFactory(account=elsewhere.account, name="promo_b")
    form = {
        f"use_{phone.pk}": "1",
        f"pos_{phone.pk}_{second.pk}": "1",
        f"pos_{phone.pk}_{first.pk}": "2",
        "copy": str(phone.pk),
    }
    response = marketer_client.post(url(imported, "senders"), form)

    assert response["Location"] == url(imported, "senders")
    orders = {
        sender.phone_id: [slot.template_id for slot in sender.template_slots.order_by("position")]
        for sender in CampaignSender.objects.filter(campaign=imported)
    }
    assert orders == {
        phone.pk: [second.pk, first.pk],
        other.pk: [second.pk, first.pk],
        elsewhere.pk: [copy_of_second.pk],
    }


NAMED_VARIABLES = [
    {"type": "BODY", "text": "Hi {{first_name}}, use {{code}}."},
    {
        "type": "BUTTONS",
        "buttons": [
            {
                "type": "URL",
                "text": "Shop",
                "url": "https://shop.test/offer/{{1}}",
                "example": ["https://shop.test/offer/SPRING"],
            }
        ],
    },
]


@pytest.fixture
def named_template(imported):
    phone = PhoneFactory()
    template = TemplateFactory(
        account=phone.account, components=NAMED_VARIABLES, parameter_format="NAMED"
    )
    sender = SenderFactory(campaign=imported, phone=phone)
    SenderTemplateFactory(sender=sender, template=template, position=0)
    imported.columns = ["Mobile", "First name", "Discount", "CODE"]
    imported.save(update_fields=["columns"])
    return template


def _slot_html(body: str, key: str) -> str:
    return body.split(f'data-slot="{key}"')[1].split("data-slot=")[0].split("</section>")[0]


def test_variables_are_matched_to_columns_by_name_and_the_rest_say_not_mapped(
    marketer_client, imported, named_template
):
    body = marketer_client.get(url(imported, "mapping")).content.decode()

    name_slot = _slot_html(body, "body.first_name")
    assert '<option value="First name" selected>' in name_slot
    assert "picked by its name" in name_slot
    assert '<option value="CODE" selected>' in _slot_html(body, "body.code")
    link = _slot_html(body, "button.0.1")
    opening = body.split('data-slot="button.0.1"')[0].rsplit("<div", 1)[1]
    assert "Not mapped" in link and "slot-unmapped" in opening


def test_a_url_buttons_field_takes_only_the_end_of_the_link(
    marketer_client, imported, named_template
):
    body = marketer_client.get(url(imported, "mapping")).content.decode()

    link = _slot_html(body, "button.0.1")
    assert 'fixed link">https://shop.test/offer/</span>' in link
    assert 'placeholder="e.g. SPRING"' in link


@pytest.mark.parametrize(
    "text", ["Hi {{1}}, your order {{2}} has shipped.", "{{1}}, enjoy {{2}} off this week!"]
)
def test_the_variable_a_template_greets_takes_the_name_column(marketer_client, imported, text):
    phone = PhoneFactory()
    template = TemplateFactory(account=phone.account, components=[{"type": "BODY", "text": text}])
    SenderTemplateFactory(sender=SenderFactory(campaign=imported, phone=phone), template=template)
    body = marketer_client.get(url(imported, "mapping")).content.decode()

    assert '<option value="First name" selected>' in _slot_html(body, "body.1")
    assert "Not mapped" in _slot_html(body, "body.2")


def test_a_number_with_many_templates_keeps_the_chosen_ones_in_view_and_folds_the_rest(
    marketer_client, imported, phone_with_templates
):
    phone, first, second = phone_with_templates
    extra = [TemplateFactory(account=phone.account, name=f"extra_{n}") for n in range(4)]
    sender = SenderFactory(campaign=imported, phone=phone)
    SenderTemplateFactory(sender=sender, template=extra[3], position=0)
    body = marketer_client.get(url(imported, "senders")).content.decode()

    shown, folded = body.split('<details class="more-templates">')
    assert f'data-template="{extra[3].pk}" data-position="1"' in shown
    assert shown.count('class="template-choice"') == 4
    assert "2 more approved templates" in folded
    assert folded.split("</details>")[0].count('class="template-choice"') == 2


def test_previews_mark_a_variable_not_filled_yet_apart_from_filled_values(
    marketer_client, reviewed
):
    campaign, template = reviewed
    mapping = marketer_client.get(url(campaign, "mapping")).content.decode()
    review = marketer_client.get(url(campaign, "review")).content.decode()

    assert '<mark class="var var-empty" title="Not filled yet">{{1}}</mark>' in mapping
    assert '<mark class="var">Ana</mark>' in review
    assert "var-empty" not in review.split('class="sample"')[1]

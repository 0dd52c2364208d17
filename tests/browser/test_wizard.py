"""The campaign wizard end to end in Chromium: upload, confirm the columns, order templates, map,
review, launch; and a list refused before any draft exists."""

import pytest

from campaigns.importing.load import import_run
from campaigns.models import Campaign, SenderTemplate
from tests.factories import CampaignFactory, PhoneFactory, TemplateFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSV = "Mobile;First name;Offer\n050 123 4567;Ana;20%\n+971507654321;Bo;15%\n0501234567;Dup;1%\n"


@pytest.fixture
def assets(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DEFAULT_PHONE_REGION = "AE"
    phone = PhoneFactory(display_phone_number="+971 4 000 0001", max_mps=10)
    welcome = TemplateFactory(
        account=phone.account,
        name="welcome_offer",
        components=[{"type": "BODY", "text": "Hi {{1}}, enjoy {{2}} off."}],
    )
    spring = TemplateFactory(
        account=phone.account,
        name="spring_sale",
        components=[{"type": "BODY", "text": "{{1}}: spring sale, {{2}} off!"}],
    )
    return phone, welcome, spring


def test_marketer_builds_and_launches_a_campaign(
    logged_in_page, live_server, assets, tmp_path, screenshot
):
    page, (phone, welcome, spring) = logged_in_page, assets
    refused = []  # Chromium logs each script or style the Content-Security-Policy blocks
    page.on("console", lambda m: refused.append(m.text) if "Security Policy" in m.text else None)
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(CSV, encoding="utf-8-sig")

    page.goto(f"{live_server.url}/campaigns/")
    page.click("text=New campaign")
    page.fill("input[name=name]", "Browser spring")
    page.set_input_files("input[name=file]", str(contacts))
    page.click("button:has-text('Continue')")
    page.wait_for_url("**/setup/columns/")
    campaign = Campaign.objects.get(name="Browser spring")
    assert page.locator("#phone_column").input_value() == "Mobile"
    assert page.locator("#head-rows").inner_text().count("Ana") == 1
    assert page.locator("#phone_region").input_value() == "AE"
    assert page.locator("#confirm-columns").is_visible()
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DRAFT
    screenshot(page, "wizard-columns-confirm")
    page.click("button:has-text('Import with these columns')")
    page.wait_for_selector("#import-progress[data-status=importing]")

    import_run(campaign_id=campaign.pk)  # what the Celery worker does
    page.wait_for_selector("#import-report")  # the progress bar polls until the report shows
    assert page.locator("[data-skip=duplicate_in_file] .value").inner_text() == "1"
    screenshot(page, "wizard-columns")
    page.click("text=Next: senders")

    block = page.locator(f"fieldset[data-phone='{phone.pk}']")
    block.locator(f"input[name=use_{phone.pk}]").check()
    block.locator(f"input[name=pos_{phone.pk}_{welcome.pk}]").fill("1")
    block.locator(f"input[name=pos_{phone.pk}_{spring.pk}]").fill("2")
    page.click(f"button[value='{phone.pk}:{spring.pk}:up']")  # saves, then moves spring first
    page.wait_for_selector(f"li[data-template='{spring.pk}'][data-position='1']")
    screenshot(page, "wizard-senders")
    page.click("button:has-text('Save and map variables')")
    page.wait_for_url("**/setup/mapping/")
    order = SenderTemplate.objects.filter(sender__campaign=campaign).order_by("position")
    assert [slot.template_id for slot in order] == [spring.pk, welcome.pk]

    for template in (spring, welcome):
        page.select_option(f"select[name='col__{template.pk}__body.1']", "First name")
        page.select_option(f"select[name='col__{template.pk}__body.2']", "Offer")
    screenshot(page, "wizard-mapping")
    page.click("button:has-text('Save and review')")
    page.wait_for_url("**/setup/review/")

    samples = page.locator(f".sample[data-template='{spring.pk}']")
    assert samples.count() == 2
    assert samples.first.locator(".preview").inner_text() == "Ana: spring sale, 20% off!"
    assert page.locator("[data-stat=pending] .value").inner_text() == "2"
    screenshot(page, "wizard-review")
    page.click("#launch-form button[value=launch]")

    page.wait_for_url(f"**/campaigns/{campaign.pk}/")
    campaign.refresh_from_db()
    assert campaign.status in (Campaign.Status.RUNNING, Campaign.Status.COMPLETED)
    screenshot(page, "wizard-launched")
    assert refused == []


def test_cancel_asks_first_and_a_no_keeps_the_campaign_running(
    logged_in_page, live_server, marketer
):
    page = logged_in_page
    running = CampaignFactory(owner=marketer, status=Campaign.Status.RUNNING)
    page.goto(f"{live_server.url}/campaigns/{running.pk}/")

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("button:has-text('Cancel')")
    page.wait_for_timeout(300)
    running.refresh_from_db()
    assert running.status == Campaign.Status.RUNNING

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Cancel')")
    page.wait_for_selector("text=Cancelled")
    running.refresh_from_db()
    assert running.status == Campaign.Status.CANCELLED


def test_continue_without_a_list_says_so_and_creates_no_draft(logged_in_page, live_server):
    page = logged_in_page
    page.goto(f"{live_server.url}/campaigns/new/")
    page.fill("input[name=name]", "No list")
    page.click("button:has-text('Continue')")

    assert page.locator(".flash-error").inner_text() == "Choose the contact list to upload."
    assert not Campaign.objects.exists()


def test_a_picture_renamed_csv_is_refused_with_a_sentence(
    logged_in_page, live_server, tmp_path, screenshot
):
    page = logged_in_page
    picture = tmp_path / "contacts.csv"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    page.goto(f"{live_server.url}/campaigns/new/")
    page.fill("input[name=name]", "Picture")
    page.set_input_files("input[name=file]", str(picture))
    page.click("button:has-text('Continue')")

    assert "This file is not a contact list" in page.locator(".flash-error").inner_text()
    assert not Campaign.objects.exists()
    screenshot(page, "wizard-refused-file")

"""The wizard's senders, variables and review steps in Chromium, on a laptop and on a phone."""

import pytest

from campaigns.models import Campaign, CampaignSender, SenderTemplate
from tests.factories import (
    AccountFactory,
    CampaignFactory,
    ContactFactory,
    PhoneFactory,
    SenderFactory,
    SenderTemplateFactory,
    TemplateFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPRING = [
    {"type": "HEADER", "format": "TEXT", "text": "Spring sale"},
    {
        "type": "BODY",
        "text": "Hi {{first_name}}, our spring sale starts today: {{discount}} off every "
        "jacket and pair of trainers in store and online until Sunday.",
    },
    {
        "type": "BUTTONS",
        "buttons": [
            {
                "type": "URL",
                "text": "Shop now",
                "url": "https://shop.example/spring/{{1}}",
                "example": ["https://shop.example/spring/AE-2026"],
            }
        ],
    },
]
WELCOME = [{"type": "BODY", "text": "Welcome back {{1}}! Your code {{2}} works this week."}]
REMINDER = [{"type": "BODY", "text": "Last day of the sale, {{1}}: everything {{2}} off."}]


def _log_in(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "s3cret-Passw0rd!")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def _fits_the_screen(page) -> bool:
    return page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")


@pytest.fixture
def store(marketer):
    """Two numbers of one account (named like the account), three templates, an imported list."""
    account = AccountFactory(name="Demo Retail")
    numbers = [
        PhoneFactory(account=account, display_phone_number=f"+971 4 000 000{n}", max_mps=20)
        for n in (1, 2)
    ]
    templates = {
        "spring_sale": TemplateFactory(
            account=account, name="spring_sale", components=SPRING, parameter_format="NAMED"
        ),
        "welcome_back": TemplateFactory(account=account, name="welcome_back", components=WELCOME),
        "last_day": TemplateFactory(account=account, name="last_day", components=REMINDER),
    }
    campaign = CampaignFactory(
        name="Spring sale",
        owner=marketer,
        status=Campaign.Status.READY,
        columns=["Phone", "Full Name", "Discount"],
        phone_column="Phone",
        name_column="Full Name",
    )
    for n, name in enumerate(("Layla Haddad", "Omar Saleh", "Ana Lopez")):
        ContactFactory(
            campaign=campaign,
            phone=f"+97150123456{n}",
            name=name,
            variables={"Phone": f"050123456{n}", "Full Name": name, "Discount": "25%"},
        )
    return campaign, numbers, templates


def _step(live_server, campaign, step):
    return f"{live_server.url}/campaigns/{campaign.pk}/setup/{step}/"


def test_senders_fit_a_phone_and_one_numbers_templates_serve_every_number(
    browser, live_server, marketer, store, screenshot
):
    campaign, (first, second), templates = store
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = phone.new_page()
    _log_in(page, live_server, marketer)
    page.goto(_step(live_server, campaign, "senders"))

    block = page.locator(f"fieldset[data-phone='{first.pk}']")
    assert block.locator("legend").inner_text().count("Demo Retail") == 1
    spring = block.locator(f"li[data-template='{templates['spring_sale'].pk}']")
    assert "our spring sale starts today" in spring.locator(".choice-body").inner_text()
    block.locator(f"input[name=use_{first.pk}]").check()
    block.locator(f"input[name=pos_{first.pk}_{templates['spring_sale'].pk}]").fill("1")
    block.locator(f"input[name=pos_{first.pk}_{templates['last_day'].pk}]").fill("2")
    block.locator("button.copy-templates").click()
    page.wait_for_selector(
        f"fieldset[data-phone='{second.pk}'] li[data-position='2']"
        f"[data-template='{templates['last_day'].pk}']"
    )

    assert _fits_the_screen(page), "the senders step scrolls sideways on a phone"
    up = page.locator(f"button[value='{second.pk}:{templates['last_day'].pk}:up']")
    box = up.bounding_box()
    assert up.is_visible() and box["x"] + box["width"] <= 390
    assert box["width"] >= 44 and box["height"] >= 44
    assert page.locator(f"input[name=use_{second.pk}]").is_checked()
    orders = {
        sender.phone_id: list(
            SenderTemplate.objects.filter(sender=sender)
            .order_by("position")
            .values_list("template__name", flat=True)
        )
        for sender in CampaignSender.objects.filter(campaign=campaign)
    }
    assert orders == {
        first.pk: ["spring_sale", "last_day"],
        second.pk: ["spring_sale", "last_day"],
    }
    screenshot(page, "phone-wizard-senders")
    phone.close()


def test_senders_on_a_laptop(logged_in_page, live_server, store, screenshot):
    campaign, (first, _), templates = store
    sender = SenderFactory(campaign=campaign, phone=first)
    SenderTemplateFactory(sender=sender, template=templates["spring_sale"], position=0)
    SenderTemplateFactory(sender=sender, template=templates["welcome_back"], position=1)
    page = logged_in_page
    page.goto(_step(live_server, campaign, "senders"))

    positions = page.locator(f"fieldset[data-phone='{first.pk}'] li[data-position]")
    assert positions.count() == 2
    assert [positions.nth(i).get_attribute("data-position") for i in range(2)] == ["1", "2"]
    screenshot(page, "wizard-step-senders")


@pytest.fixture
def mapped(store):
    campaign, (first, _), templates = store
    sender = SenderFactory(campaign=campaign, phone=first)
    SenderTemplateFactory(sender=sender, template=templates["spring_sale"], position=0)
    return campaign, templates["spring_sale"]


def test_variables_are_matched_by_name_and_unmapped_ones_stand_out(
    logged_in_page, live_server, mapped, screenshot
):
    campaign, spring = mapped
    page = logged_in_page
    page.goto(_step(live_server, campaign, "mapping"))

    name = page.locator("[data-slot='body.first_name']")
    assert name.locator("select").input_value() == "Full Name"
    assert page.locator("[data-slot='body.discount'] select").input_value() == "Discount"
    link = page.locator("[data-slot='button.0.1']")
    assert link.locator(".slot-state").inner_text() == "Not mapped"
    assert link.locator(".prefix").inner_text() == "https://shop.example/spring/"
    field = link.locator("input[type=text]")
    assert field.input_value() == "" and field.get_attribute("placeholder") == "e.g. AE-2026"
    placeholder_colour = field.evaluate("el => getComputedStyle(el, '::placeholder').color")
    assert placeholder_colour != field.evaluate("el => getComputedStyle(el).color")
    screenshot(page, "wizard-step-mapping")

    field.fill("AE-2026")
    assert link.locator(".slot-state").inner_text() == "Fixed text"
    page.click("button:has-text('Save and review')")
    page.wait_for_url("**/setup/review/")
    campaign.refresh_from_db()
    assert campaign.variable_mapping[str(spring.pk)] == {
        "body.first_name": {"column": "Full Name"},
        "body.discount": {"column": "Discount"},
        "button.0.1": {"text": "AE-2026"},
    }


def test_the_variables_step_fits_a_phone(browser, live_server, marketer, mapped, screenshot):
    campaign, _ = mapped
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = phone.new_page()
    _log_in(page, live_server, marketer)
    page.goto(_step(live_server, campaign, "mapping"))

    assert _fits_the_screen(page), "the variables step scrolls sideways on a phone"
    assert page.locator("[data-slot='button.0.1'] .prefix").is_visible()
    screenshot(page, "phone-wizard-mapping")
    phone.close()


def test_a_follow_ups_review_shows_the_paused_template_and_what_is_sent_instead(
    logged_in_page, live_server, store, screenshot
):
    campaign, (first, _), templates = store
    paused = templates["welcome_back"]
    paused.status = "PAUSED"
    paused.save(update_fields=["status"])
    sender = SenderFactory(campaign=campaign, phone=first)
    SenderTemplateFactory(sender=sender, template=paused, position=0)
    SenderTemplateFactory(sender=sender, template=templates["last_day"], position=1)
    campaign.variable_mapping = {
        str(paused.pk): {"body.1": {"column": "Full Name"}, "body.2": {"text": "X1"}},
        str(templates["last_day"].pk): {
            "body.1": {"column": "Full Name"},
            "body.2": {"column": "Discount"},
        },
    }
    campaign.save(update_fields=["variable_mapping"])
    page = logged_in_page
    page.goto(_step(live_server, campaign, "review"))

    notice = page.locator(f"#templates-unavailable li[data-template='{paused.pk}']")
    assert notice.locator(".badge").inner_text() == "Paused"
    assert "sends last_day instead" in notice.inner_text()
    assert page.locator(f".sample[data-template='{paused.pk}']").count() == 0
    samples = page.locator(f".sample[data-template='{templates['last_day'].pk}']")
    assert samples.count() == 3
    assert "Last day of the sale, Layla Haddad: everything 25% off." in samples.first.inner_text()
    screenshot(page, "wizard-step-review")

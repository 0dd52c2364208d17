"""Tracked links through the engine and the simulator, and the public redirect that counts
them (slices run in-process; tests/e2e runs real workers)."""

import json
import secrets

import pytest

from campaigns.clicks.links import redirect_prefix
from campaigns.clicks.models import TrackedLink
from campaigns.engine.staging import campaign_stage, world_dict
from campaigns.models import Campaign, Contact, Message
from campaigns.services.lifecycle import campaign_launch
from campaigns.tests.engine_setup import campaign_drive, engine_test_setup, simulators

pytestmark = pytest.mark.django_db

SALE = "https://shop.example/sale"


def _components():
    return [
        {"type": "BODY", "text": "{{1}}, your offer: {{2}}"},
        {
            "type": "BUTTONS",
            "buttons": [{"type": "URL", "text": "Open", "url": redirect_prefix() + "{{1}}"}],
        },
    ]


def _world(numbers=1):
    world = world_dict(numbers=numbers, mps=200, templates=("links_a",))
    for template in world["templates"]:
        template["components"] = _components()
    return world


MAPPING = {
    "body.1": {"column": "name"},
    "body.2": {"text": f"see {SALE}."},
    "button.0.1": {"column": "image"},
}


@pytest.fixture(autouse=True)
def engine_settings(settings, monkeypatch):
    engine_test_setup(settings, monkeypatch)


@pytest.fixture
def meta(settings):
    with simulators(settings) as start:
        yield lambda *, scenario=None: start(_world(), scenario=scenario)


def _launched(owner, *, contacts=4, track=True):
    campaign = campaign_stage(world=_world(), owner=owner, contacts=contacts)
    mapping = dict.fromkeys(campaign.variable_mapping, MAPPING)
    Campaign.objects.filter(pk=campaign.pk).update(variable_mapping=mapping, track_clicks=track)
    campaign.refresh_from_db()
    return campaign_launch(campaign=campaign)


def _links_in(body: dict) -> tuple[str, str]:
    """(the link in the body text, the URL button's suffix) as Meta received them."""
    body_part, button = body["template"]["components"]
    return body_part["parameters"][1]["text"], button["parameters"][0]["text"]


def test_every_recipient_gets_their_own_short_links_leading_to_their_own_url(
    meta, marketer, client
):
    sim = meta()
    campaign = campaign_drive(_launched(marketer, contacts=4), rounds=30)

    assert campaign.status == Campaign.Status.COMPLETED
    messages = list(Message.objects.filter(campaign=campaign).select_related("contact"))
    assert len(messages) == 4
    tokens = set()
    for message in messages:
        [received] = sim.messages(message.recipient.lstrip("+"))
        text, suffix = _links_in(received)
        assert text.startswith("see " + redirect_prefix()) and text.endswith(".")
        body_token = text.removeprefix("see " + redirect_prefix()).removesuffix(".")
        tokens |= {body_token, suffix}
        assert message.contact.phone.lstrip("+") not in json.dumps(received["template"])
        assert client.get(f"/r/{body_token}")["Location"] == SALE
        assert client.get(f"/r/{suffix}")["Location"] == message.contact.variables["image"]
    assert len(tokens) == 8
    assert TrackedLink.objects.filter(campaign=campaign).count() == 8


def test_a_click_answers_302_without_referrer_or_cache_in_one_statement(
    meta, marketer, client, django_assert_num_queries
):
    meta()
    campaign_drive(_launched(marketer, contacts=1), rounds=30)
    link = TrackedLink.objects.get(url=SALE)

    with django_assert_num_queries(1):
        response = client.get(f"/r/{link.token}?next=https://evil.example/")

    assert response.status_code == 302
    assert response["Location"] == SALE
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]


def test_the_first_click_is_kept_and_later_clicks_only_add_to_the_count(meta, marketer, client):
    meta()
    campaign_drive(_launched(marketer, contacts=1), rounds=30)
    link = TrackedLink.objects.get(url=SALE)
    assert (link.clicks, link.first_clicked_at) == (0, None)

    client.get(f"/r/{link.token}")
    link.refresh_from_db()
    first = link.first_clicked_at
    client.get(f"/r/{link.token}")
    link.refresh_from_db()

    assert first is not None
    assert link.first_clicked_at == first
    assert link.clicks == 2
    assert link.last_clicked_at >= first


@pytest.mark.parametrize(
    "forged",
    [
        lambda real: secrets.token_urlsafe(16),
        lambda real: real[:-1] + ("A" if real[-1] != "A" else "B"),
        lambda real: real + "x",
        lambda real: real[:10],
        lambda real: "../admin/",
    ],
    ids=["random", "one-character-changed", "longer", "shorter", "path"],
)
def test_a_forged_token_is_404_and_records_nothing(meta, marketer, client, forged):
    meta()
    campaign_drive(_launched(marketer, contacts=2), rounds=30)
    real = TrackedLink.objects.order_by("id").first().token

    response = client.get(f"/r/{forged(real)}")

    assert response.status_code == 404
    assert sum(TrackedLink.objects.values_list("clicks", flat=True)) == 0


def test_a_retry_resends_the_same_links_and_mints_no_new_ones(meta, marketer, client):
    sim = meta(scenario=[{"recipient": "971500000002", "error_code": 131000}])
    campaign = campaign_drive(_launched(marketer, contacts=3), rounds=3)
    contact = Contact.objects.get(campaign=campaign, phone="+971500000002")
    assert contact.attempts == 1
    first = contact.payload
    links_before = set(
        TrackedLink.objects.filter(contact=contact).values_list("token", "url").order_by("id")
    )
    assert len(links_before) == 2

    sim.set_scenario({"rules": []})
    Contact.objects.filter(pk=contact.pk).update(not_before=None)
    campaign = campaign_drive(campaign, rounds=30)

    assert campaign.status == Campaign.Status.COMPLETED
    [received] = sim.messages("971500000002")
    assert json.dumps(received, separators=(",", ":"), ensure_ascii=False) == first
    links_after = set(TrackedLink.objects.filter(contact=contact).values_list("token", "url"))
    assert links_after == links_before
    _, suffix = _links_in(received)
    assert client.get(f"/r/{suffix}")["Location"] == contact.variables["image"]


def test_without_tracking_body_links_go_out_as_given(meta, marketer):
    sim = meta()
    campaign = campaign_drive(_launched(marketer, contacts=1, track=False), rounds=30)

    [received] = sim.messages()
    text, suffix = _links_in(received)
    assert text == f"see {SALE}."
    # The button's template link is the redirect itself: it only works through a tracked link.
    link = TrackedLink.objects.get(campaign=campaign)
    assert link.token == suffix


def _read_and_clicked(client, campaign, *, clicked_phone: str):
    """Every message read; the person at `clicked_phone` follows their button link twice."""
    read = Message.objects.filter(campaign=campaign).update(status="read")
    Campaign.objects.filter(pk=campaign.pk).update(read_count=read)  # as the webhooks would
    contact = Contact.objects.get(campaign=campaign, phone=clicked_phone)
    link = TrackedLink.objects.filter(contact=contact).exclude(url=SALE).get()
    client.get(f"/r/{link.token}")
    client.get(f"/r/{link.token}")
    return contact


def test_the_campaign_page_counts_each_clicker_once_per_template_and_number(meta, marketer, client):
    meta()
    campaign = campaign_drive(_launched(marketer, contacts=3), rounds=30)
    _read_and_clicked(client, campaign, clicked_phone="+971500000002")
    client.force_login(marketer)

    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert 'data-stat="clicked"><div class="value">1<' in page
    assert "33.3% of read" in page
    assert '<td class="num" data-clicked>1</td>' in page  # the template's row and the number's


def test_the_api_gives_the_funnel_with_clicks(meta, marketer, client):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    meta()
    campaign = campaign_drive(_launched(marketer, contacts=3), rounds=30)
    _read_and_clicked(client, campaign, clicked_phone="+971500000001")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=marketer).key}")

    data = api.get(f"/api/campaigns/{campaign.pk}/clicks/").json()

    assert data["clicked"] == 1
    [template] = data["by_template"]
    assert (template["sent"], template["read"], template["clicked"]) == (3, 3, 1)
    assert data["by_number"][0]["clicked"] == 1


@pytest.mark.parametrize(
    ("audience", "phones"),
    [("clicked", {"+971500000003"}), ("read_not_clicked", {"+971500000001", "+971500000002"})],
)
def test_a_follow_up_reaches_the_clickers_or_the_readers_who_did_not_click(
    meta, marketer, client, audience, phones
):
    from campaigns.services.lifecycle import campaign_retarget

    meta()
    campaign = campaign_drive(_launched(marketer, contacts=4), rounds=30)
    _read_and_clicked(client, campaign, clicked_phone="+971500000003")
    Message.objects.filter(campaign=campaign, recipient="+971500000004").update(status="delivered")

    follow_up = campaign_retarget(campaign=campaign, audience=audience, user=marketer)

    assert set(follow_up.contacts.values_list("phone", flat=True)) == phones
    assert follow_up.track_clicks


def test_the_dashboard_counts_todays_clickers(meta, marketer, client):
    meta()
    campaign = campaign_drive(_launched(marketer, contacts=3), rounds=30)
    _read_and_clicked(client, campaign, clicked_phone="+971500000001")
    client.force_login(marketer)

    page = client.get("/").content.decode()

    assert 'data-stat="clicked"><div class="value">1<' in page

"""Syncing against the Meta simulator over loopback HTTP."""

import pytest
from django.utils import timezone

from templates_app.models import MessageTemplate, PhoneNumber, WhatsAppAccount
from templates_app.services import sync
from templates_app.services.sync import (
    AccountVerificationError,
    account_sync,
    account_verify_token,
    accounts_sync,
    templates_upsert,
)
from templates_app.signals import template_status_changed
from templates_app.tests.conftest import TOKEN, WABA, build_world, template_item
from tests.factories import AccountFactory, PhoneFactory

CAROUSEL = [
    {"type": "BODY", "text": "Pick one"},
    {"type": "CAROUSEL", "cards": [{"components": [{"type": "HEADER", "format": "IMAGE"}]}]},
]


def test_a_three_page_template_listing_arrives_whole(meta, account, monkeypatch):
    monkeypatch.setattr(sync, "PAGE_SIZE", 10)
    meta.set_world(build_world(templates=25), replace=True)

    result = account_sync(account=account)

    assert result.templates == 25
    names = set(MessageTemplate.objects.filter(account=account).values_list("name", flat=True))
    assert names == {f"promo_{i:04d}" for i in range(25)}


def test_numbers_arrive_with_quality_limit_and_rate_from_throughput(meta, account):
    account_sync(account=account)

    high, standard = PhoneNumber.objects.filter(account=account).order_by("phone_number_id")
    assert (high.throughput_level, high.max_mps) == ("HIGH", 1000)
    assert (standard.throughput_level, standard.max_mps) == ("STANDARD", 80)
    assert standard.quality_rating == "GREEN"
    assert standard.messaging_limit == "TIER_10K"
    assert standard.display_phone_number == "+971 50 777 0001"


def test_a_lowered_rate_survives_the_next_sync(meta, account):
    account_sync(account=account)
    phone = PhoneNumber.objects.get(phone_number_id="200000000000770")
    phone.set_max_mps(25)

    account_sync(account=account)

    phone.refresh_from_db()
    assert (phone.max_mps, phone.max_mps_overridden) == (25, True)


def test_a_renamed_template_updates_its_row_in_place(meta, account):
    account_sync(account=account)
    before = MessageTemplate.objects.get(meta_template_id=template_item(1)["id"])
    world = build_world(templates=3)
    world["templates"][1]["name"] = "promo_renamed"
    meta.set_world(world, replace=True)

    account_sync(account=account)

    after = MessageTemplate.objects.get(meta_template_id=template_item(1)["id"])
    assert (after.pk, after.name) == (before.pk, "promo_renamed")
    assert MessageTemplate.objects.filter(account=account).count() == 3


def test_a_template_gone_from_meta_is_kept_and_marked_deleted(meta, account):
    account_sync(account=account)
    meta.set_world(build_world(templates=2), replace=True)

    result = account_sync(account=account)

    gone = MessageTemplate.objects.get(name="promo_0002")
    assert result.deleted == 1
    assert gone.deleted_at_meta
    assert not gone.is_sendable
    assert gone not in MessageTemplate.objects.sendable()


def test_a_template_listed_again_is_no_longer_marked_deleted(meta, account):
    account_sync(account=account)
    meta.set_world(build_world(templates=2), replace=True)
    account_sync(account=account)
    meta.set_world(build_world(templates=3), replace=True)

    account_sync(account=account)

    assert not MessageTemplate.objects.get(name="promo_0002").deleted_at_meta


def test_variable_slots_are_parsed_and_stored(meta, account):
    account_sync(account=account)

    template = MessageTemplate.objects.get(name="promo_0000")
    assert [slot["key"] for slot in template.slots] == ["header.1", "body.1", "body.2"]
    assert template.approved_category == "MARKETING"
    assert template.is_sendable


def test_a_template_titanflow_cannot_fill_stays_visible_but_unselectable(meta, account):
    world = build_world(templates=1)
    world["templates"].append(template_item(5, name="cards", components=CAROUSEL))
    meta.set_world(world, replace=True)

    result = account_sync(account=account)

    cards = MessageTemplate.objects.get(name="cards")
    assert result.unsupported == 1
    assert "Carousel" in cards.unsupported_reason
    assert cards.unavailable_reason == cards.unsupported_reason
    assert list(MessageTemplate.objects.sendable().values_list("name", flat=True)) == ["promo_0000"]


def test_a_paused_template_stays_paused_until_meta_approves_it(meta, account):
    meta.set_world(build_world(templates=1, status="PAUSED"), replace=True)
    account_sync(account=account)
    account_sync(account=account)
    template = MessageTemplate.objects.get(name="promo_0000")
    assert template.status == "PAUSED"
    assert not template.is_sendable

    meta.set_world(build_world(templates=1), replace=True)
    account_sync(account=account)

    template.refresh_from_db()
    assert template.status == "APPROVED"
    assert template.is_sendable


def test_a_pause_reported_while_the_listing_was_fetched_is_not_undone(meta, account, monkeypatch):
    account_sync(account=account)
    fetch = sync._fetch_templates

    def fetch_then_webhook(*args):
        items = fetch(*args)  # Meta's listing still says APPROVED...
        MessageTemplate.objects.filter(name="promo_0001").update(  # ...then a webhook pauses it
            status="PAUSED", status_changed_at=timezone.now()
        )
        return items

    monkeypatch.setattr(sync, "_fetch_templates", fetch_then_webhook)
    account_sync(account=account)

    assert MessageTemplate.objects.get(name="promo_0001").status == "PAUSED"
    assert MessageTemplate.objects.get(name="promo_0000").status == "APPROVED"


def test_senders_hear_about_templates_whose_sendability_changed(
    meta, account, django_capture_on_commit_callbacks
):
    account_sync(account=account)
    world = build_world(templates=2)
    world["templates"][0]["status"] = "DISABLED"
    meta.set_world(world, replace=True)
    heard = []

    def receiver(sender, template_ids, **kwargs):
        heard.extend(template_ids)

    template_status_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            account_sync(account=account)
    finally:
        template_status_changed.disconnect(receiver)

    names = (
        MessageTemplate.objects.filter(pk__in=heard).order_by("name").values_list("name", flat=True)
    )
    assert list(names) == ["promo_0000", "promo_0002"]  # disabled, and gone from Meta


def test_a_category_change_after_approval_makes_the_template_unselectable(meta, account):
    account_sync(account=account)
    meta.set_world(build_world(templates=1, category="UTILITY"), replace=True)

    account_sync(account=account)

    template = MessageTemplate.objects.get(name="promo_0000")
    assert not template.is_sendable
    assert "from marketing to utility" in template.unavailable_reason


def test_a_new_approval_accepts_the_new_category(meta, account):
    account_sync(account=account)
    meta.set_world(build_world(templates=1, category="UTILITY", status="PENDING"), replace=True)
    account_sync(account=account)
    meta.set_world(build_world(templates=1, category="UTILITY"), replace=True)

    account_sync(account=account)

    assert MessageTemplate.objects.get(name="promo_0000").is_sendable


def test_a_refused_token_marks_the_account_and_says_so(meta, db):
    account = AccountFactory(waba_id=WABA, access_token="revoked")

    result = account_sync(account=account)

    account.refresh_from_db()
    assert account.health == WhatsAppAccount.Health.TOKEN_INVALID
    assert "invalid or expired" in account.health_detail
    assert result.error == account.health_detail
    assert not MessageTemplate.objects.exists()


def test_a_working_token_clears_the_invalid_flag(meta, account):
    account.mark_health(WhatsAppAccount.Health.TOKEN_INVALID, "old news")

    account_sync(account=account)

    account.refresh_from_db()
    assert (account.health, account.health_detail) == ("ok", "")
    assert account.last_synced_at is not None


def test_the_token_check_returns_the_account_meta_knows(meta):
    assert account_verify_token(waba_id=WABA, access_token=TOKEN)["name"] == "Sync Shop"


def test_the_token_check_explains_a_refused_token(meta):
    with pytest.raises(AccountVerificationError, match="invalid or expired"):
        account_verify_token(waba_id=WABA, access_token="wrong")


def test_the_token_check_explains_an_unreachable_meta(settings):
    settings.WHATSAPP_GRAPH_URL = "http://127.0.0.1:9"  # discard port: nothing listens

    with pytest.raises(AccountVerificationError, match="could not reach Meta"):
        account_verify_token(waba_id=WABA, access_token=TOKEN)


def test_templates_upsert_takes_graph_items_and_is_idempotent(db):
    account = AccountFactory()
    items = [{**template_item(i), "quality_score": {"score": "GREEN"}} for i in range(3)]

    assert templates_upsert(account=account, items=items) == 3
    assert templates_upsert(account=account, items=items) == 3

    assert MessageTemplate.objects.filter(account=account).count() == 3
    assert MessageTemplate.objects.get(name="promo_0001").quality_score == "GREEN"


def test_a_sync_of_2000_templates_issues_a_bounded_number_of_queries(
    meta, account, django_assert_max_num_queries
):
    meta.set_world(build_world(templates=2000), replace=True)
    account_sync(account=account)  # the first sync inserts, the second updates every row
    meta.set_world(build_world(templates=2000, status="PAUSED"), replace=True)

    # Read lowered phones, upsert phones, read templates, 2 upsert batches of 1,000, mark the
    # gone ones, stamp the account, and the savepoint pair around the template writes: 9.
    with django_assert_max_num_queries(9):
        result = account_sync(account=account)

    assert result.templates == 2000
    assert MessageTemplate.objects.filter(status="PAUSED").count() == 2000


@pytest.mark.django_db(transaction=True)
def test_accounts_sync_in_parallel_and_one_refusal_does_not_stop_the_others(meta):
    world = build_world(templates=4)
    world["accounts"].append({"waba_id": "100000000000778", "name": "Two", "access_token": "t2"})
    world["templates"].append(template_item(9, waba_id="100000000000778", name="second"))
    meta.set_world(world, replace=True)
    first = AccountFactory(waba_id=WABA, access_token=TOKEN)
    second = AccountFactory(waba_id="100000000000778", access_token="t2")
    broken = AccountFactory(waba_id="100000000000779", access_token="nope")

    results = {r.account_id: r for r in accounts_sync(accounts=[first, second, broken])}

    assert (results[first.pk].templates, results[second.pk].templates) == (4, 1)
    assert not results[broken.pk].ok
    assert PhoneFactory._meta.model.objects.filter(account=first).count() == 2

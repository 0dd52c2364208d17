from datetime import UTC, datetime

import pytest

from templates_app.models import MessageTemplate, WhatsAppAccount
from templates_app.services.events import (
    AssetEvent,
    account_event_apply,
    phone_event_apply,
    template_events_apply,
)
from templates_app.signals import template_status_changed
from tests.factories import AccountFactory, PhoneFactory, TemplateFactory

pytestmark = pytest.mark.django_db
WABA = "123450000000001"


@pytest.fixture
def template():
    return TemplateFactory(account=AccountFactory(waba_id=WABA), meta_template_id="9001")


def _status(event: str, *, at: int | None = None, **extra) -> AssetEvent:
    value = {"event": event, "message_template_id": 9001, **extra}
    when = datetime.fromtimestamp(at, UTC) if at else None
    return AssetEvent(WABA, "message_template_status_update", value, when)


def _apply(*events):
    return template_events_apply(events=list(events))


@pytest.mark.parametrize("event", ["PAUSED", "DISABLED", "FLAGGED", "REJECTED"])
def test_blocking_events_make_the_template_unsendable_until_approved(template, event):
    assert _apply(_status(event, reason="LOW_QUALITY")) == [template.pk]
    template.refresh_from_db()
    assert template.status == event and not template.is_sendable
    _apply(_status("REINSTATED"))
    template.refresh_from_db()
    assert template.is_sendable and template.status_reason == ""


def test_deleted_templates_are_kept_but_never_sendable(template):
    _apply(_status("PENDING_DELETION"))
    template.refresh_from_db()
    assert template.deleted_at_meta and not template.is_sendable
    assert MessageTemplate.objects.filter(pk=template.pk).exists()


def test_template_found_by_name_and_language_without_meta_id(template):
    event = AssetEvent(
        WABA,
        "message_template_status_update",
        {
            "event": "PAUSED",
            "message_template_name": template.name,
            "message_template_language": "en_US",
        },
        None,
    )
    assert _apply(event) == [template.pk]


def test_event_for_an_unknown_template_changes_nothing(template):
    other = AssetEvent(
        WABA, "message_template_status_update", {"event": "PAUSED", "message_template_id": 1}, None
    )
    assert _apply(other) == []
    template.refresh_from_db()
    assert template.status == "APPROVED"


def test_the_engine_hears_which_templates_changed_after_commit(
    template, django_capture_on_commit_callbacks
):
    heard = []

    def receiver(**kwargs):
        heard.append(kwargs["template_ids"])

    template_status_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            _apply(_status("PAUSED"))
            assert heard == []
    finally:
        template_status_changed.disconnect(receiver)
    assert heard == [[template.pk]]


def test_category_moved_away_from_the_approved_one_is_unsendable(template):
    change = {
        "message_template_id": 9001,
        "previous_category": "UTILITY",
        "new_category": "MARKETING",
    }
    template.category = template.approved_category = "UTILITY"
    template.save()
    _apply(AssetEvent(WABA, "template_category_update", change, None))
    template.refresh_from_db()
    assert template.category == "MARKETING" and not template.is_sendable


def test_impending_category_change_is_only_noted(template):
    impending = {
        "message_template_id": 9001,
        "correct_category": "UTILITY",
        "new_category": "UTILITY",
    }
    assert _apply(AssetEvent(WABA, "template_category_update", impending, None)) == []
    template.refresh_from_db()
    assert template.category == "MARKETING" and template.is_sendable


def test_quality_update_is_stored(template):
    value = {"message_template_id": 9001, "new_quality_score": "RED"}
    _apply(AssetEvent(WABA, "message_template_quality_update", value, None))
    template.refresh_from_db()
    assert template.quality_score == "RED" and template.is_sendable


def _phone_event(**value) -> AssetEvent:
    return AssetEvent(
        WABA, "phone_number_quality_update", {"display_phone_number": "15550001234", **value}, None
    )


@pytest.fixture
def phone():
    return PhoneFactory(
        account=AccountFactory(waba_id=WABA), display_phone_number="+1 555-000-1234"
    )


def test_throughput_upgrade_keeps_a_rate_staff_lowered(phone):
    phone.max_mps, phone.max_mps_overridden = 20, True
    phone.save()
    phone_event_apply(event=_phone_event(event="THROUGHPUT_UPGRADE"))
    phone.refresh_from_db()
    assert (phone.throughput_level, phone.max_mps) == ("HIGH", 20)


def test_quality_and_messaging_limit_updates(phone):
    phone_event_apply(
        event=_phone_event(event="FLAGGED", max_daily_conversations_per_business="TIER_2K")
    )
    phone.refresh_from_db()
    assert (phone.quality_rating, phone.messaging_limit) == ("RED", "TIER_2K")


def test_phone_event_for_another_number_changes_nothing(phone):
    event = AssetEvent(
        WABA,
        "phone_number_quality_update",
        {"display_phone_number": "1999", "event": "FLAGGED"},
        None,
    )
    assert phone_event_apply(event=event) is None


def test_ban_restricts_the_account_and_reinstatement_clears_it():
    account = AccountFactory(waba_id=WABA)
    ban = {"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "DISABLE"}}
    restriction = account_event_apply(event=AssetEvent(WABA, "account_update", ban, None))
    assert restriction.account_id == account.pk and "disabled" in restriction.reason
    assert WhatsAppAccount.objects.get(pk=account.pk).health == "restricted"
    lifted = {"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "REINSTATE"}}
    assert account_event_apply(event=AssetEvent(WABA, "account_update", lifted, None)) is None
    assert WhatsAppAccount.objects.get(pk=account.pk).health == "ok"


def test_informational_account_events_change_nothing():
    account = AccountFactory(waba_id=WABA)
    event = AssetEvent(WABA, "account_update", {"event": "PARTNER_ADDED"}, None)
    assert account_event_apply(event=event) is None
    assert WhatsAppAccount.objects.get(pk=account.pk).health == "ok"

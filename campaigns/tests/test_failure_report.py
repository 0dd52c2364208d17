"""Failure reasons in the kinds a marketer acts on: never reached Meta, refused by Meta, failed
after Meta accepted it; grouped by template as well as code."""

import pytest

from campaigns.engine.reactions import failure_reason
from campaigns.models import Campaign, Contact, Message
from campaigns.services.failure_report import campaign_failures
from campaigns.services.lifecycle import campaign_stats
from tests.factories import CampaignFactory, ContactFactory, MessageFactory, TemplateFactory
from titanflow.whatsapp.errors import TRANSPORT_INFO, classify

pytestmark = pytest.mark.django_db

MISSING = "No value for body.2: this row cannot fill any template (spring_sale)."


def _failed(campaign, n=1, **fields):
    return ContactFactory.create_batch(n, campaign=campaign, state=Contact.State.FAILED, **fields)


def _by_kind(groups):
    return {(g.kind, g.cause, g.code, g.template_name): g.count for g in groups}


@pytest.fixture
def campaign():
    return CampaignFactory(status=Campaign.Status.COMPLETED)


def test_a_missing_value_is_never_shown_as_a_network_failure(campaign):
    _failed(campaign, 2, last_error=MISSING)

    [group] = campaign_failures(campaign_id=campaign.pk)

    assert (group.kind, group.cause, group.code) == ("not_sent", "missing_value", None)
    assert group.count == 2
    assert group.kind_label == "Never reached Meta"
    assert group.meaning == MISSING
    assert "could not be reached" not in group.meaning + group.action
    assert group.meta_said == ""


def test_network_refusal_and_webhook_failures_are_three_kinds(campaign):
    spring = TemplateFactory(name="spring_sale")
    _failed(campaign, last_error=TRANSPORT_INFO.meaning, payload_template=spring)
    refused = failure_reason(classify(131026), "Message undeliverable")
    _failed(campaign, 2, last_error_code=131026, last_error=refused, payload_template=spring)
    [after] = _failed(campaign, last_error_code=131026, last_error=refused)
    MessageFactory(contact=after, template=spring, status=Message.Status.FAILED, error_code=131026)

    groups = campaign_failures(campaign_id=campaign.pk)

    name = f"spring_sale ({spring.language})"
    assert _by_kind(groups) == {
        ("refused", "recipient", 131026, name): 2,
        ("not_sent", "network", None, name): 1,
        ("failed_after_acceptance", "recipient", 131026, name): 1,
    }
    refused_group = groups[0]
    assert refused_group.meaning == classify(131026).meaning
    assert refused_group.meta_said == "Message undeliverable"


def test_failures_of_two_templates_are_two_rows(campaign):
    first, second = TemplateFactory(name="spring_sale"), TemplateFactory(name="autumn_sale")
    reason = failure_reason(classify(132000))
    _failed(campaign, 3, last_error_code=132000, last_error=reason, payload_template=first)
    _failed(campaign, 1, last_error_code=132000, last_error=reason, payload_template=second)

    groups = campaign_failures(campaign_id=campaign.pk)

    assert [(g.template_id, g.count) for g in groups] == [(first.pk, 3), (second.pk, 1)]


def test_stats_give_the_same_groups_and_senders_sum_to_the_sent_counter(campaign):
    _failed(campaign, last_error=MISSING)
    [contact] = ContactFactory.create_batch(1, campaign=campaign, state=Contact.State.SENT)
    # Sent once with a template Meta failed by webhook, then again with the next one.
    MessageFactory(contact=contact, status=Message.Status.FAILED, error_code=132015)
    MessageFactory(contact=contact, status=Message.Status.DELIVERED)

    stats = campaign_stats(campaign=campaign)

    assert stats["failures"] == [
        {
            "kind": "not_sent",
            "cause": "missing_value",
            "code": None,
            "template": None,
            "count": 1,
            "meaning": MISSING,
            "action": stats["failures"][0]["action"],
            "meta_said": "",
        }
    ]
    assert stats["counters"]["failed"] == 1
    assert stats["counters"]["sent"] == 1

"""The Meta simulator's signed deliveries through a live door and the processor."""

import pytest
import requests

from campaigns.models import OptOut
from inbox.models import InboxMessage
from templates_app.models import MessageTemplate, PhoneNumber
from tests.factories import AccountFactory, PhoneFactory, TemplateFactory
from titanflow.simulator.demo import DEMO_PHONES, DEMO_WABA
from titanflow.simulator.testing import start_simulator
from webhooks.models import WebhookEvent
from webhooks.processor import deliveries_process
from webhooks.tests.conftest import SECRET, URL

pytestmark = pytest.mark.django_db(transaction=True)
TEMPLATE_ID = "300000000000001"


@pytest.fixture
def meta(live_server):
    account = AccountFactory(waba_id=DEMO_WABA)
    PhoneFactory(
        account=account, phone_number_id=DEMO_PHONES[0], display_phone_number="+971 50 100 0001"
    )
    TemplateFactory(account=account, meta_template_id=TEMPLATE_ID, name="order_update")
    with start_simulator(webhook_url=live_server.url + URL, app_secret=SECRET) as handle:
        yield handle


def _control(meta, path: str, data: dict) -> dict:
    response = requests.post(f"{meta.url}/_sim/{path}", json=data, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_simulated_meta_events_are_accepted_and_applied(meta):
    paused = _control(meta, "template_event", {"template_id": TEMPLATE_ID, "event": "PAUSED"})
    upgrade = _control(meta, "phone_event", {"phone_number_id": DEMO_PHONES[0]})
    stop = _control(
        meta, "inbound", {"phone_number_id": DEMO_PHONES[0], "from": "971500000077", "text": "Stop"}
    )
    assert [paused["webhook_statuses"], upgrade["webhook_status"], stop["webhook_status"]] == [
        [200],
        200,
        200,
    ]
    deliveries_process()
    assert WebhookEvent.objects.filter(processed_at__isnull=False, error="").count() == 3
    assert MessageTemplate.objects.get(meta_template_id=TEMPLATE_ID).status == "PAUSED"
    assert PhoneNumber.objects.get(phone_number_id=DEMO_PHONES[0]).max_mps == 1000
    assert InboxMessage.objects.get().wamid == stop["wamid"]
    assert OptOut.objects.get().phone == "+971500000077"


def test_a_simulator_signing_with_another_secret_is_refused(live_server):
    with start_simulator(webhook_url=live_server.url + URL, app_secret="not-ours") as meta:
        result = _control(
            meta, "user_preferences", {"phone_number_id": DEMO_PHONES[0], "wa_id": "971500000078"}
        )
    assert result["webhook_status"] == 403
    assert not WebhookEvent.objects.exists()

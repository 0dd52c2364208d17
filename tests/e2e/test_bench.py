"""`manage.py bench` end to end on a small campaign: both paths through real processes."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from campaigns.models import Campaign
from templates_app.models import WhatsAppAccount

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CONTACTS = 300


def test_bench_sends_every_contact_on_both_paths_and_leaves_nothing_behind(engine_settings):
    out = StringIO()
    call_command(
        "bench", "--contacts", str(CONTACTS), "--bare-seconds", "0.5", "--timeout", "120",
        stdout=out,
    )  # fmt: skip
    report = json.loads(out.getvalue())

    send, full = report["send_path"], report["full_path"]
    assert send["messages"] == full["messages"] == CONTACTS
    assert send["meta_rejected_by_code"] == {}
    assert send["bare_loop_per_s"] > 0 and report["ratio_to_bare"] > 0
    # Three signed status webhooks per message, every one acknowledged by our door.
    assert full["webhooks"]["posted"] == 3 * CONTACTS
    assert full["webhooks"]["failed"] == 0
    assert full["webhooks"]["ack_ms_p99"] >= full["webhooks"]["ack_ms_p50"] > 0
    assert 0 < full["statements_per_message"] < 1
    assert not Campaign.objects.filter(name="bench").exists()
    assert not WhatsAppAccount.objects.exists()

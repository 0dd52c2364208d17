"""Meta's 2025-2026 rules in the simulator: the portfolio's tier, the per-user marketing cap for a
share of recipients, held templates, quality and tier changes on demand."""

import json

from titanflow.simulator.scenario import recipient_draw
from titanflow.simulator.testing import start_simulator
from titanflow.simulator.tests.conftest import APP_SECRET
from titanflow.simulator.tests.helpers import PHONE, WABA, order_update, send


def _limited(receiver, clock, *, tier="TIER_250", window=100.0):
    meta = start_simulator(
        webhook_url=receiver.url,
        app_secret=APP_SECRET,
        stage_delay_ms=(0, 1),
        statuses=("sent",),
        portfolio_limits=True,
        portfolio_window_s=window,
        clock=clock,
    )
    world = meta.world()
    for account in world["accounts"]:
        account["messaging_limit"] = tier
    meta.set_world(world)
    return meta


def _failed_codes(receiver) -> dict[str, int]:
    return {
        s["recipient_id"]: s["errors"][0]["code"]
        for s in receiver.statuses()
        if s["status"] == "failed"
    }


def test_templates_to_new_recipients_over_the_portfolio_tier_fail_with_131064(receiver, clock):
    with _limited(receiver, clock, tier="2") as meta:
        answers = [send(meta.url, order_update(to)) for to in ("9715001", "9715002", "9715003")]
        again = send(meta.url, order_update("9715001"))  # already reached: no new room needed
        meta.wait_for_webhooks()

    assert [a.status_code for a in [*answers, again]] == [200, 200, 200, 200]  # Meta accepts
    assert _failed_codes(receiver) == {"9715003": 131064}


def test_the_portfolio_window_frees_room_as_it_rolls(receiver, clock):
    with _limited(receiver, clock, tier="1", window=10) as meta:
        send(meta.url, order_update("9715001"))
        clock.advance(11)
        send(meta.url, order_update("9715002"))
        meta.wait_for_webhooks()
    assert _failed_codes(receiver) == {}


def test_a_share_of_recipients_meets_131049_on_every_send(receiver, clock):
    recipients = [f"97150{n:07d}" for n in range(200)]
    capped = {r for r in recipients if recipient_draw(r) < 0.2}
    rule = {"error_code": 131049, "share": 0.2, "delivery": "webhook"}
    with start_simulator(
        webhook_url=receiver.url,
        app_secret=APP_SECRET,
        stage_delay_ms=(0, 1),
        statuses=("sent",),
        clock=clock,
    ) as meta:
        meta.set_scenario({"rules": [rule]})
        for n, to in enumerate(recipients):
            clock.advance(1.0 if n % 50 == 49 else 0)  # under the number's 80/s
            assert send(meta.url, order_update(to)).status_code == 200
        meta.wait_for_webhooks()

    assert 20 <= len(capped) <= 60
    assert set(_failed_codes(receiver)) == capped
    assert set(_failed_codes(receiver).values()) == {131049}


def test_a_held_template_is_answered_held_and_never_delivered(receiver):
    rule = {"message_status": "held_for_quality_assessment", "template": "order_update"}
    with start_simulator(
        webhook_url=receiver.url, app_secret=APP_SECRET, stage_delay_ms=(0, 1)
    ) as meta:
        meta.set_scenario({"rules": [rule]})
        answer = send(meta.url, order_update("9715001")).json()
        meta.wait_for_webhooks()

    assert answer["messages"][0]["message_status"] == "held_for_quality_assessment"
    assert [s["status"] for s in receiver.statuses()] == ["sent"]


def test_status_webhooks_carry_a_pmp_pricing_block(receiver):
    with start_simulator(
        webhook_url=receiver.url, app_secret=APP_SECRET, stage_delay_ms=(0, 1)
    ) as meta:
        send(meta.url, order_update("9715001"))
        meta.wait_for_webhooks()
    pricing = {s["status"]: s["pricing"] for s in receiver.statuses()}
    assert pricing["delivered"] == {
        "billable": True,
        "pricing_model": "PMP",
        "type": "regular",
        "category": "utility",
    }


def test_quality_and_tier_change_on_demand_with_metas_webhooks(receiver):
    with start_simulator(webhook_url=receiver.url, app_secret=APP_SECRET) as meta:
        meta.phone_event(phone_number_id=PHONE, event="FLAGGED")
        meta.capability_event(waba_id=WABA, messaging_limit="TIER_250")
        world = meta.world()

    changes = [c for body in receiver.bodies() for e in body["entry"] for c in e["changes"]]
    assert [c["field"] for c in changes] == [
        "phone_number_quality_update",
        "business_capability_update",
    ]
    assert changes[0]["value"]["event"] == "FLAGGED"
    assert changes[1]["value"] == {"max_daily_conversations_per_business": "TIER_250"}
    phone = next(p for p in world["phones"] if p["phone_number_id"] == PHONE)
    assert phone["quality_rating"] == "RED"
    assert json.dumps(world["accounts"]).count('"TIER_250"') == 1

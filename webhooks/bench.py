"""How fast the processor applies statuses: `processor_benchmark()` for `manage.py bench`.

It writes its own campaign, messages and signed-shape deliveries into the configured database,
drains them with the real processor, and deletes everything it made. Run it on a database with
no webhook backlog of its own: the processor drains whatever is waiting.
"""

import json
import time
import uuid

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from campaigns.engine.staging import bench_tables_vacuum
from campaigns.models import Campaign
from templates_app.models import MessageTemplate, PhoneNumber, WhatsAppAccount
from webhooks.models import WebhookEvent
from webhooks.processor import deliveries_process

INSERT_CHUNK = 5000
# A message row as the engine writes it: the request body (a template with a media header and
# two body parameters) is most of the row, and the row's size decides how many updated
# versions fit in a page.
REQUEST_BODY = json.dumps(
    {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "971500000000",
        "type": "template",
        "biz_opaque_callback_data": "tf:c:1000000",
        "template": {
            "name": "spring_promo_2026",
            "language": {"code": "en_US", "policy": "deterministic"},
            "components": [
                {
                    "type": "header",
                    "parameters": [
                        {"type": "image", "image": {"link": "https://cdn.example.com/a/spring.jpg"}}
                    ],
                },
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Mariam Al Hashimi"},
                        {"type": "text", "text": "25%"},
                    ],
                },
            ],
        },
    }
)


def processor_benchmark(*, statuses: int = 100_000, per_delivery: int = 1) -> dict:
    """Applies `statuses` delivered statuses, `per_delivery` in each delivery, and reports
    statuses applied per second (from the first batch to an empty backlog)."""
    tag = uuid.uuid4().hex[:10]
    campaign = _campaign(tag)
    event_ids: list[int] = []
    try:
        wamids = _messages(campaign, statuses, tag)
        event_ids += _deliveries(wamids, per_delivery)
        started = time.perf_counter()
        applied = 0
        while (result := deliveries_process(time_budget_s=3600)).deliveries:
            applied += result.statuses_moved
        elapsed = time.perf_counter() - started
        campaign.refresh_from_db()
        return {
            "statuses": statuses,
            "per_delivery": per_delivery,
            "deliveries": len(event_ids),
            "applied": applied,
            "delivered_count": campaign.delivered_count,
            "seconds": round(elapsed, 2),
            "statuses_per_s": round(applied / elapsed) if elapsed else None,
        }
    finally:
        _cleanup(campaign, tag, event_ids)


def _campaign(tag: str) -> Campaign:
    owner = get_user_model().objects.create(username=f"bench-{tag}")
    account = WhatsAppAccount.objects.create(waba_id=f"bench-{tag}", name="bench", access_token="x")
    PhoneNumber.objects.create(
        account=account, phone_number_id=f"bench-{tag}", display_phone_number=tag
    )
    MessageTemplate.objects.create(account=account, name=f"bench_{tag}", language="en_US")
    return Campaign.objects.create(name=f"bench {tag}", owner=owner, status="running")


def _messages(campaign: Campaign, count: int, tag: str) -> list[str]:
    phone = PhoneNumber.objects.get(phone_number_id=f"bench-{tag}")
    template = MessageTemplate.objects.get(account=phone.account)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH c AS (
                INSERT INTO campaigns_contact (campaign_id, phone, name, variables, state,
                    attempts, payload, last_error, skip_reason, row_number)
                SELECT %(campaign)s, '+9715' || lpad(n::text, 8, '0'), '', '{}', 'sent', 1,
                    '', '', '', n
                FROM generate_series(1, %(count)s) n
                RETURNING id, phone
            )
            INSERT INTO campaigns_message (campaign_id, contact_id, phone_id, template_id,
                recipient, wamid, request_body, status, error_title, sent_at)
            SELECT %(campaign)s, id, %(phone)s, %(template)s, phone,
                'wamid.' || %(tag)s || '.' || id, %(body)s, 'sent', '', now()
            FROM c
            RETURNING wamid
            """,
            {
                "campaign": campaign.pk,
                "count": count,
                "phone": phone.pk,
                "template": template.pk,
                "tag": tag,
                "body": REQUEST_BODY,
            },
        )
        return [wamid for (wamid,) in cursor.fetchall()]


def _deliveries(wamids: list[str], per_delivery: int) -> list[int]:
    now = timezone.now()
    stamp = str(int(now.timestamp()))
    events = []
    for start in range(0, len(wamids), per_delivery):
        items = [
            {"id": w, "status": "delivered", "timestamp": stamp, "recipient_id": "971500000000"}
            for w in wamids[start : start + per_delivery]
        ]
        value = {"messaging_product": "whatsapp", "metadata": {}, "statuses": items}
        body = {"object": "whatsapp_business_account", "entry": [{"id": "bench", "changes": [
            {"field": "messages", "value": value}
        ]}]}  # fmt: skip
        events.append(
            WebhookEvent(body=json.dumps(body).encode(), signature_valid=True, received_at=now)
        )
    created = WebhookEvent.objects.bulk_create(events, batch_size=INSERT_CHUNK)
    return [event.pk for event in created]


def _cleanup(campaign: Campaign, tag: str, event_ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM webhooks_webhookevent WHERE id = ANY(%s)", [event_ids])
        cursor.execute("DELETE FROM campaigns_message WHERE campaign_id = %s", [campaign.pk])
        cursor.execute("DELETE FROM campaigns_contact WHERE campaign_id = %s", [campaign.pk])
    owner_id = campaign.owner_id
    campaign.delete()
    WhatsAppAccount.objects.filter(waba_id=f"bench-{tag}").delete()
    get_user_model().objects.filter(pk=owner_id).delete()
    bench_tables_vacuum()

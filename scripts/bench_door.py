"""Measure the webhook door alone as Meta meets it: the Procfile's own door line, signed POSTs.

    .venv/bin/python scripts/bench_door.py [--deliveries 10000] [--in-flight 16] [--web]

Starts the Procfile's door line (`--web`: its web line, which serves the same URL) on a free
port and posts `--deliveries` signed status
deliveries (one status each, as Meta sends them) with `--in-flight` at once over keep-alive
connections (the simulator's own client), then prints deliveries/s, answer latency
percentiles and the web server's CPU per delivery read from /proc. Every delivery is stored in
the database in DATABASE_URL before it is answered; the script deletes what it stored. Needs
META_APP_SECRET. With no webhook worker running nothing processes them meanwhile; beside `make
run` its worker does, and their statuses, which name no message, are deleted too.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "titanflow.settings")
WAMID_PREFIX = "wamid.bench-door-"


def main() -> int:
    options = _options()
    import django

    django.setup()
    from django.conf import settings

    from campaigns.engine import processes
    from webhooks.door import WEBHOOK_PATH
    from webhooks.models import PendingStatus, WebhookEvent

    if not settings.META_APP_SECRET:
        raise SystemExit("META_APP_SECRET is not set: the door refuses every delivery without it")
    before = WebhookEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    if options.web:
        web, url = processes.web_start(env=processes.child_env())
        url = f"{url}{WEBHOOK_PATH}"
    else:
        web, url = processes.door_start(env=processes.child_env())
    try:
        asyncio.run(_post(url, settings.META_APP_SECRET, 200, options.in_flight))  # warm-up
        cpu_before = web.cpu_seconds()
        took, latencies = asyncio.run(
            _post(url, settings.META_APP_SECRET, options.deliveries, options.in_flight)
        )
        cpu = web.cpu_seconds() - cpu_before
    finally:
        web.stop()
        stored = WebhookEvent.objects.filter(pk__gt=before).delete()[0]
        PendingStatus.objects.filter(wamid__startswith=WAMID_PREFIX).delete()
    latencies.sort()
    print(f"stored and deleted: {stored} deliveries")
    print(f"{len(latencies)} deliveries in {took:.2f}s: {len(latencies) / took:,.0f}/s")
    for share in (0.5, 0.9, 0.99):
        print(f"p{int(share * 100)}: {latencies[int(len(latencies) * share) - 1] * 1000:.1f} ms")
    server = "web server" if options.web else "door"
    print(f"{server} CPU: {cpu * 1000 / len(latencies):.3f} ms per delivery")
    return 0


def _options():
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=10_000, help="signed POSTs to send")
    parser.add_argument("--in-flight", type=int, default=16, help="POSTs awaiting an answer")
    parser.add_argument(
        "--web", action="store_true", help="measure the web server's copy of the URL instead"
    )
    return parser.parse_args()


def _delivery(n: int) -> bytes:
    """One `delivered` status, built as the simulator builds Meta's."""
    from titanflow.simulator.payloads import StatusNote, statuses_delivery
    from titanflow.simulator.world import Phone

    note = StatusNote(
        phone=Phone(phone_number_id="bench-door", waba_id="bench-door"),
        wamid=f"{WAMID_PREFIX}{n}",
        recipient_id=f"9715{n:08d}",
        status="delivered",
        category="marketing",
        conversation_id=f"bench-door-{n}",
    )
    return json.dumps(statuses_delivery([note])).encode()


async def _post(url: str, secret: str, count: int, in_flight: int):
    from titanflow.simulator.http_post import PostPool
    from titanflow.whatsapp.signature import compute_signature

    pool = PostPool(url, timeout_s=10)
    slots = asyncio.Semaphore(in_flight)
    latencies: list[float] = []
    failures: list[int] = []

    async def one(n: int) -> None:
        body = _delivery(n)
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": compute_signature(secret, body),
        }
        async with slots:
            started = time.perf_counter()
            status = await pool.post(body, headers)
            latencies.append(time.perf_counter() - started)
        if status != 200:
            failures.append(status)

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    took = time.perf_counter() - started
    pool.close()
    if failures:
        raise SystemExit(f"{len(failures)} deliveries refused: {sorted(set(failures))}")
    return took, latencies


if __name__ == "__main__":
    sys.exit(main())

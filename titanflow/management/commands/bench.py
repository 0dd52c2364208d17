"""`manage.py bench`: the sending engine's throughput against the Meta simulator, in one run.

Sets up N numbers and M contacts, starts the simulator, the web server and real Celery workers as
processes, and prints JSON: the bare pooled-HTTP ceiling against the same simulator, the send
path alone (webhooks off) and its ratio to the ceiling, the full path with three signed status
webhooks per message, webhook acknowledgement p50/p99, statements per message on the hot path,
and the workers' peak memory. It creates its own data in the configured database and removes it.
"""

import json
import multiprocessing
import tempfile
import threading
import time

import requests
import urllib3
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from campaigns.engine import metrics, processes, staging
from campaigns.models import Campaign, Message
from campaigns.services.lifecycle import campaign_launch
from templates_app.models import WhatsAppAccount

BARE_THREADS = 16


class Command(BaseCommand):
    help = "Measure the sending engine against the Meta simulator (prints JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--numbers", type=int, default=3)
        parser.add_argument("--contacts", type=int, default=10_000)
        parser.add_argument("--latency-ms", type=float, default=20)
        parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
        parser.add_argument("--mps", type=int, default=1000, help="per-number rate")
        parser.add_argument("--bare-seconds", type=float, default=5)
        parser.add_argument("--timeout", type=float, default=900)
        parser.add_argument("--skip-full", action="store_true")

    def handle(self, *args, **opts):
        world = staging.world_dict(numbers=opts["numbers"], mps=opts["mps"])
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
            json.dump(world, file)
        report = {key: opts[key] for key in ("numbers", "contacts", "latency_ms", "workers")}
        first_event = _last_webhook_event_id()
        try:
            report["send_path"] = self._send_path(world, file.name, opts)
            report["ratio_to_bare"] = round(
                report["send_path"]["messages_per_s"] / report["send_path"]["bare_loop_per_s"], 3
            )
            if not opts["skip_full"]:
                report["full_path"] = self._full_path(world, file.name, opts)
        finally:
            _stage_cleanup(after_event=first_event)
        self.stdout.write(json.dumps(report, indent=2))

    def _send_path(self, world, world_file, opts) -> dict:
        env = _env()
        simulator, url = processes.simulator_start(
            env=env, world_file=world_file, latency_ms=opts["latency_ms"], no_record_bodies=True
        )
        try:
            bare = _bare_loop(
                url,
                world,
                seconds=opts["bare_seconds"],
                processes_n=opts["numbers"] * opts["workers"],
            )
            requests.post(f"{url}/_sim/reset", timeout=10)
            result = self._campaign_run(url, world, opts, env)
            rejected = requests.get(f"{url}/_sim/stats", timeout=30).json()["rejected_by_code"]
        finally:
            simulator.stop()
        return {"bare_loop_per_s": round(bare, 1), **result, "meta_rejected_by_code": rejected}

    def _full_path(self, world, world_file, opts) -> dict:
        env = _env()
        web, web_url = processes.web_start(env=env, workers=2)
        simulator, url = processes.simulator_start(
            env=env,
            world_file=world_file,
            latency_ms=opts["latency_ms"],
            no_record_bodies=True,
            webhook_url=f"{web_url}/webhooks/whatsapp/",
            app_secret=settings.META_APP_SECRET,
        )
        try:
            result = self._campaign_run(url, world, opts, env, webhooks=True)
            hooks = requests.get(f"{url}/_sim/stats", timeout=30).json()["webhooks"]
        finally:
            simulator.stop()
            web.stop()
        result["webhooks"] = {
            "posted": hooks["posted"],
            "failed": hooks["failed"],
            "ack_ms_p50": hooks["latency_ms"]["p50"],
            "ack_ms_p99": hooks["latency_ms"]["p99"],
        }
        return result

    def _campaign_run(self, url, world, opts, env, *, webhooks=False) -> dict:
        owner = _bench_user()
        campaign = staging.campaign_stage(
            world=world, owner=owner, contacts=opts["contacts"], name="bench"
        )
        env = {**env, "WHATSAPP_GRAPH_URL": url}
        workers = [
            processes.worker_start(concurrency=opts["numbers"] + (2 if webhooks else 0), env=env)
            for _ in range(opts["workers"])
        ]
        try:
            metrics.reset()
            started = time.monotonic()
            campaign_launch(campaign=campaign, user=owner)
            elapsed = _wait_done(campaign, timeout=opts["timeout"], started=started)
            drained = _wait_webhooks_drained(url) - started if webhooks else None
            rss = max(worker.rss_peak_kb() for worker in workers)
        finally:
            for worker in workers:
                worker.stop()
        totals = metrics.totals()
        sent = Message.objects.filter(campaign=campaign).count()
        return {
            "messages": sent,
            "seconds": round(elapsed, 2),
            "messages_per_s": round(sent / elapsed, 1),
            "statements_per_message": round(totals["statements"] / max(totals["sent"], 1), 4),
            "worker_peak_rss_mb": round(rss / 1024, 1),
            **(
                {
                    "webhooks_drained_after_s": round(drained - elapsed, 2),
                    # Until the last status is posted by the simulator and applied by us.
                    "end_to_end_messages_per_s": round(sent / drained, 1),
                }
                if webhooks
                else {}
            ),
        }


def _env() -> dict:
    # Production settings: DEBUG keeps every query in memory and would hide a real leak.
    return processes.child_env(ENGINE_COUNT_STATEMENTS="true", DEBUG="false", LOG_LEVEL="WARNING")


def _bench_user():
    user, _ = get_user_model().objects.get_or_create(username="titanflow-bench")
    return user


def _wait_done(campaign: Campaign, *, timeout: float, started: float) -> float:
    while time.monotonic() - started < timeout:
        status = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).get()
        if status not in (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED):
            if status != Campaign.Status.COMPLETED:
                raise CommandError(f"The bench campaign ended {status}")
            return time.monotonic() - started
        time.sleep(0.1)
    raise CommandError(f"The bench campaign did not finish within {timeout:.0f} s")


def _wait_webhooks_drained(url: str, timeout: float = 120) -> float:
    from webhooks.models import WebhookEvent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = requests.get(f"{url}/_sim/stats", timeout=30).json()["webhooks"]["pending"]
        if not pending and not WebhookEvent.objects.filter(processed_at__isnull=True).exists():
            return time.monotonic()
        time.sleep(0.1)
    raise CommandError("The webhook backlog did not drain")


def _bare_loop(url: str, world: dict, *, seconds: float, processes_n: int) -> float:
    """The ceiling: prebuilt bodies posted as fast as threads over pooled urllib3 clients go,
    in as many processes as the engine runs senders, so both get the same share of the CPU."""
    context = multiprocessing.get_context("fork")
    phones = [phone["phone_number_id"] for phone in world["phones"]]
    with context.Pool(processes_n) as pool:
        counts = pool.starmap(
            _bare_process, [(url, phones, seconds, index) for index in range(processes_n)]
        )
    return sum(counts) / seconds


def _bare_process(url: str, phones: list[str], seconds: float, index: int) -> int:
    pool = urllib3.PoolManager(maxsize=BARE_THREADS, retries=False)
    headers = {"Authorization": f"Bearer {staging.TOKEN}", "Content-Type": "application/json"}
    counts = [0] * BARE_THREADS
    deadline = time.monotonic() + seconds

    def run(slot: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            body = _bare_body((index * BARE_THREADS + slot) * 10_000_000 + n)
            phone = phones[(index + n) % len(phones)]
            response = pool.request(
                "POST", f"{url}/v23.0/{phone}/messages", body=body, headers=headers, timeout=10
            )
            counts[slot] += response.status == 200

    threads = [threading.Thread(target=run, args=(i,)) for i in range(BARE_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def _bare_body(n: int) -> bytes:
    payload = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": f"97259{n:09d}",
        "type": "template",
        "template": {
            "name": "promo_a",
            "language": {"code": "en_US", "policy": "deterministic"},
            "components": [
                {
                    "type": "header",
                    "parameters": [{"type": "image", "image": {"link": "https://x.example/1.jpg"}}],
                },
                {"type": "body", "parameters": [{"type": "text", "text": "Ana"}] * 2},
            ],
        },
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def _last_webhook_event_id() -> int:
    from webhooks.models import WebhookEvent

    return WebhookEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _stage_cleanup(*, after_event: int) -> None:
    from webhooks.models import WebhookEvent

    Campaign.objects.filter(name="bench", owner__username="titanflow-bench").delete()
    get_user_model().objects.filter(username="titanflow-bench", campaigns__isnull=True).delete()
    account = WhatsAppAccount.objects.filter(waba_id=staging.WABA).first()
    # Other campaigns on the bench's numbers (someone else's runs) keep them alive.
    if account is not None and not account.phones.filter(senders__isnull=False).exists():
        account.delete()
    WebhookEvent.objects.filter(pk__gt=after_event).delete()
    staging.bench_tables_vacuum()

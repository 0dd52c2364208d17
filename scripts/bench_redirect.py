"""Measure the tracked-link redirect (/r/<token>) as users get it: the Procfile's own web line.

    .venv/bin/python scripts/bench_redirect.py [--links 20000] [--requests 20000] [--clients 16]

Mints links in a throwaway campaign of the database in DATABASE_URL, starts the Procfile's web
server on a free port, follows random links from `--clients` threads with a pooled HTTP client
(redirects not followed), prints requests/s and latency percentiles, and deletes what it made.
"""

import argparse
import os
import random
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "titanflow.settings")


def main() -> int:
    options = _options()
    import django

    django.setup()
    campaign, tokens = _mint(options.links)
    port = _free_port()
    web = _start_web(port)
    try:
        _wait_up(port)
        _, warm = _load(port, tokens[:200], 200, options.clients)  # warms the web workers
        took, latencies = _load(port, tokens, options.requests, options.clients)
        counted = campaign_clicks(campaign)
    finally:
        web.terminate()
        web.wait(timeout=15)
        campaign.delete()
    latencies.sort()
    print(f"clicks recorded: {counted} of {len(warm) + len(latencies)} requests")
    print(f"{len(latencies)} redirects in {took:.2f}s: {len(latencies) / took:,.0f} requests/s")
    for share in (0.5, 0.9, 0.99):
        print(f"p{int(share * 100)}: {latencies[int(len(latencies) * share) - 1] * 1000:.1f} ms")
    return 0


def campaign_clicks(campaign) -> int:
    from django.db.models import Sum

    from campaigns.clicks.models import TrackedLink

    return TrackedLink.objects.filter(campaign=campaign).aggregate(n=Sum("clicks"))["n"]


def _options():
    parser = argparse.ArgumentParser()
    parser.add_argument("--links", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=16)
    return parser.parse_args()


def _mint(count: int):
    import secrets

    from django.contrib.auth import get_user_model
    from django.db import connection

    from campaigns.engine.staging import campaign_stage, world_dict

    owner, _ = get_user_model().objects.get_or_create(username="bench-redirect")
    campaign = campaign_stage(
        world=world_dict(numbers=1, templates=("bench_links",)),
        owner=owner,
        contacts=count,
        name="Redirect bench",
    )
    sender = campaign.senders.get()
    template_id = sender.templates.get().pk
    tokens = [secrets.token_urlsafe(16) for _ in range(count)]
    sql = (
        "COPY campaigns_trackedlink (token, campaign_id, contact_id, phone_id, template_id, url,"
        " clicks, created_at) FROM STDIN"
    )
    contact_ids = list(campaign.contacts.order_by("id").values_list("id", flat=True))
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for token, contact_id in zip(tokens, contact_ids, strict=True):
            url = f"https://shop.example/p/{contact_id}"
            copy.write_row(
                (token, campaign.pk, contact_id, sender.phone_id, template_id, url, 0, "now")
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE campaigns_trackedlink")
    return campaign, tokens


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_web(port: int) -> subprocess.Popen:
    line = next(
        line.split(":", 1)[1]
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line.startswith("web:")
    )
    args = [a for a in shlex.split(line) if a != "--access-log"]  # logging is not the redirect
    args[args.index("--port") + 1] = str(port)
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_up(port: int) -> None:
    import urllib3

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib3.request("GET", f"http://127.0.0.1:{port}/healthz", retries=False)
            return
        except urllib3.exceptions.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the web server did not start")


def _load(port: int, tokens: list[str], requests: int, clients: int):
    import urllib3

    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=clients, block=True)
    latencies: list[float] = []
    failures = []

    def client(count: int) -> None:
        mine = []
        for _ in range(count):
            token = random.choice(tokens)
            started = time.perf_counter()
            response = pool.request("GET", f"/r/{token}", redirect=False, retries=False)
            mine.append(time.perf_counter() - started)
            if response.status != 302:
                failures.append(response.status)
        latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(requests // clients,)) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} redirects failed: {sorted(set(failures))}")
    return took, latencies


if __name__ == "__main__":
    sys.exit(main())

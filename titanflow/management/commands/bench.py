"""`manage.py bench`: TitanFlow's throughput against the Meta simulator, as the Procfile runs it.

Starts the Procfile's own web server, workers and beat (same queues, concurrency and arguments;
only ports, node names and beat's schedule file differ), sets up N numbers and M contacts, and
prints JSON: the bare pooled-HTTP ceiling against the same simulator, the send path alone
(webhooks off) and its ratio to the ceiling, the full path with three signed status webhooks
per message (its rate as a share of what the numbers allow, webhook acknowledgement p50/p99,
the backlog's drain time), statements per message on the hot path, the workers' peak memory,
and the CPU each component of TitanFlow used per message. `--import-rows` measures the contact
import instead. It creates its own data in the configured database and removes it.
"""

import json
import multiprocessing
import os
import resource
import signal
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import redis
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from campaigns.engine import metrics, processes, staging
from campaigns.engine.pacing import PACE_SHARE
from campaigns.models import Campaign, Message
from campaigns.services.lifecycle import campaign_launch
from campaigns.services.setup import campaign_estimate
from templates_app.models import WhatsAppAccount
from titanflow.whatsapp.mux import SendMux
from webhooks.door import WEBHOOK_PATH

BARE_IN_FLIGHT = 16
# Backends that connect and leave between two samples lose at most this much of their CPU.
PG_SAMPLE_S = 0.2


class Command(BaseCommand):
    help = (
        "Measure TitanFlow against the Meta simulator with the Procfile's own web server, "
        "workers and beat, and print JSON. Writes to the configured database (DATABASE_URL): "
        "it creates its own numbers, templates, campaign and contacts there and removes them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--numbers", type=int, default=3, help="sender numbers, each a simulated phone"
        )
        parser.add_argument(
            "--contacts", type=int, default=10_000, help="recipients in the bench campaign"
        )
        parser.add_argument(
            "--latency-ms", type=float, default=20, help="how long the simulator takes per send"
        )
        parser.add_argument(
            "--mps",
            type=int,
            default=1000,
            help="each number's allowed messages/s (the simulator refuses more with 130429); "
            "the default is above what 2 cores reach, e.g. --mps 80 --latency-ms 30 is a paced "
            "run whose full path is reported as a share of numbers × mps",
        )
        parser.add_argument(
            "--procfile",
            default=str(processes.BASE_DIR / "Procfile"),
            help="the Procfile whose web, worker and beat lines are started (to compare layouts)",
        )
        parser.add_argument(
            "--bare-seconds",
            type=float,
            default=5,
            help="how long the bare HTTP loop runs; 0 skips it (pointless in a paced run)",
        )
        parser.add_argument(
            "--timeout", type=float, default=900, help="give up on a campaign after this long"
        )
        parser.add_argument(
            "--skip-full", action="store_true", help="only the send path (webhooks off)"
        )
        parser.add_argument(
            "--skip-send", action="store_true", help="only the full path (webhooks on)"
        )
        parser.add_argument(
            "--import-rows",
            type=int,
            help="instead of sending: import a generated messy list of a tenth of this many "
            "rows and then of this many, through the wizard's path, and compare the times",
        )

    def handle(self, *args, **opts):
        # The processes the bench starts live in sessions of their own: a SIGTERM (a timeout, a
        # Ctrl-C from a process manager) must unwind through the `finally`s that stop them, or
        # they run on as orphans, sending and posting into the bench database.
        previous = signal.signal(signal.SIGTERM, _sigterm_exit)
        try:
            self._handle(**opts)
        finally:
            processes.stop_all()  # what a stop in the middle of starting left behind
            signal.signal(signal.SIGTERM, previous)

    def _handle(self, **opts):
        if opts["import_rows"]:
            self.stdout.write(json.dumps(_import_runs(opts["import_rows"]), indent=2))
            return
        procfile = _procfile(opts["procfile"])
        world = staging.world_dict(numbers=opts["numbers"], mps=opts["mps"])
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
            json.dump(world, file)
        report = {key: opts[key] for key in ("numbers", "contacts", "latency_ms", "mps")}
        report["allowed_per_s"] = opts["numbers"] * opts["mps"]
        report["procfile"] = {name: " ".join(args) for name, args in procfile.items()}
        report["machine_before"] = _machine()
        first_event, first_pending = self.first_ids = _last_ids()
        try:
            if not opts["skip_send"]:
                report["send_path"] = self._send_path(world, file.name, procfile, opts)
            if not opts["skip_full"]:
                report["full_path"] = self._full_path(world, file.name, procfile, opts)
        finally:
            _stage_cleanup(after_event=first_event, after_pending=first_pending)
            Path(file.name).unlink(missing_ok=True)
        report.update(_ratios(report))
        report["machine_after"] = _machine()
        self.stdout.write(json.dumps(report, indent=2))

    def _send_path(self, world, world_file, procfile, opts) -> dict:
        env = _env()
        simulator, url = processes.simulator_start(
            env=env, world_file=world_file, latency_ms=opts["latency_ms"], no_record_bodies=True
        )
        try:
            bare = 0.0
            if opts["bare_seconds"] > 0:
                bare = _bare_loop(url, world, seconds=opts["bare_seconds"], n=opts["numbers"])
                requests.post(f"{url}/_sim/reset", timeout=10)
            result = self._campaign_run(url, world, procfile, opts, env, simulator=simulator)
            rejected = requests.get(f"{url}/_sim/stats", timeout=30).json()["rejected_by_code"]
        finally:
            simulator.stop()
        return {"bare_loop_per_s": round(bare, 1), **result, "meta_rejected_by_code": rejected}

    def _full_path(self, world, world_file, procfile, opts) -> dict:
        env = _env()
        servers = {
            name: processes.procfile_start(name, args, env=env)
            for name, args in procfile.items()
            if processes.procfile_kind(args) in ("web", "door")
        }
        # Meta posts to the door where the Procfile runs one, else to the web server.
        receiver = next(
            (
                url
                for name, (_, url) in servers.items()
                if processes.procfile_kind(procfile[name]) == "door"
            ),
            servers["web"][1],
        )
        simulator, url = processes.simulator_start(
            env=env,
            world_file=world_file,
            latency_ms=opts["latency_ms"],
            no_record_bodies=True,
            webhook_url=f"{receiver}{WEBHOOK_PATH}",
            app_secret=settings.META_APP_SECRET,
        )
        try:
            result = self._campaign_run(
                url,
                world,
                procfile,
                opts,
                env,
                webhooks=True,
                simulator=simulator,
                servers={name: process for name, (process, _) in servers.items()},
            )
            stats = requests.get(f"{url}/_sim/stats", timeout=30).json()
        finally:
            simulator.stop()
            for process, _ in servers.values():
                process.stop()
        hooks = stats["webhooks"]
        result["meta_rejected_by_code"] = stats["rejected_by_code"]
        result["webhooks"] = {
            "posted": hooks["posted"],
            "failed": hooks["failed"],
            "ack_ms_p50": hooks["latency_ms"]["p50"],
            "ack_ms_p99": hooks["latency_ms"]["p99"],
        }
        return result

    def _campaign_run(
        self, url, world, procfile, opts, env, *, simulator, servers=None, webhooks=False
    ):
        owner = _bench_user()
        campaign = staging.campaign_stage(
            world=world, owner=owner, contacts=opts["contacts"], name="bench"
        )
        env = {**env, "WHATSAPP_GRAPH_URL": url}
        started_processes = dict(servers or {})
        try:
            for name, args in procfile.items():
                if processes.procfile_kind(args) in ("worker", "beat"):
                    started_processes[name] = processes.procfile_start(name, args, env=env)[0]
            workers = [
                process
                for name, process in started_processes.items()
                if processes.procfile_kind(procfile[name]) == "worker"
            ]
            promised = campaign_estimate(campaign=campaign)
            estimate = promised["pending"] / promised["rate"]  # unrounded, for small runs
            meter = CpuMeter(processes=started_processes, simulator=simulator)
            metrics.reset()
            meter.start()
            started = time.monotonic()
            campaign_launch(campaign=campaign, user=owner)
            elapsed = _wait_done(campaign, timeout=opts["timeout"], started=started)
            backlog = _backlog(url) if webhooks else None
            drained = _wait_drained(url, self.first_ids[1]) - started if webhooks else elapsed
            cpu = meter.stop()
            rss = max(worker.rss_peak_kb() for worker in workers)
        finally:
            for name, process in started_processes.items():
                if name not in (servers or {}):
                    process.stop()
        totals = metrics.totals()
        sent = Message.objects.filter(campaign=campaign).count()
        result = {
            "messages": sent,
            "seconds": round(elapsed, 2),
            "messages_per_s": round(sent / elapsed, 1),
            # What the review page promised for this campaign, against what it took.
            "estimated_seconds": round(estimate, 2),
            "seconds_over_estimate": round(elapsed / estimate, 3) if estimate else None,
            "statements_per_message": round(totals["statements"] / max(totals["sent"], 1), 4),
            "worker_peak_rss_mb": round(rss / 1024, 1),
            "cpu_ms_per_message": {k: round(v * 1000 / max(sent, 1), 3) for k, v in cpu.items()},
            "cpu_busy_cores": {k: round(v / drained, 2) for k, v in cpu.items()},
        }
        if webhooks:
            result["webhooks_drained_after_s"] = round(drained - elapsed, 2)
            # Where the backlog was when the last send was written: still at Meta (the
            # simulator's poster) or stored by the door and not yet applied by us.
            result["backlog_when_sending_ended"] = backlog
            # Until the last status is posted by the simulator and applied by us.
            result["end_to_end_messages_per_s"] = round(sent / drained, 1)
        return result


def _sigterm_exit(signum, frame):
    raise SystemExit(128 + signum)


def _procfile(path: str) -> dict[str, list[str]]:
    entries = processes.procfile_read(Path(path))
    kinds = [processes.procfile_kind(args) for args in entries.values()]
    if "web" not in kinds or "worker" not in kinds:
        raise CommandError(f"{path} has no web server or no Celery worker line")
    served = {q for args in entries.values() if "worker" in args for q in _queues(args)}
    missing = set(settings.WORK_QUEUES) - served
    if missing:
        raise CommandError(f"No worker in {path} consumes {', '.join(sorted(missing))}")
    return {
        name: args for name, args in entries.items() if processes.procfile_kind(args) != "other"
    }


def _queues(args: list[str]) -> list[str]:
    return processes.worker_queues(args) if processes.procfile_kind(args) == "worker" else []


def _ratios(report: dict) -> dict:
    send, full = report.get("send_path"), report.get("full_path")
    ratios = {}
    if send and send["bare_loop_per_s"]:
        ratios["send_over_bare"] = round(send["messages_per_s"] / send["bare_loop_per_s"], 3)
    if full:
        allowed = report["allowed_per_s"]
        ratios["full_share_of_allowed"] = round(full["messages_per_s"] / allowed, 3)
        # The pacer itself aims at PACE_SHARE of the allowed rate, to stay clear of 130429.
        ratios["full_share_of_pacer_target"] = round(
            full["messages_per_s"] / (allowed * PACE_SHARE), 3
        )
    if send and full:
        ratios["end_to_end_over_send"] = round(
            full["end_to_end_messages_per_s"] / send["messages_per_s"], 3
        )
    return ratios


class CpuMeter:
    """CPU seconds each component used between start() and stop(): the processes this run
    started (with their children), this database's PostgreSQL backends, Redis, the simulator
    and this process (the bench's own polling). Postgres's shared processes (WAL writer,
    checkpointer...) and Redis serve every database on the machine, so they are reported apart
    from TitanFlow's total when others use the same server."""

    def __init__(self, *, processes: dict, simulator):
        self.processes, self.simulator = processes, simulator
        self.redis_pid = int(redis.Redis.from_url(settings.REDIS_URL).info("server")["process_id"])
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.own_backend = cursor.fetchone()[0]
        self.postgres = PostgresSampler(exclude=self.own_backend)

    def _read(self) -> dict:
        values = {name: process.cpu_seconds() for name, process in self.processes.items()}
        values["redis"] = processes.cpu_seconds(self.redis_pid)
        values["simulator"] = self.simulator.cpu_seconds()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        values["bench_driver"] = usage.ru_utime + usage.ru_stime
        return values

    def start(self) -> None:
        self.before = self._read()
        self.postgres.start()

    def stop(self) -> dict:
        after = self._read()
        backends, shared, server = self.postgres.stop()
        used = {name: after[name] - self.before[name] for name in after}
        used["postgres_backends"] = backends
        titanflow = [k for k in used if k not in ("simulator", "bench_driver", "redis")]
        used["titanflow_total"] = sum(used[k] for k in titanflow) + used["redis"]
        used["postgres_shared"] = shared
        used["postgres_server_all_databases"] = server
        return used


class PostgresSampler:
    """Sums /proc CPU of this database's backends (pids from pg_stat_activity, sampled every
    PG_SAMPLE_S so short-lived connections count too) and of the server's shared processes."""

    def __init__(self, *, exclude: int):
        self.exclude = exclude
        self.first: dict[int, tuple[str, float]] = {}
        self.last: dict[int, float] = {}
        self.stopping = threading.Event()

    def start(self) -> None:
        self.conn = psycopg.connect(processes.database_url(), autocommit=True)
        backend = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.postmaster = _parent(backend)
        self.server_before = processes.tree_cpu_seconds(self.postmaster)
        self._sample(baseline=True)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.wait(PG_SAMPLE_S):
            self._sample(baseline=False)

    def _sample(self, *, baseline: bool) -> None:
        rows = self.conn.execute(
            "SELECT pid, CASE WHEN datname IS NULL THEN 'shared' ELSE 'backend' END"
            " FROM pg_stat_activity"
            " WHERE (datname = current_database() AND pid NOT IN (pg_backend_pid(), %s))"
            " OR (datname IS NULL AND backend_type <> 'client backend')",
            [self.exclude],
        ).fetchall()
        for pid, group in rows:
            cpu = processes.cpu_seconds(pid)
            if not cpu:
                continue
            # A backend first seen after the start connected during the run: all of it counts.
            self.first.setdefault(pid, (group, cpu if baseline else 0.0))
            self.last[pid] = cpu

    def stop(self) -> tuple[float, float, float]:
        """This database's backends, the shared processes, and the whole server (every
        database, backends reaped by the postmaster included) for comparison."""
        self.stopping.set()
        self.thread.join()
        self._sample(baseline=False)
        self.conn.close()
        totals = {"backend": 0.0, "shared": 0.0}
        for pid, (group, first) in self.first.items():
            totals[group] += self.last[pid] - first
        server = processes.tree_cpu_seconds(self.postmaster) - self.server_before
        return totals["backend"], totals["shared"], server


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def _env() -> dict:
    # Production settings: DEBUG keeps every query in memory and would hide a real leak.
    return processes.child_env(ENGINE_COUNT_STATEMENTS="true", DEBUG="false")


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


def _backlog(url: str) -> dict:
    from webhooks.models import WebhookEvent

    stats = requests.get(f"{url}/_sim/stats?brief=1", timeout=30).json()
    return {
        "statuses_meta_still_to_post": stats["webhooks"]["pending"],
        "deliveries_titanflow_still_to_apply": WebhookEvent.objects.filter(
            processed_at__isnull=True
        ).count(),
    }


def _wait_drained(url: str, after_pending: int, timeout: float = 120) -> float:
    """Until the simulator has posted every status, and we have applied every one: none left
    unprocessed, none parked for a message not yet written."""
    from webhooks.models import PendingStatus, WebhookEvent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = requests.get(f"{url}/_sim/stats?brief=1", timeout=30).json()
        pending = stats["webhooks"]["pending"]
        if (
            not pending
            and not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
            and not PendingStatus.objects.filter(
                pk__gt=after_pending, given_up_at__isnull=True
            ).exists()
        ):
            return time.monotonic()
        time.sleep(0.1)
    raise CommandError("The webhook backlog did not drain")


def _import_runs(rows: int) -> dict:
    from campaigns.importing.bench import import_benchmark

    # Each size three times, the median kept: the small import takes a few tenths of a second,
    # where one scheduling hiccup moved the ratio from 7 to 10 between two runs.
    small, large = (_median_run(import_benchmark, n) for n in (max(rows // 10, 1), rows))
    return {
        "small": small,
        "large": large,
        # Linear in rows means 10× the rows in about 10× the time; the target is under 8×
        # (fixed costs amortised), and a quadratic statement shows as ~100×.
        "time_ratio": round(large["seconds"] / max(small["seconds"], 1e-6), 2),
        "rows_ratio": round(large["rows"] / small["rows"], 2),
    }


def _median_run(run, rows: int) -> dict:
    results = sorted((run(rows) for _ in range(3)), key=lambda result: result["seconds"])
    return {**results[1], "seconds_of_three": [result["seconds"] for result in results]}


def _bare_loop(url: str, world: dict, *, seconds: float, n: int) -> float:
    """The ceiling: prebuilt bodies posted as fast as the engine's own HTTP client (one
    multiplexed client per process, titanflow/whatsapp/mux.py) goes with BARE_IN_FLIGHT
    requests in flight, in as many processes as the engine runs senders, so both get the same
    share of the CPU."""
    context = multiprocessing.get_context("fork")
    phones = [phone["phone_number_id"] for phone in world["phones"]]
    with context.Pool(n) as pool:
        counts = pool.starmap(_bare_process, [(url, phones, seconds, index) for index in range(n)])
    return sum(counts) / seconds


def _bare_process(url: str, phones: list[str], seconds: float, index: int) -> int:
    headers = {"Authorization": f"Bearer {staging.TOKEN}", "Content-Type": "application/json"}
    mux = SendMux(url, headers=headers, max_connections=BARE_IN_FLIGHT, read_timeout=10)
    deadline = time.monotonic() + seconds
    sent = answered = 0

    def submit() -> None:
        nonlocal sent
        sent += 1
        phone = phones[(index + sent) % len(phones)]
        mux.submit(sent, f"/v23.0/{phone}/messages", _bare_body(index * 10_000_000 + sent))

    for _ in range(BARE_IN_FLIGHT):
        submit()
    while mux.in_flight:
        for done in mux.poll(0.1):
            answered += done.answer is not None and done.answer.status == 200
            if time.monotonic() < deadline:
                submit()
    mux.close()
    return answered


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


def _last_ids() -> tuple[int, int]:
    """The newest stored delivery and parked status before the run: what is newer is ours."""
    from webhooks.models import PendingStatus, WebhookEvent

    return tuple(
        model.objects.order_by("-id").values_list("id", flat=True).first() or 0
        for model in (WebhookEvent, PendingStatus)
    )


def _stage_cleanup(*, after_event: int, after_pending: int) -> None:
    from webhooks.models import PendingStatus, WebhookEvent

    Campaign.objects.filter(name="bench", owner__username="titanflow-bench").delete()
    get_user_model().objects.filter(username="titanflow-bench", campaigns__isnull=True).delete()
    account = WhatsAppAccount.objects.filter(waba_id=staging.WABA).first()
    # Other campaigns on the bench's numbers (someone else's runs) keep them alive.
    if account is not None and not account.phones.filter(senders__isnull=False).exists():
        account.delete()
    WebhookEvent.objects.filter(pk__gt=after_event).delete()
    # Statuses parked for the bench's messages would be retried for nothing until given up.
    PendingStatus.objects.filter(pk__gt=after_pending).delete()
    staging.bench_tables_vacuum()

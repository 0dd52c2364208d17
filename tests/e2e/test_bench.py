"""`manage.py bench` end to end on a small paced campaign: both paths through the Procfile's own
processes, with the CPU of each component read from /proc."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from campaigns.engine import processes
from campaigns.engine.pacing import PACE_SHARE
from campaigns.models import Campaign
from templates_app.models import WhatsAppAccount
from titanflow.management.commands.bench import _procfile

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CONTACTS = 300
MPS = 100


def test_bench_runs_the_procfile_paced_and_reports_cpu_by_component(engine_settings):
    out = StringIO()
    call_command(
        "bench", "--contacts", str(CONTACTS), "--mps", str(MPS), "--bare-seconds", "0.5",
        "--timeout", "120", stdout=out,
    )  # fmt: skip
    report = json.loads(out.getvalue())

    send, full = report["send_path"], report["full_path"]
    assert send["messages"] == full["messages"] == CONTACTS
    # Paced below the numbers' limits: Meta refused nothing but the odd 130429 when sends reach
    # it bunched (network and scheduling jitter), and each of those was sent again.
    for refused in (send["meta_rejected_by_code"], full["meta_rejected_by_code"]):
        assert set(refused) <= {"130429"}
        assert sum(refused.values()) <= CONTACTS // 20
    assert report["allowed_per_s"] == 3 * MPS
    assert 0 < report["full_share_of_allowed"] <= 1
    assert send["estimated_seconds"] == pytest.approx(CONTACTS / (3 * MPS * PACE_SHARE), abs=0.01)
    assert send["bare_loop_per_s"] > 0 and report["send_over_bare"] > 0
    # Three signed status webhooks per message, every one acknowledged by our door.
    assert full["webhooks"]["posted"] == 3 * CONTACTS
    assert full["webhooks"]["failed"] == 0
    assert full["webhooks"]["ack_ms_p99"] >= full["webhooks"]["ack_ms_p50"] > 0
    assert 0 < full["statements_per_message"] < 1
    assert not Campaign.objects.filter(name="bench").exists()
    assert not WhatsAppAccount.objects.exists()


def test_bench_counts_the_cpu_of_every_process_it_started(engine_settings):
    out = StringIO()
    call_command(
        "bench", "--contacts", str(CONTACTS), "--bare-seconds", "0", "--skip-send",
        "--timeout", "120", stdout=out,
    )  # fmt: skip
    report = json.loads(out.getvalue())

    cpu = report["full_path"]["cpu_ms_per_message"]
    started = set(_procfile(str(processes.BASE_DIR / "Procfile")))
    assert started <= set(cpu)
    # Each of these did work for every message: it sent, stored or applied its statuses (the
    # web server serves no one here: Meta posts to the door).
    for component in ("door", "worker_send", "worker_hooks", "postgres_backends", "simulator"):
        assert cpu[component] > 0, component
    ours = sum(cpu[name] for name in started) + cpu["postgres_backends"] + cpu["redis"]
    assert cpu["titanflow_total"] == pytest.approx(ours, abs=0.01)


def test_the_bench_refuses_a_procfile_that_leaves_a_queue_unconsumed(tmp_path):
    procfile = tmp_path / "Procfile"
    lines = processes.procfile_read(processes.BASE_DIR / "Procfile")
    kept = {name: args for name, args in lines.items() if "webhooks" not in ",".join(args)}
    procfile.write_text("".join(f"{name}: {' '.join(args)}\n" for name, args in kept.items()))

    with pytest.raises(CommandError, match="webhooks"):
        _procfile(str(procfile))


def _marked(marker: str) -> set[int]:
    """The running processes whose environment carries `marker` (an exited one waiting to be
    reaped, a zombie, runs nothing)."""
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                        continue
                with open(f"/proc/{entry.name}/environ", "rb") as environ:
                    if marker.encode() in environ.read():
                        found.add(int(entry.name))
            except (OSError, IndexError):
                continue
    return found


def test_a_bench_stopped_with_sigterm_stops_every_process_it_started(engine_settings):
    # Its processes live in sessions of their own: killed without unwinding, the bench left
    # workers, a door and a simulator running as orphans.
    marker = f"TITANFLOW_BENCH_MARK=bench-{uuid.uuid4().hex}"
    env = processes.child_env(**dict([marker.split("=")]))
    bench = subprocess.Popen(
        [sys.executable, "manage.py", "bench", "--contacts", "3000", "--skip-send",
         "--bare-seconds", "0", "--timeout", "120"],
        cwd=processes.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while len(_marked(marker)) < 6 and time.monotonic() < deadline:
            time.sleep(0.2)  # the bench, the simulator, the door, the workers and beat
        assert len(_marked(marker)) >= 6, "the bench did not start its processes"
        bench.terminate()
        assert bench.wait(timeout=60) != 0
        deadline = time.monotonic() + 30
        while _marked(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _marked(marker) == set()
    finally:
        bench.kill()
        for pid in _marked(marker):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

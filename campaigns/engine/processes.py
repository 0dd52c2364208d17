"""Real processes for the end-to-end tests and the benchmark: Celery workers, the Meta simulator
and the web server, each started on loopback with its own environment and stopped by its own pid."""

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
# honcho's own line format: `name: command`; anything else (comments) is not a process.
PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def database_url() -> str:
    """The URL of the database this process uses (the test database inside a test)."""
    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "postgres")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Every Process started here and not yet stopped: `stop_all` ends them whatever was under way.
_started: set["Process"] = set()


def stop_all() -> None:
    """Stops every process started here that still runs (a bench interrupted while it started
    or drove them must not leave them running in their own sessions)."""
    for process in list(_started):
        process.stop(timeout=5.0)


class Process:
    """A child in its own session, so a stop (or a SIGKILL) reaches its whole process group."""

    def __init__(self, args: list[str], *, env: dict, name: str):
        self.log = Path(tempfile.gettempdir()) / f"titanflow-{name}-{uuid.uuid4().hex[:8]}.log"
        self._log_file = open(self.log, "wb")  # noqa: SIM115 - lives as long as the process
        self.popen = subprocess.Popen(
            args,
            cwd=BASE_DIR,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _started.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, *, timeout: float = 30.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output())
            if found:
                return found
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.popen.args[:4]} did not print {pattern!r}:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL to the whole group: a worker dying mid-slice, nothing cleaned up."""
        _started.discard(self)
        self._signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        _started.discard(self)
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def rss_peak_kb(self) -> int:
        """The largest high-water RSS among the process and its children (prefork pool)."""
        return max((_vm_hwm(pid) for pid in [self.pid, *_children(self.pid)]), default=0)

    def cpu_seconds(self) -> float:
        """CPU used so far by the process and every descendant, live or reaped."""
        return tree_cpu_seconds(self.pid)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in task.read_text().split()]
    return found


def cpu_seconds(pid: int, *, reaped: bool = True) -> float:
    """utime + stime of `pid` (all its threads) and, with `reaped`, of the children it waited for
    (cutime + cstime), from /proc/<pid>/stat; 0 for a process that is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """A live child is counted on its own line and a reaped one in its parent's cutime, so
    nothing is counted twice."""
    return cpu_seconds(pid) + sum(tree_cpu_seconds(child) for child in _children(pid))


def _vm_hwm(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) if match else 0


def child_env(**overrides) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "titanflow.settings"}
    env.update({"DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL})
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def worker_start(
    *, concurrency: int, env: dict, name: str = "worker", queues=settings.WORK_QUEUES
) -> Process:
    """A worker consuming every queue by default, so a test's tasks never wait unconsumed."""
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "titanflow",
        "worker",
        "--loglevel=INFO",
        f"--concurrency={concurrency}",
        "--pool=prefork",
        "-Q",
        ",".join(queues),
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"{name}-{uuid.uuid4().hex[:8]}@%h",
    ]
    process = Process(args, env=env, name=name)
    process.wait_for(r"ready\.", timeout=60)
    return process


def procfile_read(path: Path = BASE_DIR / "Procfile") -> dict[str, list[str]]:
    """The Procfile's processes by name, each as its argument list."""
    entries = {}
    for line in Path(path).read_text().splitlines():
        found = PROCFILE_LINE.match(line)
        if found:
            entries[found.group(1)] = shlex.split(found.group(2))
    return entries


def procfile_kind(args: list[str]) -> str:
    """`web`, `door`, `worker`, `beat` or `other`, from the command itself, not its name."""
    program = Path(args[0]).name
    if program == "respawn":  # scripts/respawn CMD...: the supervised command decides
        return procfile_kind(args[1:])
    if program == "granian":
        return "web"
    if "manage.py" in args and "webhook_door" in args:
        return "door"
    if program == "celery":
        return "beat" if "beat" in args else "worker" if "worker" in args else "other"
    return "other"


def procfile_start(name: str, args: list[str], *, env: dict) -> tuple[Process, str | None]:
    """Starts one Procfile line as written, changing only what two copies on one machine cannot
    share: the web and door ports (free ones), the worker's node name and beat's schedule
    file. Returns the process and, for the web server and the door, its URL."""
    kind = procfile_kind(args)
    args = [str(BASE_DIR / args[0]) if "/" in args[0] else args[0], *args[1:]]
    url = None
    if kind in ("web", "door"):
        port = free_port()
        args = _option_set(args, "--port", str(port))
        url = f"http://{_option(args, '--host') or '127.0.0.1'}:{port}"
    elif kind == "worker":
        node = (_option(args, "-n") or name).split("@")[0]
        args = _option_set(args, "-n", f"{node}-{uuid.uuid4().hex[:8]}@%h")
    elif kind == "beat":
        schedule = Path(tempfile.gettempdir()) / f"titanflow-beat-{uuid.uuid4().hex[:8]}"
        args = _option_set(args, "-s", str(schedule))
    process = Process(args, env=env, name=name)
    if kind == "web":
        workers = int(_option(args, "--workers") or 1)
        process.wait_for(rf"Started worker-{workers}\b", timeout=30)
    elif kind == "door":
        process.wait_for(r"webhook door listening on", timeout=30)
    elif kind == "worker":
        process.wait_for(r"ready\.", timeout=60)
    elif kind == "beat":
        process.wait_for(r"beat: Starting", timeout=30)
    return process, url


def worker_concurrency(args: list[str]) -> int:
    return int(_option(args, "--concurrency") or _option(args, "-c") or os.cpu_count() or 1)


def worker_queues(args: list[str]) -> list[str]:
    given = _option(args, "-Q") or _option(args, "--queues")
    return given.split(",") if given else [settings.CELERY_TASK_DEFAULT_QUEUE]


def _option(args: list[str], flag: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
    return None


def _option_set(args: list[str], flag: str, value: str) -> list[str]:
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(f"{flag}="):
            kept.append(arg)
    return [*kept, flag, value]


def simulator_start(*, env: dict, world_file: str, **options) -> tuple[Process, str]:
    args = [sys.executable, "manage.py", "meta_simulator", "--port", "0", "--world", world_file]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    process = Process(args, env=env, name="simulator")
    url = process.wait_for(r"listening on (http://\S+)").group(1)
    return process, url


def web_start(*, env: dict, workers: int | None = None) -> tuple["Process", str]:
    """The web server as the Procfile's `web` line runs it, on a free port (and, for tests on a
    small machine, with fewer workers)."""
    args = procfile_read()["web"]
    if workers is not None:
        args = _option_set(args, "--workers", str(workers))
    process, url = procfile_start("web", args, env=env)
    return process, url


def door_start(*, env: dict) -> tuple["Process", str]:
    """The webhook door as the Procfile's `door` line runs it, on a free port; the URL returned
    is Meta's webhook URL on it."""
    from webhooks.door import WEBHOOK_PATH

    process, url = procfile_start("door", procfile_read()["door"], env=env)
    return process, f"{url}{WEBHOOK_PATH}"

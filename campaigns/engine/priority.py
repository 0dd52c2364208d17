"""The send worker gives way to the webhook path when the machine's CPU runs short.

Every message sent brings about three status deliveries that Meta expects answered at once and a
marketer watches arrive. On a saturated machine the send worker's processes, busiest of all,
took the CPU those deliveries needed: the unpaced bench with 20,000 contacts left 16 s of
statuses queued at the simulator when sending ended (answer p99 49 ms, 710 messages/s end to
end). With the send worker at nice 10 (and the door's short gather, webhooks/door_server.py)
the webhooks kept up while sending: drained 0.9 s after the last send, p99 17 ms, 876/s end to
end. The worker still gets whatever CPU the rest leaves, so a paced campaign on a machine with
CPU to spare sends as before; unpaced with no webhooks it lost 3-10% (three interleaved pairs,
at nice 19) to the simulator and PostgreSQL it waits on.

Linux shares CPU between sessions (autogroups) before it looks at nice values inside them, and
a process manager (honcho, the bench) starts each Procfile line in a session of its own: plain
nice would only order the worker's processes among themselves. So where the worker's session
holds nothing but it and its launchers (`sh -c`, scripts/respawn), the session's autogroup is
lowered too; a worker started from a terminal shared with other programs leaves it alone.
"""

import logging
import os

logger = logging.getLogger(__name__)


def cpu_give_way(nice: int) -> str:
    """Lowers this process's CPU priority (inherited by the pool it forks); says how."""
    if nice <= 0:
        return "unchanged"
    current = os.nice(0)
    if current < nice:
        os.nice(nice - current)
    how = f"nice {nice}"
    if _session_is_own():
        try:
            with open("/proc/self/autogroup", "w") as autogroup:
                autogroup.write(str(nice))
            how += f", its session's autogroup nice {nice}"
        except OSError:  # no autogroups in this kernel, or not allowed: nice alone then
            pass
    return how


def _session_is_own() -> bool:
    """Whether every process of this session is this one or one of its ancestors."""
    session = os.getsid(0)
    chain, pid = {os.getpid()}, os.getpid()
    while pid != session:
        pid = _stat(pid)[1]
        if pid in (None, 0):
            return False  # the session's leader is not an ancestor
        chain.add(pid)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) not in chain:
            stat = _stat(int(entry.name))
            if stat[0] == session:
                return False
    return True


def _stat(pid: int) -> tuple[int | None, int | None]:
    """(session, parent) of a process from /proc/<pid>/stat; (None, None) once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None, None
    return int(fields[3]), int(fields[1])

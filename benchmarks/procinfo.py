"""Machine facts and per-process memory and CPU, read from /proc (Linux; no extra dependencies).

Peak memory is `VmHWM` from /proc/<pid>/status: the kernel's high-water mark of the process's
resident set since it started, so nothing has to be sampled while the load runs.
"""

from __future__ import annotations

import os
import platform
import resource
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants that are still alive (uvicorn workers, if any)."""
    seen: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        if current in seen or not (PROC / str(current)).exists():
            continue
        seen.append(current)
        for children in (PROC / str(current) / "task").glob("*/children"):
            try:
                pending.extend(int(child) for child in children.read_text().split())
            except OSError:
                continue
    return seen


def memory_mib(pids: Iterable[int]) -> dict[str, float] | None:
    """Summed `VmHWM` (peak resident set) and `VmRSS` (now) of the processes, in MiB; None if none readable."""
    peak_kib = rss_kib = 0
    found = False
    for pid in pids:
        status = _status(pid)
        if "VmHWM" in status:
            found = True
            peak_kib += status["VmHWM"]
            rss_kib += status.get("VmRSS", 0)
    if not found:
        return None
    return {"peak_rss_mib": round(peak_kib / 1024, 1), "rss_mib": round(rss_kib / 1024, 1)}


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time used so far by the processes, in seconds (0 for those gone)."""
    total = 0
    for pid in pids:
        try:
            stat = (PROC / str(pid) / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; fields[0] is field 3 (state)
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / _CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time all cores have spent busy since boot (user, nice, system, irq, softirq, steal), in seconds.

    The difference over a phase, minus what the benchmark's own processes used, is other work's share.
    """
    try:
        fields = (PROC / "stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


def children_cpu_seconds() -> float:
    """User + system CPU time of this process's finished, waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pids_listening_on(port: int) -> list[int]:
    """The processes (of this user) that hold a listening TCP socket on `port`; empty if none is found."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(f"socket:[{cols[9]}]")
    if not inodes:
        return []
    holders = []
    for proc in PROC.iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                holders.append(int(proc.name))
        except OSError:  # another user's process, or gone
            continue
    # Workers that inherited the socket are in their parent's tree; keep only the top processes.
    return [pid for pid in holders if _ppid(pid) not in holders]


def machine_info() -> dict[str, object]:
    """Cores, CPU model, memory, OS and load average: enough to compare two result files."""
    cpu_model = None
    try:
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = _meminfo().get("MemTotal")
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model or platform.processor() or None,
        "memory_gib": round(mem_kib / 1024**2, 1) if mem_kib else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (other work on the machine shows up here)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _status(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0])  # kB
    except (OSError, ValueError, IndexError):
        pass
    return values


def _ppid(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _meminfo() -> dict[str, int]:
    values = {}
    try:
        for line in (PROC / "meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return values

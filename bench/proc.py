"""CPU time and memory of processes, read from /proc (Linux only)."""

import os
from dataclasses import dataclass
from pathlib import Path

_TICK = 1.0 / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    return text[text.rindex(")") + 2 :].split()


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _tree(pid: int, children: dict[int, list[int]], stop: set[int]) -> list[int]:
    """`pid` and its descendants, not descending into `stop` (processes counted on their own,
    such as the fleet's services, which are children of the benchmark process)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(child for child in children.get(current, ()) if child not in stop)
    return pids


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """utime + stime of each named process and its live descendants, plus the time of the
    children the root has already reaped (cutime + cstime)."""
    children = _children_by_parent()
    roots = set(pids.values())
    totals: dict[str, float] = {}
    for name, root in pids.items():
        ticks = 0
        for pid in _tree(root, children, roots):
            fields = _stat_fields(pid)
            if fields is None:
                continue
            # After the name: state is index 0, so utime/stime/cutime/cstime are 11..14.
            ticks += int(fields[11]) + int(fields[12])
            if pid == root:
                ticks += int(fields[13]) + int(fields[14])
        totals[name] = ticks * _TICK
    return totals


@dataclass(frozen=True)
class Memory:
    peak_kib: int  # VmHWM of the root process
    tree_peak_kib: int  # sum of VmHWM over the root and its live descendants


def _status_kib(pid: int, field: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmHWM, VmRSS ...); 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _hwm_kib(pid: int) -> int:
    return _status_kib(pid, "VmHWM")


def rss_kib(pid: int) -> int:
    """Resident memory of the process now (VmRSS)."""
    return _status_kib(pid, "VmRSS")


def peak_memory(pids: dict[str, int]) -> dict[str, Memory]:
    children = _children_by_parent()
    roots = set(pids.values())
    return {
        name: Memory(_hwm_kib(root), sum(_hwm_kib(p) for p in _tree(root, children, roots)))
        for name, root in pids.items()
    }


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy (every process, all cores), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) * _TICK

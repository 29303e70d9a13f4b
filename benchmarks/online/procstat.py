"""CPU time of a process and all its descendants, read from ``/proc`` (Linux; no psutil needed).

``/proc/<pid>/stat`` gives ``utime`` and ``stime`` (all threads of the process) and ``cutime`` and ``cstime`` (its
children that have exited and been waited for). Summing the four over a process and every live descendant counts
each CPU second once: a child is either still alive (counted by itself) or reaped (counted in its parent's
``cutime``/``cstime``). Figures have the kernel's clock-tick resolution (10 ms at the usual 100 Hz), which is
negligible over a phase of a few seconds.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    comm: str
    cpu_ticks: int  # utime + stime + cutime + cstime
    own_ticks: int  # utime + stime: the process's own threads only


def read_stat(pid: int) -> ProcStat | None:
    """The stat of one process, or None when it has gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses: split at the last ')'.
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state) of proc(5): ppid is field 4, utime..cstime are fields 14..17.
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return ProcStat(pid, int(fields[1]), comm, utime + stime + cutime + cstime, utime + stime)


def all_processes() -> dict[int, ProcStat]:
    """Every process on the machine, by pid."""
    stats = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
            stats[stat.pid] = stat
    return stats


def process_tree(root: int, stats: dict[int, ProcStat] | None = None) -> list[ProcStat]:
    """``root`` and all its live descendants (an empty list when ``root`` has gone)."""
    stats = all_processes() if stats is None else stats
    if root not in stats:
        return []
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(stats[pid])
        todo.extend(children.get(pid, ()))
    return tree


def thread_ticks(pid: int) -> dict[int, int]:
    """utime + stime of each thread of a process, by thread id (system-wide unique while the thread lives)."""
    ticks = {}
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return ticks
    for task in tasks:
        try:
            raw = (task / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        ticks[int(task.name)] = int(fields[11]) + int(fields[12])
    return ticks


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used by a process tree: in total, by command name and by thread (thread: ticks)."""

    total_s: float
    by_command: dict[str, float]  # e.g. {"python": 9.8, "redis-server": 2.1}
    processes: int
    threads: dict[int, int]

    def minus(self, earlier: CpuSample) -> CpuSample:
        by_command = Counter(self.by_command)
        by_command.subtract(earlier.by_command)
        return CpuSample(
            self.total_s - earlier.total_s,
            {name: round(seconds, 3) for name, seconds in by_command.items() if seconds},
            self.processes,
            {tid: ticks - earlier.threads.get(tid, 0) for tid, ticks in self.threads.items()},
        )

    @property
    def busiest_thread_s(self) -> float:
        """The CPU seconds of the busiest single thread (meaningful on a difference of two samples)."""
        return max(self.threads.values(), default=0) / CLOCK_TICKS_PER_S


def tree_cpu(root: int, stats: dict[int, ProcStat] | None = None) -> CpuSample:
    """CPU seconds (user + system) used so far by ``root`` and its descendants, in total and by command name."""
    tree = process_tree(root, stats)
    by_command: Counter[str] = Counter()
    threads: dict[int, int] = {}
    for stat in tree:
        by_command[stat.comm] += stat.cpu_ticks / CLOCK_TICKS_PER_S
        threads.update(thread_ticks(stat.pid))
    return CpuSample(sum(by_command.values()), dict(by_command), len(tree), threads)


def busiest_outside(
    before: dict[int, ProcStat], after: dict[int, ProcStat], inside: set[int], top: int = 3
) -> list[tuple[str, float]]:
    """The processes outside ``inside`` (pids) that used the most CPU between two snapshots: (pid and name, s).

    Own time only: a shell whose long-running child exits in between would otherwise show that child's whole life.
    """
    used = []
    for pid, stat in after.items():
        if pid in inside or pid not in before:
            continue
        ticks = stat.own_ticks - before[pid].own_ticks
        if ticks > 0:
            used.append((f"{pid} {stat.comm}", ticks / CLOCK_TICKS_PER_S))
    return sorted(used, key=lambda item: -item[1])[:top]

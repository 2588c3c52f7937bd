"""Figures the stages share: quantiles of timings, histogram buckets of a /metrics page, a rebuild's counts."""
from __future__ import annotations

import os


def rebuilt_counts(line: str) -> tuple[int, float]:
    """`rebuilt: N events replayed, at position P in S s` -> (N, S)."""
    return int(line.split()[1]), float(line.rsplit(" in ", 1)[1].split()[0])


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q * (len(values) - 1)))))]


def histogram_buckets(metrics_text: str, name: str, service: str) -> dict[float, float]:
    out = {}
    for line in metrics_text.splitlines():
        if line.startswith(f"{name}_bucket{{") and f'service="{service}"' in line:
            le = line.split('le="')[1].split('"')[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def gc_pauses(before: str, after: str, service: str, generation: str) -> dict:
    """The worker's collector pauses of one generation between two scrapes: how many, and their
    total (wuguan_gc_pause_seconds)."""
    def read(text: str) -> tuple[float, float]:
        count = total = 0.0
        for line in text.splitlines():
            if f'service="{service}"' in line and f'generation="{generation}"' in line:
                if line.startswith("wuguan_gc_pause_seconds_count"):
                    count = float(line.rsplit(" ", 1)[1])
                elif line.startswith("wuguan_gc_pause_seconds_sum"):
                    total = float(line.rsplit(" ", 1)[1])
        return count, total
    (c0, s0), (c1, s1) = read(before), read(after)
    return {"count": int(c1 - c0), "total_ms": round((s1 - s0) * 1000, 1),
            "mean_ms": round((s1 - s0) * 1000 / (c1 - c0), 1) if c1 > c0 else None}


def metric_sum(metrics_text: str, prefix: str, label: str = "") -> float:
    """The samples of a /metrics page that start with `prefix` and hold `label`, summed."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics_text.splitlines()
               if line.startswith(prefix) and label in line)


def cpu_times() -> list[int]:
    """The host's CPU time so far as /proc/stat counts it (user, nice, system, idle, iowait, irq,
    softirq, steal), or [] where there is none."""
    try:
        with open("/proc/stat") as stat:
            return [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return []


def cpu_share(before: list[int], after: list[int]) -> dict:
    """Between two cpu_times(): the share of the cores busy, and the share the hypervisor gave to
    others (steal), which the bench cannot see otherwise and which moves every figure with it."""
    if len(before) < 8 or len(after) < 8:
        return {}
    delta = [b - a for a, b in zip(before, after)]
    total = sum(delta) or 1
    return {"busy_pct": round(100 * (total - delta[3] - delta[4] - delta[7]) / total, 1),
            "steal_pct": round(100 * delta[7] / total, 1)}


# Which process a command line belongs to, for process_cpu_seconds: the first pattern it holds.
PROCESS_KINDS = (("postgres", "postgres"), ("broker", "tansu"), ("worker", "-m services"), ("bench", "-m bench"))


def pid_cpu_seconds(pid: int | str) -> float:
    """CPU seconds (user + system) the process has used so far, from /proc; OSError once it is gone."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return (int(fields[11]) + int(fields[12])) / ticks


def process_cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by the processes of each kind (PROCESS_KINDS) alive now, from
    /proc; {} where there is none. Two readings' difference over the wall time between them is
    the cores each kind kept busy."""
    used: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc") if os.path.isdir("/proc") else ()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
            kind = next((k for k, pattern in PROCESS_KINDS if pattern in command), None)
            if kind is not None:
                used[kind] = used.get(kind, 0.0) + pid_cpu_seconds(pid)
        except OSError:  # gone meanwhile
            continue
    return used


def cores_by_process(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """The cores each kind of process kept busy between two process_cpu_seconds() readings (a
    process that ended meanwhile takes its seconds with it: read while the stage's processes run)."""
    return {k: round(max(0.0, after[k] - before.get(k, 0.0)) / seconds, 2) for k in after} if seconds > 0 else {}

"""Figures the stages share: quantiles of timings, histogram buckets of a /metrics page, a rebuild's counts."""
from __future__ import annotations


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

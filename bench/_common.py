"""Shared helpers of the benchmarks: timing, medians and a uniform report."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` took."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_of(samples: list[float]) -> float:
    return statistics.median(samples)


def report(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    """Print a table: what was measured, pydrmaa2, baseline, ratio (and the target)."""
    print(f"\n## {title}")
    print(f"{'measure':44} {'pydrmaa2':>12} {'baseline':>12} {'ratio':>16}")
    for name, ours, base, ratio in rows:
        print(f"{name:44} {ours:>12} {base:>12} {ratio:>16}")

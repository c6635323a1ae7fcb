"""Timing side by side: every contender runs once per round, rounds repeat, medians are compared.
Interleaving rounds spreads machine noise over all contenders alike, so the ratios are fair."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def time_side_by_side(contenders: dict[str, Callable[[], object]], rounds: int = 15,
                      warmup: int = 3) -> dict[str, float]:
    """Median seconds per call for each contender, measured in interleaved rounds."""
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def print_table(title: str, rows: list[tuple], header: tuple) -> None:
    """A small fixed-width table with a title line."""
    print(f"\n## {title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))


def ratio_rows(medians: dict[str, float], reference: str, goals: dict[str, str] | None = None) -> list:
    """Rows of (name, ms, ratio to `reference`, goal)."""
    ref = medians[reference]
    goals = goals or {}
    return [(name, f"{t * 1e3:.2f}", f"{t / ref:.2f}×", goals.get(name, "")) for name, t in medians.items()]

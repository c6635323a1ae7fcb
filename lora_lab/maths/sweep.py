"""Reading a learning-rate sweep (notebook 12): the best rate of a grid, and a spread over seeds.
Pure NumPy."""

from __future__ import annotations

import numpy as np


def best_lr(lrs, losses) -> float:
    """The learning rate of lowest loss, refined by a parabola through the lowest point and its
    two neighbours in log(lr); at an edge of the grid, the edge itself (the best may lie beyond).

    `lrs` positive and increasing; a NaN or inf loss (a run that diverged) counts as the worst.
    Shapes: lrs, losses (n,) -> a float."""
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if lrs.ndim != 1 or lrs.shape != losses.shape or len(lrs) < 2:
        raise ValueError(f"lrs and losses must be 1-D of the same length >= 2, got shapes "
                         f"{lrs.shape} and {losses.shape}")
    if (lrs <= 0).any() or (np.diff(lrs) <= 0).any():
        raise ValueError(f"lrs must be positive and increasing, got {lrs.tolist()}")
    losses = np.where(np.isfinite(losses), losses, np.inf)
    i = int(np.argmin(losses))
    if i in (0, len(lrs) - 1) or not np.isfinite(losses[i - 1:i + 2]).all():
        return float(lrs[i])
    x, y = np.log(lrs[i - 1:i + 2]), losses[i - 1:i + 2]
    a, b, _ = np.polyfit(x, y, 2)  # y ≈ a x² + b x + c, a > 0 since the middle point is lowest
    return float(np.exp(np.clip(-b / (2 * a), x[0], x[2])))  # the vertex, between the neighbours


def at_edge(lrs, best: float) -> bool:
    """True when `best` is the smallest or the largest rate of the grid (the optimum may lie outside)."""
    lrs = np.asarray(lrs, dtype=float)
    return bool(np.isclose(best, lrs.min()) or np.isclose(best, lrs.max()))


def spread(values) -> dict:
    """Mean, min and max of per-seed values: {"mean", "low", "high", "n"}."""
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError("values must hold at least one number, got an empty sequence")
    return {"mean": float(v.mean()), "low": float(v.min()), "high": float(v.max()), "n": int(v.size)}


def geometric_spread(values) -> dict:
    """Like `spread`, with the geometric mean (for ratios and learning rates)."""
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0 or (v <= 0).any():
        raise ValueError(f"values must be positive numbers, got {v.tolist()}")
    return {"mean": float(np.exp(np.log(v).mean())), "low": float(v.min()), "high": float(v.max()),
            "n": int(v.size)}

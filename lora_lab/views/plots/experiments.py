"""Figures of notebook 06: training curves, the rank and weight-type ablations, low data,
intrinsic dimension. Each takes the rows `lora_lab.lab.ablations` returns, and draws."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np


def _smooth(values: Sequence[float], window: int = 9) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if len(v) < window:
        return v
    return np.convolve(v, np.ones(window) / window, mode="valid")  # (len - window + 1,)


def plot_histories(histories: dict, axes=None):
    """Left: training loss per step (moving average); right: test accuracy after each epoch."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6)) if axes is None else (axes[0].figure, axes)
    for label, h in histories.items():
        axes[0].plot(_smooth(h.losses), label=label)
        epochs = h.eval_epochs or list(range(1, len(h.test_accuracy) + 1))
        axes[1].plot(epochs, h.test_accuracy, "o-", label=label)
    axes[0].set(xlabel="step", ylabel="training loss (moving average)", title="loss")
    axes[1].set(xlabel="epoch", ylabel="test accuracy", title="digits 5–9, test set", ylim=(0.5, 1.0))
    axes[1].legend(loc="lower right")
    return fig, axes


def _lines(ax, reference: dict | None):
    for i, (label, acc) in enumerate((reference or {}).items()):
        ax.axhline(acc, color=f"C{i + 3}", linestyle="--", linewidth=1, label=f"{label} ({acc:.3f})")


def plot_rank_ablation(fixed: list[dict], alpha_r: list[dict] | None = None, reference: dict | None = None,
                       ax=None):
    """Accuracy against r (log scale): every seed as a dot, the mean as a line; α fixed and α = r."""
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    for i, (rows, name) in enumerate([(fixed, "α fixed"), (alpha_r or [], "α = r")]):
        if not rows:
            continue
        r = [row["r"] for row in rows]
        ax.plot(r, [row["mean"] for row in rows], "o-", color=f"C{i}", label=f"LoRA Wq,Wv, {name}")
        for row in rows:
            ax.plot([row["r"]] * len(row["accuracies"]), row["accuracies"], ".", color=f"C{i}", alpha=0.5)
    _lines(ax, reference)
    ax.set(xscale="log", xlabel="rank r (log scale)", ylabel="test accuracy", title="rank ablation")
    ax.set_xticks([row["r"] for row in fixed], [str(row["r"]) for row in fixed])
    ax.legend(loc="lower right", fontsize=8)
    return fig, ax


def plot_weight_types(rows: list[dict], ax=None):
    """Mean accuracy per weight type at an equal budget, with every seed's result as a dot."""
    fig, ax = plt.subplots(figsize=(8, 3.8)) if ax is None else (ax.figure, ax)
    x = np.arange(len(rows))
    ax.bar(x, [row["mean"] for row in rows], color="C0", alpha=0.6)
    for xi, row in zip(x, rows, strict=True):
        ax.plot([xi] * len(row["accuracies"]), row["accuracies"], "k.")
    ax.set_xticks(x, [row["label"].removeprefix("LoRA ") for row in rows], rotation=20)
    low = min(min(row["accuracies"]) for row in rows)
    ax.set(ylabel="test accuracy", ylim=(max(0.0, low - 0.05), 1.0),
           title=f"which weights? equal budget ({rows[0]['trainable']:,} trainable incl. head)")
    return fig, ax


def plot_low_data_and_intrinsic(low: list[dict], intrinsic: list[dict], reference: dict | None = None):
    """Left: accuracy against the share of training data; right: accuracy against subspace d."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, method in enumerate(sorted({row["method"] for row in low})):
        rows = [row for row in low if row["method"] == method]
        axes[0].plot([row["fraction"] for row in rows], [row["accuracy"] for row in rows], "o-",
                     color=f"C{i}", label=rows[0]["label"])
    shares = sorted({row["fraction"] for row in low})
    axes[0].set(xscale="log", xlabel="share of training images (log scale)", ylabel="test accuracy",
                title="less data")
    axes[0].set_xticks(shares, [f"{f:.0%}" for f in shares])
    axes[0].minorticks_off()
    axes[0].legend(loc="lower right")
    axes[1].plot([row["d"] for row in intrinsic], [row["accuracy"] for row in intrinsic], "o-",
                 label="random subspace + head")
    _lines(axes[1], reference)
    axes[1].set(xscale="log", xlabel="subspace dimension d (log scale)", ylabel="test accuracy",
                title="intrinsic dimension")
    axes[1].legend(loc="lower right", fontsize=8)
    return fig, axes


def plot_digits(task, n: int = 10, axes=None):
    """The first `n` training images of a task, titled with their digit."""
    fig, axes = plt.subplots(1, n, figsize=(1.1 * n, 1.5)) if axes is None else (axes[0].figure, axes)
    for ax, x, y in zip(axes, task.x_train[:n], task.y_train[:n], strict=False):
        ax.imshow(x[0].numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(str(task.digits[int(y)]), fontsize=9)
        ax.set_axis_off()
    fig.suptitle(f"task {task.name!r}", fontsize=10)
    return fig, axes

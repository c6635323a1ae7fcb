"""Figures of notebook 12 (what the field learned about LoRA after 2021). Each takes rows or
curves already computed (`lora_lab.lab.since2021`) and draws them; none trains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


def plot_lr_sweeps(curves: Mapping[str, tuple], best: Mapping[str, float] | None = None, ax=None,
                   ylabel: str = "test loss on digits 5–9"):
    """One line per method: the mean over seeds against the rate (log), its seed range shaded.
    `curves[label] = (lrs, mean, low, high)`; `best[label]` draws a dotted line at that rate."""
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    for i, (label, (lrs, mean, low, high)) in enumerate(curves.items()):
        line, = ax.plot(lrs, mean, "os^dv"[i % 5] + "-", label=label)
        ax.fill_between(lrs, low, high, color=line.get_color(), alpha=0.2)
        if best and label in best:
            ax.axvline(best[label], color=line.get_color(), ls=":", lw=1)
    ax.set_xscale("log")
    ax.set(xlabel="learning rate (log scale)", ylabel=ylabel,
           title="learning-rate sweeps: mean over seeds, range shaded")
    ax.legend()
    return fig, ax


def plot_learning_forgetting(groups: Mapping[str, Sequence[dict]], base_source: float, ax=None):
    """Biderman et al.'s picture: learning (target accuracy) across, forgetting (the drop of
    source accuracy from the base model's) up; one marker style per group of runs."""
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    for i, (label, rows) in enumerate(groups.items()):
        x = [r["target_acc"] for r in rows]
        y = [base_source - r["source_acc"] for r in rows]
        ax.scatter(x, y, marker="os^dvP"[i % 6], s=28, alpha=0.75, label=label)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set(xlabel="learned: accuracy on digits 5–9", ylabel="forgotten: drop in accuracy on digits 0–4",
           title="learning against forgetting, one point per run")
    ax.legend(fontsize="small")
    return fig, ax


def plot_placements(results: Mapping[str, Sequence[float]], trainable: Mapping[str, int] | None = None,
                    ax=None, ylabel: str = "accuracy on digits 5–9"):
    """One bar per placement (mean over seeds), each seed a dot on it."""
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    names = list(results)
    for i, name in enumerate(names):
        vals = np.asarray(results[name], dtype=float)
        ax.bar(i, vals.mean(), color=f"C{i}", alpha=0.6)
        ax.plot(np.full(vals.size, i), vals, "k.", ms=8)
    labels = [f"{n}\n{trainable[n]:,} params" if trainable else n for n in names]
    ax.set_xticks(range(len(names)), labels)
    lows = min(min(v) for v in results.values())
    ax.set(ylabel=ylabel, ylim=(max(0.0, lows - 0.1), 1.0), title="where LoRA goes, same budget")
    return fig, ax


def plot_best_match(matches: Mapping[str, Sequence[float]], threshold: float, ax=None):
    """For the top singular vectors of W0 + ΔW (index across), the best |cos| with any of W0's;
    below the dashed threshold a vector is an intruder."""
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    for i, (label, m) in enumerate(matches.items()):
        ax.plot(np.arange(1, len(m) + 1), m, "os^dv"[i % 5] + "-", label=label)
    ax.axhline(threshold, color="grey", ls="--", lw=1, label=f"ε = {threshold:g}")
    ax.set(xlabel="singular vector of W0 + ΔW (1 = strongest)", ylabel="best |cos| with W0's vectors",
           ylim=(0, 1.05), title="do the top directions after fine-tuning exist in W0?")
    ax.legend(fontsize="small")
    return fig, ax


def plot_rank_lr(best: Mapping[str, Mapping[int, Sequence[float]]], ax=None):
    """Best learning rate (per seed: dots; geometric mean: line) against rank, one line per rule."""
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    for i, (label, by_rank) in enumerate(best.items()):
        ranks = sorted(by_rank)
        for r in ranks:
            ax.plot([r] * len(by_rank[r]), by_rank[r], ".", color=f"C{i}", alpha=0.6)
        means = [float(np.exp(np.mean(np.log(by_rank[r])))) for r in ranks]
        ax.plot(ranks, means, "os"[i % 2] + "-", color=f"C{i}", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    all_ranks = sorted({r for by_rank in best.values() for r in by_rank})
    ax.set_xticks(all_ranks, [str(r) for r in all_ranks])
    ax.set(xlabel="rank r", ylabel="best learning rate (log scale)", title="does the best rate move with r?")
    ax.legend()
    return fig, ax


def plot_epoch_curves(curves: Mapping[str, Sequence[Sequence[float]]], ax=None,
                      ylabel: str = "accuracy on digits 5–9"):
    """Test accuracy after each epoch: one line per label (mean over seeds), the seed range shaded.
    `curves[label]` holds one sequence per seed."""
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    for i, (label, per_seed) in enumerate(curves.items()):
        a = np.asarray(per_seed, dtype=float)  # (seeds, epochs)
        epochs = np.arange(1, a.shape[1] + 1)
        line, = ax.plot(epochs, a.mean(axis=0), "os^dv"[i % 5] + "-", label=label)
        ax.fill_between(epochs, a.min(axis=0), a.max(axis=0), color=line.get_color(), alpha=0.2)
    ax.set(xlabel="epoch", ylabel=ylabel, title="how fast each setting learns (same steps, same cost)")
    ax.legend()
    return fig, ax

"""Figures of notebook 10: rsLoRA's scaling, DoRA's magnitude/direction split, PiSSA's spectrum,
NF4's levels, the variants' parameter counts, and the runs' accuracy and loss curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import NullFormatter

from lora_lab.maths.nf4 import int4_levels, nf4_levels


def plot_scaling(alpha: float = 8.0, ranks: Sequence[int] = (1, 2, 4, 8, 16, 32, 64), ax=None):
    """The LoRA path's multiplier against r: α/r (LoRA) and α/√r (rsLoRA), log-log."""
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    r = np.asarray(ranks, dtype=float)
    ax.loglog(r, alpha / r, "o-", label="LoRA: α/r")
    ax.loglog(r, alpha / np.sqrt(r), "s-", label="rsLoRA: α/√r")
    ax.set_xticks(r, [str(int(v)) for v in r])
    ax.set_yticks(alpha / r, [f"{v:g}" for v in alpha / r])  # α/r's values: 8, 4, 2, … for α = 8
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="rank r (log scale)", ylabel="scaling s (log scale)",
           title=f"the multiplier of BA, α = {alpha:g}")
    ax.legend()
    return fig, ax


def plot_rank_sweep(results: Mapping[str, Mapping[int, float]], ax=None, ylabel: str = "test accuracy"):
    """One line per scaling rule: a value (accuracy) against the rank r (log scale)."""
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    for i, (label, by_rank) in enumerate(results.items()):
        ranks = sorted(by_rank)
        ax.plot(ranks, [by_rank[r] for r in ranks], "os"[i % 2] + "-", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ranks, [str(r) for r in ranks])
    ax.set(xlabel="rank r", ylabel=ylabel, title="accuracy against rank, same α for both rules")
    ax.legend()
    return fig, ax


def plot_magnitude_direction(changes: Mapping[str, tuple], ax=None):
    """DoRA paper Figure 2 in miniature: per output row, ΔD (1 − cos) against ΔM (|Δ‖row‖|)."""
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    for label, (dm, dd) in changes.items():
        ax.scatter(np.asarray(dd), np.asarray(dm), s=10, alpha=0.6, label=label)
    ax.set(xlabel="direction change ΔD = 1 − cos(w, w0)", ylabel="magnitude change ΔM = |‖w‖ − ‖w0‖|",
           title="how each output row of W changed")
    ax.legend()
    return fig, ax


def plot_pissa_spectrum(W0, r: int, ax=None):
    """Singular values of W0: the top r become PiSSA's trained B A, the rest stay in the frozen residual."""
    W0 = torch.as_tensor(W0).detach().float()
    S = torch.linalg.svdvals(W0).numpy()
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    i = np.arange(1, S.size + 1)
    ax.bar(i[r:], S[r:], color="0.7", width=1.0, label="residual (frozen)")
    ax.bar(i[:r], S[:r], color="C1", width=1.0, label=f"top {r}: B A (trained)")
    ax.set(xlabel="index i", ylabel="σ_i", title=f"PiSSA splits W0 {tuple(W0.shape)}: σ by index")
    ax.legend()
    return fig, ax


def plot_nf4_levels(n: int = 20000, block_size: int = 64, seed: int = 0, ax=None):
    """Normal weights divided by their block's absmax, with NF4's 16 levels and a plain int4 grid."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n // block_size, block_size, generator=gen)  # (blocks, block_size)
    scaled = (w / w.abs().amax(dim=1, keepdim=True)).reshape(-1).numpy()
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    ax.hist(scaled, bins=80, color="0.75", density=True, label="w / absmax of its block")
    for j, v in enumerate(nf4_levels().tolist()):
        ax.axvline(v, color="C0", linewidth=1.2, label="NF4 levels (16)" if j == 0 else None)
    for j, v in enumerate(int4_levels().tolist()):
        ax.axvline(v, ymax=0.25, color="C3", linestyle=":", label="int4 grid (15)" if j == 0 else None)
    ax.set(xlabel="value / absmax", ylabel="density", title=f"4-bit levels, blocks of {block_size}")
    ax.legend(loc="upper right", fontsize=8)
    return fig, ax


def plot_counts(counts: Mapping[str, int], title: str = "trainable parameters", ax=None):
    """Horizontal bars of parameter counts, labelled with the numbers."""
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(counts) + 1.2)) if ax is None else (ax.figure, ax)
    names, values = list(counts), [counts[k] for k in counts]
    ax.barh(names, values, color=[f"C{i}" for i in range(len(names))])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,}", va="center", fontsize=8)
    ax.set_xlim(0, max(values) * 1.3)  # room for the numbers at the bars' ends
    ax.invert_yaxis()
    ax.set(xlabel="parameters", title=title)
    return fig, ax


def plot_loss_curves(curves: Mapping[str, Sequence[Sequence[float]]], window: int = 10, ax=None):
    """Training loss per step (moving average over `window`), one colour per label, one line per seed."""
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    kernel = np.ones(window) / window
    for i, (label, runs) in enumerate(curves.items()):
        for j, losses in enumerate(runs):
            smooth = np.convolve(np.asarray(losses, float), kernel, mode="valid")
            ax.plot(np.arange(window, window + smooth.size), smooth, color=f"C{i}", alpha=0.8,
                    label=label if j == 0 else None)
    ax.set(yscale="log", xlabel="step", ylabel=f"training loss (mean of {window}, log)",
           title="training loss, one line per seed")
    ax.legend()
    return fig, ax


def _counts_llama():
    from lora_lab.maths.budget import LLAMA2_7B
    from lora_lab.maths.variant_budget import variant_param_count

    names = {"LoRA": "lora", "DoRA": "dora", "AdaLoRA (start)": "adalora", "VeRA": "vera"}
    counts = {k: variant_param_count(LLAMA2_7B, v, 8, ("q", "v")) for k, v in names.items()}
    return plot_counts(counts, title="LLaMA-2 7B, W_q and W_v, r = 8")


FIGURES = {
    "variants_scaling.png": plot_scaling,
    "variants_nf4_levels.png": plot_nf4_levels,
    "variants_counts.png": _counts_llama,
}

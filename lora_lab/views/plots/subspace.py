"""Figures of notebook 07: φ heatmaps (the paper's Figures 3 and 4) and the ΔW-vs-W bars (Table 7).
They take what `lora_lab.lab.readouts` computes from the runs, and draw."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter

#: Paper Table 7 (GPT-3, layer 48, Wq): ‖UᵀWqVᵀ‖_F for U, V from ΔWq, Wq or a random matrix.
PAPER_TABLE7 = {4: {"proj_delta": 0.32, "proj_W": 21.67, "proj_random": 0.02, "norm_delta": 6.91},
                64: {"proj_delta": 1.90, "proj_W": 37.71, "proj_random": 0.33, "norm_delta": 3.57}}
PAPER_NORM_WQ = 61.95


def plot_phi(phi: np.ndarray, ax=None, title: str = "", colorbar: bool = True):
    """φ as a heatmap: row i (A1's top-i directions) down, column j (A2's top-j) across."""
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    r1, r2 = phi.shape
    im = ax.imshow(phi, vmin=0, vmax=1, cmap="viridis", aspect="auto", interpolation="nearest",
                   extent=(0.5, r2 + 0.5, r1 + 0.5, 0.5))
    ax.set(xlabel="j", ylabel="i", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(False)
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    return fig, ax


def plot_phi_panels(panels: dict, figsize=None, ncols: int | None = None):
    """Several φ grids side by side (or stacked), one shared colour scale, titled by their keys."""
    n = len(panels)
    ncols = ncols or n
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (3.6 * ncols, 3.2 * nrows), squeeze=False,
                             layout="constrained")
    for ax, (title, phi) in zip(axes.flat, panels.items(), strict=False):
        plot_phi(phi, ax=ax, title=title, colorbar=False)
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    fig.colorbar(axes.flat[0].images[0], ax=axes, fraction=0.03, pad=0.01, label="φ")
    return fig, axes


def figure3(panels: dict):
    """The paper's Figure 3 at our scale: `lora_lab.lab.readouts.rank_panels`, stacked."""
    return plot_phi_panels(panels, figsize=(10, 6.5), ncols=1)


def figure4(panels: dict):
    """The paper's Figure 4 at our scale: `lora_lab.lab.readouts.seed_panels`, side by side."""
    return plot_phi_panels(panels, figsize=(12, 3.4))


_KINDS = (("proj_delta", "ΔW"), ("proj_W", "W itself"), ("proj_random", "a random matrix"))
_PROJ = r"$\Vert U^{\top} W V \Vert_F$"


def _projection_bars(ax, rows: dict, title: str) -> None:
    ranks = sorted(rows)
    x = np.arange(len(ranks))
    for k, (key, label) in enumerate(_KINDS):
        ax.bar(x + (k - 1) * 0.27, [rows[r][key] for r in ranks], width=0.27, label=label)
    ax.set_xticks(x, [f"r = {r}" for r in ranks])
    ax.set(yscale="log", ylabel=_PROJ + " (log scale)", title=title)
    _log_ticks(ax)


def _log_ticks(ax) -> None:
    """Labelled ticks at 1, 2 and 5 of every decade (0.01, 0.02, 0.05, 0.1, …), not decades only."""
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _factor_bars(ax, ours: dict, paper: dict) -> None:
    """The amplification factor ‖ΔW‖_F / ‖UᵀWV‖_F per r, ours beside the paper's; 1 = none."""
    ranks = sorted(ours)
    x = np.arange(len(ranks))
    for k, (rows, label) in enumerate([(ours, "this course"), (paper, "paper")]):
        values = [rows[r]["norm_delta"] / rows[r]["proj_delta"] for r in ranks]
        bars = ax.bar(x + (k - 0.5) * 0.38, values, width=0.38, label=label, color=f"C{k + 3}")
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8)
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1, label="1 = no amplification")
    ax.set_xticks(x, [f"r = {r}" for r in ranks])
    ax.set(yscale="log", ylabel=r"$\Vert\Delta W\Vert_F$ / " + _PROJ + " (log scale)",
           title="amplification factor", xlim=(-0.6, len(ranks) - 0.4), ylim=(0.3, 300))
    _log_ticks(ax)
    ax.legend(fontsize=8, loc="upper right")


def plot_amplification(ours: dict, paper: dict = PAPER_TABLE7):
    """Left two panels: ‖UᵀWV‖_F for U, V from ΔW, W or random, per r, ours and the paper's (log
    scale); right: the amplification factor ‖ΔW‖_F / ‖UᵀWV‖_F (U, V from ΔW), ours and the paper's.

    `ours` and `paper`: r -> a dict with proj_delta, proj_W, proj_random, norm_delta
    (`lora_lab.maths.subspace.amplification`).
    """
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), gridspec_kw={"width_ratios": [1, 1, 0.8]})
    _projection_bars(axes[0], ours, "this course's ViT (Wq, block 1)")
    _projection_bars(axes[1], paper, "paper, GPT-3 layer 48 (Table 7)")
    _factor_bars(axes[2], ours, paper)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=9,
               title="U, V: the top-r singular vectors of", title_fontsize=9)
    fig.subplots_adjust(bottom=0.27, wspace=0.35)
    return fig, axes

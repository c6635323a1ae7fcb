"""Figures of notebook 07: φ heatmaps (the paper's Figures 3 and 4) and the ΔW-vs-W bars (Table 7)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator, NullFormatter

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


def plot_amplification(ours: dict, paper: dict = PAPER_TABLE7):
    """‖UᵀWV‖_F for U, V from ΔW, W or random, per r: ours (left) and the paper's (right), log scale."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    kinds = [("proj_delta", "ΔW's directions"), ("proj_W", "W's own directions"), ("proj_random", "random")]
    for ax, rows, title in [(axes[0], ours, "this course's ViT (Wq, block 1)"),
                            (axes[1], paper, "paper, GPT-3 layer 48 (Table 7)")]:
        ranks = sorted(rows)
        x = np.arange(len(ranks))
        for k, (key, label) in enumerate(kinds):
            ax.bar(x + (k - 1) * 0.27, [rows[r][key] for r in ranks], width=0.27, label=label)
        ax.set_xticks(x, [f"r = {r}" for r in ranks])
        ax.set(yscale="log", ylabel="‖Uᵀ W V‖_F (log scale)", title=title)
        ax.yaxis.set_minor_formatter(NullFormatter())  # label decades only
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=9)
    fig.subplots_adjust(bottom=0.2, wspace=0.3)
    return fig, axes


def _runs():
    from lora_lab.lab.runs import subspace_runs

    return subspace_runs()


def _a(run, layer, matrix):
    from lora_lab.lab.runs import adapter_matrices

    return adapter_matrices(run, layer, matrix)["A"]


def figure3(layer: int = 1):
    """φ(A r=8, A r=64) for Wq and Wv (different seeds), and for random matrices of the same shapes."""
    from lora_lab.maths.subspace import subspace_similarity

    runs = _runs()
    rng = np.random.default_rng(0)
    panels = {f"W{m[0]}, block {layer}: A (r=8) vs A (r=64)":
              subspace_similarity(_a(runs[8, 0], layer, m), _a(runs[64, 1], layer, m))
              for m in ["q_proj", "v_proj"]}
    panels["random Gaussian (8, 128) vs (64, 128)"] = subspace_similarity(
        rng.standard_normal((8, 128)), rng.standard_normal((64, 128)))
    return plot_phi_panels(panels, figsize=(10, 6.5), ncols=1)


def figure4(layer: int = 1, top: int = 16):
    """φ between two r=64 runs with different seeds, for Wq and Wv, and a random pair: the top-left
    `top`×`top` corner (φ there depends only on each adapter's top `top` directions)."""
    from lora_lab.maths.subspace import subspace_similarity

    runs = _runs()
    rng = np.random.default_rng(1)
    panels = {f"W{m[0]}, block {layer}: r=64, seed 0 vs seed 1":
              subspace_similarity(_a(runs[64, 0], layer, m), _a(runs[64, 1], layer, m))[:top, :top]
              for m in ["q_proj", "v_proj"]}
    panels["random vs random"] = subspace_similarity(rng.standard_normal((64, 128)),
                                                     rng.standard_normal((64, 128)))[:top, :top]
    return plot_phi_panels(panels, figsize=(12, 3.4))


def amplification_figure(layer: int = 1):
    """Table 7's analogue beside the paper's numbers."""
    from lora_lab.lab.runs import adapter_matrices
    from lora_lab.maths.subspace import amplification

    runs = _runs()
    ours = {}
    for r, seed in [(4, 0), (64, 0)]:
        m = adapter_matrices(runs[r, seed], layer, "q_proj")
        ours[r] = amplification(m["W"], m["delta_W"], r)
    return plot_amplification(ours)


FIGURES = {
    "subspace_phi_r8_vs_r64.png": figure3,
    "subspace_phi_seed_vs_seed.png": figure4,
    "subspace_amplification.png": amplification_figure,
}

"""Figures of notebook 02: singular-value spectra, energy curves and reconstructions at a few ranks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from lora_lab.maths.lowrank import LowRankImage, energy, load_photo


def plot_spectrum(S, r: int | None = None, ax=None, title: str = "singular values"):
    """σ_i against i on a log scale; with `r`, the kept top r are drawn in a second colour."""
    S = np.asarray(S, dtype=np.float64)
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    i = np.arange(1, S.size + 1)
    ax.semilogy(i, np.maximum(S, 1e-16), ".", color="0.6", label="dropped")
    if r is not None:
        ax.semilogy(i[:r], S[:r], ".", color="C0", label=f"kept (top {r})")
        ax.legend(loc="upper right")
    ax.set(xlabel="index i", ylabel="σ_i (log scale)", title=title)
    return fig, ax


def plot_energy(spectra: Mapping[str, Sequence[float]], ax=None, keep: float | None = 0.9):
    """Cumulative energy share against r, one curve per labelled spectrum; a line at `keep`."""
    fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
    for label, S in spectra.items():
        shares = energy(S)
        ax.plot(np.arange(1, shares.size + 1), shares, label=label)
    if keep is not None:
        ax.axhline(keep, color="0.5", linestyle="--", linewidth=1)
    ax.set(xscale="log", xlabel="rank r (log scale)", ylabel="share of Σσ² kept", ylim=(0, 1.02),
           title="energy kept by the top r singular values")
    ax.legend(loc="lower right")
    return fig, ax


def plot_reconstructions(image: LowRankImage, ranks: Sequence[int] = (1, 5, 20, 50), with_original=True):
    """A row of rank-r reconstructions titled with rank, relative error and compression."""
    n = len(ranks) + int(with_original)
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n, 3.2))
    axes = np.atleast_1d(axes)
    for ax, r in zip(axes, ranks, strict=False):
        view = image.at_rank(r)
        ax.imshow(view.image, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"r = {r}\nerror {view.relative_error:.2f} · {view.compression:.0f}×", fontsize=9)
    if with_original:
        axes[-1].imshow(image.M, cmap="gray", vmin=0, vmax=1)
        axes[-1].set_title(f"original\nrank {min(image.shape)}", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    return fig, axes


def photo_spectrum():
    """The photograph's singular values, with the top 20 marked."""
    S = LowRankImage(load_photo()).S
    return plot_spectrum(S, r=20, title="Grace Hopper (600 × 512): singular values")


def photo_reconstructions():
    """The photograph at ranks 1, 5, 20 and 50, next to the original."""
    return plot_reconstructions(LowRankImage(load_photo()))


FIGURES = {
    "lowrank_spectrum.png": photo_spectrum,
    "lowrank_reconstructions.png": photo_reconstructions,
}

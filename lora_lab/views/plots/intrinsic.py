"""Figure for the intrinsic-dimension experiment (Li et al. 2018) of `01_why_lora`."""

from __future__ import annotations

import matplotlib.pyplot as plt


def plot_intrinsic_curve(result: dict):
    """Test accuracy against the subspace dimension d (log x), full training and 90% of it as lines."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(result["d"], result["accuracy"], marker="o", label="train only z (d,) in θ = θ0 + P z")
    ax.axhline(result["full"], color="black", lw=1, label=f"train all D = {result['D']:,} parameters")
    ax.axhline(0.9 * result["full"], color="gray", lw=1, ls="--", label="90% of that")
    if result["d90"] is not None:
        ax.axvline(result["d90"], color="tab:red", lw=1, ls=":", label=f"d_int90 = {result['d90']}")
    ax.set(xscale="log", xlabel="subspace dimension d", ylabel="test accuracy", ylim=(0, 1.02),
           title="Digits MLP trained in a random d-dimensional subspace")
    ax.legend(fontsize=8, loc="lower right")
    return fig, ax

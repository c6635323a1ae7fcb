"""Figures of `03_lora_linear`: what α/r does as r changes, and loss against LoRA rank."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from lora_lab.lab.planted import SCALING_RULES

#: the ranks notebook 03 draws: the α/r figure's, and the loss-against-rank sweep's
SCALING_RANKS = (1, 2, 4, 8, 16, 32, 64)
SWEEP_RANKS = tuple(range(1, 17))


def scaling_factors(rule: str, ranks, alpha: float = 8.0) -> list[float]:
    """The factor multiplying B @ A under a rule of SCALING_RULES, for each rank."""
    if rule not in SCALING_RULES:
        raise ValueError(f"rule must be one of {list(SCALING_RULES)}, got {rule!r}")
    alpha_is_r, rslora = SCALING_RULES[rule]
    return [1.0 if alpha_is_r else alpha / (math.sqrt(r) if rslora else r) for r in ranks]


def plot_scaling_vs_rank(sizes: dict[str, dict[int, float]], alpha: float = 8.0, steps: int = 10):
    """Left: the scaling factor against r. Right: ‖ΔW‖_F after `steps` Adam steps (`sizes`)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.6))
    for rule, by_rank in sizes.items():
        ranks = list(by_rank)
        left.plot(ranks, scaling_factors(rule, ranks, alpha), "o-", label=rule)
        right.plot(ranks, list(by_rank.values()), "o-", label=rule)
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(ranks, [str(r) for r in ranks])
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 0.1, 0.2, 0.5, 1, 2, 5…
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("rank r")
    left.set_ylabel("factor multiplying B @ A")
    left.set_title(f"the scaling (α = {alpha:g})")
    right.set_ylabel("‖ΔW‖_F")
    right.set_title(f"size of the update after {steps} Adam steps")
    left.legend(fontsize=8)
    fig.tight_layout()
    return fig, (left, right)


def plot_rank_sweep(losses: dict[int, float], floors: dict[int, float], r_true: int):
    """Final training loss against LoRA rank, with the Eckart–Young floor and r* marked."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ranks = list(losses)
    ax.semilogy(ranks, list(losses.values()), "o-", label="LoRA after training")
    positive = {r: f for r, f in floors.items() if f > 0}
    ax.semilogy(list(positive), list(positive.values()), "k_", markersize=14, mew=2,
                label="best possible at rank r (Eckart–Young)")
    ax.axvline(r_true, color="tab:red", ls="--", lw=1, label=f"planted rank r* = {r_true}")
    ax.set_xlabel("LoRA rank r")
    ax.set_ylabel("mean squared error")
    ax.set_xticks(ranks)
    ax.set_title("learning a planted rank-r* update: rank ≥ r* suffices")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, ax

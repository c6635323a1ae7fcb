"""Figures of notebook 08: what each way of serving a fine-tune costs per forward pass."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np


def plot_forward_cost(costs: Mapping[str, Mapping[str, int]], base: str = "base", setting: str = ""):
    """Two panels, relative to `base`: tensor operations run in sequence, and FLOPs, per forward pass.

    `costs` is what `lora_lab.lora.deploy.serving_costs` returns; `setting` (e.g. "LoRA r = 4 on
    W_q, W_v") is printed under the title, so the figure says what it measured.
    """
    if base not in costs:
        raise ValueError(f"base must be one of {sorted(costs)}, got {base!r}")
    names = list(costs)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, key, label in zip(axes, ("ops", "flops"), ("operations run in sequence", "FLOPs"), strict=True):
        ratios = np.array([costs[n][key] / costs[base][key] for n in names])
        bars = ax.barh(names, ratios, color=["C2" if abs(r - 1) < 1e-12 else "C1" for r in ratios])
        ax.bar_label(bars, labels=[f"×{r:.3f}" for r in ratios], padding=3, fontsize=8)
        ax.axvline(1.0, color="0.4", linewidth=1)
        ax.set(xlabel=f"{label} per forward pass (× base)", xlim=(0.9, max(ratios) * 1.12))
    axes[0].invert_yaxis()
    title = "serving cost: a merged LoRA is the base model, an adapter is not"
    fig.suptitle(f"{title}\n({setting})" if setting else title, fontsize=10)
    fig.tight_layout()
    return fig, axes


def plot_latency(ratios: Mapping[str, Mapping[str, float]], paper: Mapping[str, tuple] | None = None,
                 paper_columns: list[str] | None = None):
    """Grouped bars: measured latency ÷ base for each model (rows) and setting (columns); with
    `paper` (name -> overhead % per setting, e.g. budget.latency_overhead()), a second panel."""
    settings = list(next(iter(ratios.values())))
    fig, axes = plt.subplots(1, 2 if paper else 1, figsize=(10 if paper else 5.5, 3.4), squeeze=False)
    _grouped(axes[0, 0], {n: [row[s] for s in settings] for n, row in ratios.items()}, settings,
             "measured here (this machine, noisy)")
    if paper:
        columns = paper_columns or [f"setting {i + 1}" for i in range(len(next(iter(paper.values()))))]
        _grouped(axes[0, 1], {n: [1 + p / 100 for p in row] for n, row in paper.items()}, columns,
                 "the paper's Table 1 (GPT-2 medium, GPU)")
    fig.tight_layout()
    return fig, axes[0]


def _grouped(ax, rows: Mapping[str, list], columns: list, title: str) -> None:
    width = 0.8 / len(rows)
    for i, (name, values) in enumerate(rows.items()):
        ax.bar(np.arange(len(columns)) + i * width, values, width, label=name)
    ax.axhline(1.0, color="0.4", linewidth=1)
    ax.set_xticks(np.arange(len(columns)) + 0.4 - width / 2, columns, fontsize=8)
    top = max(max(v) for v in rows.values())
    ax.set(ylabel="latency ÷ base", title=title, ylim=(0.8, max(1.1, top * 1.08)))
    ax.legend(fontsize=7)


def forward_cost_figure(r: int = 4, bottleneck: int = 8):
    """The forward-cost panels of notebook 08's tiny ViT: LoRA r = 4 on W_q, W_v (08's settings),
    adapters with a bottleneck of 8. Untrained weights: the costs do not depend on values."""
    import torch

    from lora_lab.lab.models import TinyViT
    from lora_lab.lora.deploy import serving_costs, serving_variants
    from lora_lab.lora.inject import add_lora

    torch.manual_seed(0)
    base = TinyViT().eval()
    lora = add_lora(copy.deepcopy(base), ["q_proj", "v_proj"], r=r, alpha=2 * r)
    models = serving_variants(base, lora, bottleneck=bottleneck)
    setting = f"tiny ViT, one image; LoRA r = {r} on W_q, W_v; adapters with bottleneck {bottleneck}"
    return plot_forward_cost(serving_costs(models, torch.rand(1, 1, 8, 8)), setting=setting)


FIGURES = {"deploy_forward_cost.png": forward_cost_figure}

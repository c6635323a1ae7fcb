"""Figures for the cost of fine-tuning: parameters vs r, training memory, storage, adapter latency."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from lora_lab.maths import budget
from lora_lab.maths.budget import GPT3_175B, MemoryBudget, ModelShape

DEFAULT_MODELS = (budget.SMOLLM2_135M, budget.ROBERTA_BASE, budget.GPT2_MEDIUM, budget.LLAMA2_7B,
                  budget.LLAMA2_70B, GPT3_175B)
PARTS = (("weights", "#4c72b0"), ("gradients", "#dd8452"), ("optimizer", "#c44e52"))


def plot_params_vs_r(shapes=DEFAULT_MODELS, rs=(1, 2, 4, 8, 16, 32, 64, 128),
                     targets=("q", "v")):
    """Trainable LoRA parameters against r for several models (log–log), GPT-3 r=4 marked."""
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    for shape in shapes:
        counts = [budget.lora_param_count(shape, r, targets) for r in rs]
        total = budget.format_count(budget.full_param_count(shape))
        ax.plot(rs, counts, marker="o", ms=3, label=f"{shape.name} ({total})")
    if GPT3_175B in shapes and tuple(targets) == ("q", "v") and 4 in rs:
        ax.plot(4, 18_874_368, marker="*", ms=13, color="black", zorder=5)
        ax.annotate("GPT-3, r=4: 18,874,368", (4, 18_874_368), xytext=(-8, 8),
                    textcoords="offset points", fontsize=8, ha="right", va="bottom")
    ax.set(xscale="log", yscale="log", xlabel="rank r", ylabel="trainable LoRA parameters",
           title=f"LoRA on {', '.join('W' + t for t in targets)}: parameters grow linearly in r")
    ax.set_xticks(rs, [str(r) for r in rs])
    ax.legend(fontsize=8, title="model (total parameters)", title_fontsize=8,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: it covers no line
    return fig, ax


def plot_training_memory(full: MemoryBudget, lora: MemoryBudget, title: str | None = None):
    """Stacked horizontal bars: weights, gradients and optimizer states, full vs LoRA, in GB."""
    fig, ax = plt.subplots(figsize=(7.0, 2.8))
    rows = (("LoRA", lora), ("full fine-tuning", full))  # full on top
    for y, (_, mem) in enumerate(rows):
        left = 0.0
        for part, color in PARTS:
            size = getattr(mem, part) / 1e9
            ax.barh(y, size, left=left, color=color, label=part if y == 1 else None)
            left += size
        ax.text(left, y, f"  {budget.format_bytes(mem.total)}", va="center", fontsize=9)
    ax.set_yticks(range(len(rows)), [name for name, _ in rows])
    ax.set_xlim(0, full.total / 1e9 * 1.25)
    ax.set(xlabel="GB (weights + gradients + Adam states; activations not counted)",
           title=title or "Training memory")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, frameon=False)
    return fig, ax


def plot_checkpoint_storage(shape: ModelShape = GPT3_175B, max_tasks: int = 100, r: int = 4,
                            targets=("q", "v")):
    """Disk space for n tasks: a full copy per task vs one base model plus one adapter per task."""
    n = np.arange(1, max_tasks + 1)
    per_task = [budget.checkpoint_storage(shape, int(k), r, targets) for k in n]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(n, [s["full"] / 1e9 for s in per_task], label="full fine-tuning: one model per task")
    ax.plot(n, [s["lora"] / 1e9 for s in per_task], label=f"LoRA r={r}: one base + one adapter per task")
    ax.set(yscale="log", xlabel="number of tasks", ylabel="storage (GB, log scale)",
           title=f"{shape.name}: checkpoints for many tasks (fp16)")
    for key in ("full", "lora"):
        ax.annotate(budget.format_bytes(per_task[-1][key]), (n[-1], per_task[-1][key] / 1e9),
                    xytext=(-40, 6), textcoords="offset points", fontsize=9)
    ax.legend(fontsize=8, loc="center right")
    return fig, ax


def plot_adapter_latency():
    """The paper's Table 1 as bars: extra latency of Adapter-L and Adapter-H over no adapter."""
    overhead = budget.latency_overhead()
    labels = [f"batch {b}, seq {s}\n|Θ| = {p}" for b, s, p in budget.TABLE1_SETTINGS]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for k, (name, values) in enumerate(overhead.items()):
        bars = ax.bar(x + (k - 0.5) * 0.38, values, width=0.38, label=name)
        ax.bar_label(bars, fmt="+%.1f%%", fontsize=8)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set(ylabel="extra latency vs no adapter (%)",
           title="Adapters add latency; merged LoRA adds none (paper, Table 1, GPT-2 medium)")
    ax.title.set_fontsize(10)
    ax.legend(fontsize=8)
    return fig, ax


def _gpt3_memory():
    return plot_training_memory(budget.training_memory(GPT3_175B, "full"),
                                budget.training_memory(GPT3_175B, "lora", 4, ("q", "v")),
                                "GPT-3 175B, LoRA r=4 on Wq, Wv (fp16, Adam)")


FIGURES = {
    "budget_params_vs_r.png": plot_params_vs_r,
    "budget_training_memory_gpt3.png": _gpt3_memory,
    "budget_checkpoints_gpt3.png": plot_checkpoint_storage,
    "adapter_latency_table1.png": plot_adapter_latency,
}

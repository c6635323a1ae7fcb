"""Figure of notebook 09: the capstone's training curve on a real LLM (not in `make figures`: it
needs a training run, which the notebook does)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np


def plot_lm_training(losses: Sequence[float], val_before: float, val_after: float,
                     peft_losses: Sequence[float] | None = None):
    """Training loss per step (and a running mean), the validation loss before and after, and,
    optionally, PEFT's losses on the same batches. Returns (fig, ax)."""
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"losses must be a non-empty 1-D sequence, got shape {losses.shape}")
    steps = np.arange(1, losses.size + 1)
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.plot(steps, losses, color="C0", alpha=0.35, label="training loss (one batch)")
    window = min(8, losses.size)
    running = np.convolve(losses, np.ones(window) / window, mode="valid")
    ax.plot(steps[window - 1:], running, color="C0", label=f"running mean of {window}")
    if peft_losses is not None:
        peft = np.asarray(peft_losses, dtype=float)
        ax.plot(np.arange(1, peft.size + 1), peft, "x", color="C3", label="PEFT, same batches")
    ax.axhline(val_before, color="0.5", linestyle="--", label=f"validation before ({val_before:.2f})")
    ax.axhline(val_after, color="C2", linestyle="--", label=f"validation after ({val_after:.2f})")
    ax.set(xlabel="step", ylabel="next-token loss (nats)", title="LoRA on SmolLM2-135M, Hamlet")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, ax

"""Figures of notebook 04: attention weights per head, and LoRA's ΔW on a fused QKV weight."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from lora_lab.lora.attention import MultiHeadSelfAttention, fused_lora_delta


def _array(t) -> np.ndarray:
    return t.detach().cpu().double().numpy() if hasattr(t, "detach") else np.asarray(t, dtype=np.float64)


def plot_attention_heads(weights, title: str = "attention weights"):
    """One heatmap per head (rows: the attending token, columns: the token attended to).

    Shapes: weights (n_heads, T, T), e.g. one batch item of `attention_weights`.
    """
    w = _array(weights)
    if w.ndim != 3 or w.shape[1] != w.shape[2]:
        raise ValueError(f"weights must have shape (n_heads, T, T), got {w.shape}")
    fig, axes = plt.subplots(1, w.shape[0], figsize=(2.6 * w.shape[0], 2.8), squeeze=False)
    for h, ax in enumerate(axes[0]):
        ax.imshow(w[h], cmap="viridis", vmin=0, vmax=1)
        ax.set(title=f"head {h}", xlabel="key token", ylabel="query token" if h == 0 else None)
    fig.suptitle(title)
    return fig, axes[0]


def plot_fused_delta(delta, parts: Sequence[str] = ("W_q", "W_k", "W_v"), ax=None,
                     title: str = "ΔW on a fused QKV weight"):
    """|ΔW| as a heatmap, with the row bands of each stacked matrix marked and named.

    Shapes: delta (len(parts)·d, d_in).
    """
    D = np.abs(_array(delta))
    if D.ndim != 2 or D.shape[0] % len(parts):
        raise ValueError(f"delta must be 2-D with rows divisible by len(parts)={len(parts)}, got {D.shape}")
    fig, ax = plt.subplots(figsize=(3.4, 5)) if ax is None else (ax.figure, ax)
    image = ax.imshow(D, cmap="magma", aspect="auto")
    d = D.shape[0] // len(parts)
    for i, name in enumerate(parts):
        if i:
            ax.axhline(i * d - 0.5, color="white", linewidth=1)
        ax.text(D.shape[1] - 0.5, (i + 0.5) * d - 0.5, f" {name}", va="center", ha="left")
    ax.set(title=title, xlabel="input dimension (d_in)", ylabel="output row of the fused weight")
    fig.colorbar(image, ax=ax, label="|ΔW|", pad=0.18)
    return fig, ax


def fused_qkv_lora():
    """LoRA on W_q and W_v of a fused (3·16, 16) weight, as loralib's MergedLinear lays it out."""
    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(2 * 2, 16, generator=g), torch.randn(2 * 16, 2, generator=g)  # r = 2, two parts
    delta = fused_lora_delta(A, B, enable=(True, False, True))  # (48, 16): the W_k band stays zero
    return plot_fused_delta(delta, title="LoRA on W_q, W_v of in_proj_weight")


def causal_heads():
    """The attention weights of a fresh 4-head causal self-attention on 8 random tokens."""
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(16, 4, causal=True)
    with torch.no_grad():
        w = attn.attention_weights(torch.randn(1, 8, 16))[0]  # (4, 8, 8)
    return plot_attention_heads(w, title="causal self-attention: each row sums to 1")


FIGURES = {"attention_heads.png": causal_heads, "fused_qkv_lora.png": fused_qkv_lora}

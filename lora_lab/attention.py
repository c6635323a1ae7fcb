"""Multi-head self-attention and a small pre-LayerNorm Transformer block.

Every projection is its own `nn.Linear` named as in PEFT-style models (`q_proj`, `k_proj`,
`v_proj`, `o_proj`, `fc1`, `fc2`), so LoRA reaches each W0 by name.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lora_lab._checks import check_int, check_probability


class MultiHeadSelfAttention(nn.Module):
    """softmax(Q Kᵀ / √d_head) V over `n_heads` heads, then the output projection W_o.

    Shapes: x (B, T, d_model) -> (B, T, d_model); each projection weight is (d_model, d_model).
    """

    def __init__(self, d_model: int, n_heads: int, causal: bool = False, bias: bool = True):
        super().__init__()
        d_model = check_int("d_model", d_model, low=1)
        n_heads = check_int("n_heads", n_heads, low=1)
        if d_model % n_heads:
            raise ValueError(f"d_model must be divisible by n_heads={n_heads}, got d_model={d_model}")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.causal = bool(causal)
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.o_proj = nn.Linear(d_model, d_model, bias=bias)

    def _split(self, t: Tensor) -> Tensor:
        B, T, _ = t.shape
        return t.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, nh, T, hs)

    def attention_weights(self, x: Tensor) -> Tensor:
        """softmax(Q Kᵀ/√d_head).  Shapes: x (B, T, d_model) -> (B, nh, T, T)."""
        q, k = self._split(self.q_proj(x)), self._split(self.k_proj(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)  # (B, nh, T, T)
        if self.causal:
            T = x.shape[1]
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
        return scores.softmax(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (batch, tokens, d_model={self.d_model}), "
                             f"got {tuple(x.shape)}")
        B, T, _ = x.shape
        v = self._split(self.v_proj(x))  # (B, nh, T, hs)
        y = self.attention_weights(x) @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, self.d_model)  # (B, T, d_model)
        return self.o_proj(y)


class MLP(nn.Module):
    """fc2(GELU(fc1(x))).  Shapes: x (..., d_model) -> (..., d_model); fc1 (d_ff, d_model)."""

    def __init__(self, d_model: int, d_ff: int, bias: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(d_model, check_int("d_ff", d_ff, low=1), bias=bias)
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block: x + attn(ln1(x)), then + mlp(ln2(x)).  Shapes: (B, T, d) -> (B, T, d)."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int | None = None, causal: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, n_heads, causal=causal)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, d_ff or 4 * d_model)
        self.drop = nn.Dropout(check_probability("dropout", dropout))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.mlp(self.ln2(x)))

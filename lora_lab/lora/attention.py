"""Multi-head self-attention and a small pre-LayerNorm Transformer block.

Every projection is its own `nn.Linear` named as in PEFT-style models (`q_proj`, `k_proj`,
`v_proj`, `o_proj`, `fc1`, `fc2`), so LoRA reaches each W0 by name. `torch.nn.MultiheadAttention`
instead stores W_q, W_k, W_v stacked in one fused `in_proj_weight`; `split_qkv` and
`from_torch_mha` take it apart so that each matrix can be adapted on its own.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lora_lab._checks import check_int, check_probability


def _check_heads(d_model, n_heads) -> tuple[int, int]:
    d_model = check_int("d_model", d_model, low=1)
    n_heads = check_int("n_heads", n_heads, low=1)
    if d_model % n_heads:
        raise ValueError(f"d_model must be divisible by n_heads={n_heads}, got d_model={d_model} "
                         f"(d_head = d_model / n_heads must be a whole number)")
    return d_model, n_heads


class MultiHeadSelfAttention(nn.Module):
    """softmax(Q Kᵀ / √d_head) V over `n_heads` heads, then the output projection W_o.

    Q = x W_qᵀ (nn.Linear orientation: each weight is (d_out, d_in) = (d_model, d_model)).
    With `causal=True`, token t attends only to tokens ≤ t.
    Shapes: x (B, T, d_model) -> (B, T, d_model).
    """

    def __init__(self, d_model: int, n_heads: int, causal: bool = False, bias: bool = True):
        super().__init__()
        d_model, n_heads = _check_heads(d_model, n_heads)
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.causal = bool(causal)
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.o_proj = nn.Linear(d_model, d_model, bias=bias)

    def _check_x(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != self.d_model:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (batch, tokens, d_model={self.d_model}), got {got}")

    def _split(self, t: Tensor) -> Tensor:
        B, T, _ = t.shape
        return t.reshape(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, nh, T, hs)

    def attention_weights(self, x: Tensor) -> Tensor:
        """softmax(Q Kᵀ/√d_head), each row sums to 1.  Shapes: x (B, T, d_model) -> (B, nh, T, T)."""
        self._check_x(x)
        q, k = self._split(self.q_proj(x)), self._split(self.k_proj(x))  # (B, nh, T, hs)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)  # (B, nh, T, T)
        if self.causal:
            T = x.shape[1]
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        return scores.softmax(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        self._check_x(x)
        B, T, _ = x.shape
        v = self._split(self.v_proj(x))  # (B, nh, T, hs)
        y = self.attention_weights(x) @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, self.d_model)  # (B, T, d_model): heads side by side
        return self.o_proj(y)


def split_qkv(in_proj_weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """W_q, W_k, W_v from a fused weight stacked along the output (row) dimension, as in
    `nn.MultiheadAttention.in_proj_weight`.  Shapes: (3·d, d_in) -> three (d, d_in) views."""
    if not isinstance(in_proj_weight, Tensor):
        raise TypeError(f"in_proj_weight must be a torch.Tensor, got {type(in_proj_weight).__name__}")
    if in_proj_weight.dim() not in (1, 2):
        raise ValueError(f"in_proj_weight must be a 2-D weight (3·d, d_in) or a 1-D bias (3·d,), "
                         f"got shape {tuple(in_proj_weight.shape)}")
    if in_proj_weight.shape[0] % 3:
        raise ValueError(f"in_proj_weight's first dimension must be 3·d (q, k, v stacked), "
                         f"got shape {tuple(in_proj_weight.shape)}")
    q, k, v = in_proj_weight.chunk(3, dim=0)  # each (d, d_in): rows 0..d-1 are W_q, then W_k, W_v
    return q, k, v


def fused_lora_delta(A: Tensor, B: Tensor, enable=(True, False, True), scaling: float = 1.0) -> Tensor:
    """ΔW for a fused QKV weight, as loralib's `MergedLinear` builds it: one (B_i, A_i) pair per
    enabled part, zero rows for the others (default: W_q and W_v adapted, W_k not).
    Shapes: A (r·k, d_in), B (d·k, r) with k = sum(enable) -> ΔW (d·len(enable), d_in).
    """
    enable = [bool(e) for e in enable]
    k = sum(enable)
    if k == 0 or A.dim() != 2 or B.dim() != 2 or A.shape[0] % k or B.shape[0] % k:
        raise ValueError(f"A (r·k, d_in) and B (d·k, r) must stack k = sum(enable) = {k} ≥ 1 pairs, "
                         f"got A {tuple(A.shape)}, B {tuple(B.shape)}")
    r, d = A.shape[0] // k, B.shape[0] // k
    if B.shape[1] != r:
        raise ValueError(f"B must have r = {r} columns (A has {A.shape[0]} rows for {k} parts), "
                         f"got B {tuple(B.shape)}")
    pairs = iter(zip(B.split(d), A.split(r), strict=True))  # (d, r) and (r, d_in) per enabled part
    blocks = []
    for on in enable:
        if on:
            b, a = next(pairs)
            blocks.append(b @ a)  # (d, d_in)
        else:
            blocks.append(A.new_zeros(d, A.shape[1]))  # this part keeps its W0
    return torch.cat(blocks) * scaling  # (d·len(enable), d_in)


def from_torch_mha(mha: nn.MultiheadAttention, causal: bool = False) -> MultiHeadSelfAttention:
    """A `MultiHeadSelfAttention` holding copies of `mha`'s weights, with W_q, W_k, W_v unfused.

    Self-attention only (query = key = value), no bias_k/bias_v, no add_zero_attn. Attention
    dropout is not carried over, so outputs agree in eval mode.
    Shapes: in_proj_weight (3·d, d) -> q_proj, k_proj, v_proj weights (d, d) each.
    """
    if not isinstance(mha, nn.MultiheadAttention):
        raise TypeError(f"mha must be an nn.MultiheadAttention, got {type(mha).__name__}")
    if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
        raise ValueError("mha must use one fused in_proj_weight (kdim = vdim = embed_dim), "
                         "without add_bias_kv or add_zero_attn")
    out = MultiHeadSelfAttention(mha.embed_dim, mha.num_heads, causal=causal,
                                 bias=mha.in_proj_bias is not None)
    out = out.to(device=mha.in_proj_weight.device, dtype=mha.in_proj_weight.dtype)
    projections = (out.q_proj, out.k_proj, out.v_proj)
    with torch.no_grad():
        for proj, w in zip(projections, split_qkv(mha.in_proj_weight), strict=True):
            proj.weight.copy_(w)
        out.o_proj.weight.copy_(mha.out_proj.weight)
        if mha.in_proj_bias is not None:
            for proj, b in zip(projections, split_qkv(mha.in_proj_bias), strict=True):
                proj.bias.copy_(b)
            out.o_proj.bias.copy_(mha.out_proj.bias)
    return out


class MLP(nn.Module):
    """fc2(GELU(fc1(x))).  Shapes: x (..., d_model) -> (..., d_model); fc1.weight (d_ff, d_model)."""

    def __init__(self, d_model: int, d_ff: int, bias: bool = True):
        super().__init__()
        d_model = check_int("d_model", d_model, low=1)
        d_ff = check_int("d_ff", d_ff, low=1)
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block: x + attn(ln1(x)), then + mlp(ln2(x)); d_ff defaults to 4·d_model.

    Shapes: x (B, T, d_model) -> (B, T, d_model).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int | None = None, causal: bool = False,
                 dropout: float = 0.0, bias: bool = True):
        super().__init__()
        d_model, n_heads = _check_heads(d_model, n_heads)
        d_ff = 4 * d_model if d_ff is None else check_int("d_ff", d_ff, low=1)
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, n_heads, causal=causal, bias=bias)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, d_ff, bias=bias)
        self.drop = nn.Dropout(check_probability("dropout", dropout))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.mlp(self.ln2(x)))

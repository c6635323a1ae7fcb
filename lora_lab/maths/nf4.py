"""4-bit NormalFloat (NF4), QLoRA's storage type for the frozen base (Dettmers et al. 2023, §3).

A weight is cut into blocks of `block_size` numbers (64 in QLoRA); each block is divided by its
largest |value| (its "absmax", kept in 32 bits) and every number is rounded to the nearest of 16
levels. NF4's levels are quantiles of a standard normal, so each level covers about the same
share of normally distributed weights; exactly one level is 0. Here the 4-bit codes are kept one
per uint8 for clarity (bitsandbytes packs two per byte); the levels and the rounding are the same.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lora_lab._checks import check_int

#: QLoRA's offset: the outermost quantile, ½(1/30 + 1/32) in from each end, so ±1 stay finite.
NF4_OFFSET = 1 - 0.5 * (1 / 30 + 1 / 32)


def nf4_levels() -> Tensor:
    """The 16 NF4 levels in [-1, 1], sorted: 8 positive and 7 negative normal quantiles, and 0.

    Shape: (16,).
    """
    positive = torch.special.ndtri(torch.linspace(NF4_OFFSET, 0.5, 9, dtype=torch.float64)[:-1])  # (8,)
    negative = -torch.special.ndtri(torch.linspace(NF4_OFFSET, 0.5, 8, dtype=torch.float64)[:-1])  # (7,)
    levels = torch.cat([positive, negative, torch.zeros(1, dtype=torch.float64)]).sort().values
    return (levels / levels.max()).float()


def int4_levels() -> Tensor:
    """A plain symmetric 4-bit grid for comparison: k/7 for k = -7..7 (15 evenly spaced levels)."""
    return torch.arange(-7, 8, dtype=torch.float32) / 7


def _blocks(w: Tensor, block_size: int) -> tuple[Tensor, int]:
    if not isinstance(w, Tensor) or not w.is_floating_point():
        raise TypeError(f"w must be a floating-point torch.Tensor, got {type(w).__name__}"
                        + (f" of {w.dtype}" if isinstance(w, Tensor) else ""))
    if w.numel() == 0:
        raise ValueError(f"w must not be empty, got shape {tuple(w.shape)}")
    block_size = check_int("block_size", block_size, low=1)
    flat = w.detach().reshape(-1).float()  # (n,)
    pad = -flat.numel() % block_size
    return torch.nn.functional.pad(flat, (0, pad)).reshape(-1, block_size), pad  # (n_blocks, block_size)


def quantize(w: Tensor, block_size: int = 64, levels: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Blockwise absmax quantisation to the nearest of `levels` (default NF4).

    Returns (codes, absmax): codes (n,) uint8 in [0, 16), absmax (n_blocks,) float32, n = w.numel().
    """
    levels = nf4_levels() if levels is None else levels
    blocks, pad = _blocks(w, block_size)
    absmax = blocks.abs().amax(dim=1).clamp(min=1e-38)  # (n_blocks,); an all-zero block stays 0
    scaled = (blocks / absmax[:, None]).clamp(-1, 1).reshape(-1)  # (n_blocks * block_size,)
    midpoints = (levels[1:] + levels[:-1]) / 2  # the nearest level is the bucket between midpoints
    codes = torch.bucketize(scaled, midpoints).to(torch.uint8)
    return codes[:codes.numel() - pad], absmax


def dequantize(codes: Tensor, absmax: Tensor, shape, block_size: int = 64,
               levels: Tensor | None = None) -> Tensor:
    """level[code] · absmax of the code's block, reshaped to `shape`.  Shapes: codes (n,) -> shape."""
    levels = nf4_levels() if levels is None else levels
    block_size = check_int("block_size", block_size, low=1)
    n = math.prod(shape)
    if codes.numel() != n or absmax.numel() != -(-n // block_size):
        raise ValueError(f"codes ({codes.numel()}) and absmax ({absmax.numel()}) do not fit shape "
                         f"{tuple(shape)} with block_size={block_size}")
    values = levels[codes.long()] * absmax.repeat_interleave(block_size)[:n]  # (n,)
    return values.reshape(shape)


def nf4_roundtrip(w: Tensor, block_size: int = 64, levels: Tensor | None = None) -> Tensor:
    """What a 4-bit base computes with: w quantised and dequantised, in w's dtype.  Shape: w's."""
    codes, absmax = quantize(w, block_size, levels)
    return dequantize(codes, absmax, w.shape, block_size, levels).to(w.dtype)


def bits_per_param(block_size: int = 64, double_quant: bool = False, dq_block_size: int = 256) -> float:
    """Storage per weight: 4 bits plus its share of the block's absmax.

    One fp32 absmax per block: 4 + 32/64 = 4.5 bits. QLoRA's double quantisation stores the
    absmaxes in 8 bits with one fp32 constant per 256 of them: 4 + 8/64 + 32/(64·256) ≈ 4.127.
    """
    block_size = check_int("block_size", block_size, low=1)
    if not double_quant:
        return 4 + 32 / block_size
    return 4 + 8 / block_size + 32 / (block_size * check_int("dq_block_size", dq_block_size, low=1))


def roundtrip_error(w: Tensor, block_size: int = 64, levels: Tensor | None = None) -> float:
    """Root-mean-square error of `nf4_roundtrip` relative to w's RMS (0 = exact)."""
    err = nf4_roundtrip(w, block_size, levels).float() - w.float()
    return float(err.pow(2).mean().sqrt() / w.float().pow(2).mean().sqrt())

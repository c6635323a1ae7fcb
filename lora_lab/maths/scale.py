"""Arithmetic of training at scale: gradient traffic (DDP, FSDP/ZeRO-3), sharded memory, QLoRA.

Sizes are in bytes, decimal units as in `lora_lab.maths.budget`. `n_frozen` and `n_trainable` count
parameters; "per rank" means per process (one GPU each). The communication volumes follow the
ZeRO paper (Rajbhandari et al. 2020, arXiv 1910.02054, §7): a ring all-reduce sends 2(N−1)/N of
the payload per rank; an all-gather or a reduce-scatter sends (N−1)/N of it.
"""

from __future__ import annotations

import math
import numbers

from lora_lab._checks import check_choice, check_int
from lora_lab.maths.budget import bytes_per, check_shape, lora_param_count, param_breakdown
from lora_lab.maths.shapes import ModelShape

#: LLaMA 65B (Touvron et al. 2023, Table 2: 80 layers, d_model 8192, 64 heads; d_ff 22016 and the
#: untied 32,000-token vocabulary from its Hugging Face config): the model QLoRA fine-tunes on one GPU.
LLAMA_65B = ModelShape("LLaMA 65B", 80, 8192, 64, 22016, vocab_size=32000, gated_mlp=True, bias=False,
                       norm="rmsnorm", tied_embeddings=False,
                       source="Touvron et al. 2023 (LLaMA), Table 2; Hugging Face config llama-65b")
#: QLoRA (Dettmers et al. 2023, §3): NF4 weights, 4 bits each, in blocks of 64 with one absmax
#: constant per block; double quantization stores those constants in 8 bits (plus one fp32 per 256).
NF4_BITS = 4.0
DOUBLE_QUANT_BITS = 8 / 64 + 32 / (64 * 256)  # 0.127 bits per parameter (0.5 without it)
STRATEGIES = ("ddp", "fsdp")
ALL_LINEAR = ("q", "k", "v", "o", "gate", "up", "down")  # QLoRA's Guanaco adapters: r=64 on all seven


def grad_bytes_per_step(n_trainable: int, dtype="fp32") -> int:
    """Bytes DDP all-reduces per step: every trainable parameter's gradient, once."""
    return round(check_int("n_trainable", n_trainable, low=0) * bytes_per(dtype, "dtype"))


def ring_allreduce_bytes(payload_bytes: float, world_size: int) -> float:
    """Bytes each rank sends in a ring all-reduce of `payload_bytes`: 2(N−1)/N × payload
    (a reduce-scatter, then an all-gather, each N−1 messages of payload/N)."""
    n = check_int("world_size", world_size, low=1)
    return 2 * (n - 1) / n * _nonnegative("payload_bytes", payload_bytes)


def traffic_per_rank(n_frozen: int, n_trainable: int, world_size: int, strategy: str = "ddp",
                     dtype="bf16") -> float:
    """Bytes each rank sends per step. DDP: all-reduce the trainable gradients. FSDP (ZeRO-3):
    all-gather every parameter, frozen ones too, for the forward and again for the backward,
    then reduce-scatter the trainable gradients (3Ψ for full fine-tuning: ZeRO §7, "1.5×" DDP's 2Ψ)."""
    n_frozen, n_trainable = _counts(n_frozen, n_trainable)
    n, width = check_int("world_size", world_size, low=1), bytes_per(dtype, "dtype")
    share = (n - 1) / n
    if check_choice("strategy", strategy, STRATEGIES) == "ddp":
        return 2 * share * n_trainable * width
    return (2 * share * (n_frozen + n_trainable) + share * n_trainable) * width


def memory_per_rank(n_frozen: int, n_trainable: int, world_size: int, stage: int = 0,
                    optimizer_bytes: int = 12) -> dict:
    """Training memory per rank with ZeRO stage 0 (DDP), 1 (shard optimizer states), 2 (and
    gradients) or 3 (and weights, = FSDP): bf16 weights and gradients, `optimizer_bytes` per
    trained parameter (12: fp32 master copy + Adam m, v: ZeRO's K, Figure 1). No activations."""
    n_frozen, n_trainable = _counts(n_frozen, n_trainable)
    n, stage = check_int("world_size", world_size, low=1), check_int("stage", stage, low=0, high=3)
    opt = check_int("optimizer_bytes", optimizer_bytes, low=0)
    weights = 2 * (n_frozen + n_trainable) / (n if stage >= 3 else 1)
    grads = 2 * n_trainable / (n if stage >= 2 else 1)
    states = opt * n_trainable / (n if stage >= 1 else 1)
    return {"weights": weights, "gradients": grads, "optimizer": states, "total": weights + grads + states}


def qlora_memory(shape: ModelShape = LLAMA_65B, r: int = 64, targets=ALL_LINEAR,
                 double_quant: bool = True) -> dict:
    """QLoRA's training memory (activations not counted): the blocks' linear weights in NF4 with
    their constants, everything else (embeddings, norms, LM head) in bf16, and LoRA adapters
    trained in bf16 with fp32 Adam states (2 + 2 + 8 bytes per adapter parameter)."""
    shape = check_shape(shape)
    parts = param_breakdown(shape)
    linear = parts["attention"] + parts["mlp"]  # biases would be here too; LLaMA has none
    constant_bits = DOUBLE_QUANT_BITS if double_quant else 32 / 64
    adapters = lora_param_count(shape, r, targets)
    out = {"nf4 weights": linear * NF4_BITS / 8, "quantization constants": linear * constant_bits / 8,
           "bf16 rest": 2 * (sum(parts.values()) - linear), "adapters + grads + Adam": 12 * adapters}
    return {**out, "total": sum(out.values()), "adapter parameters": adapters}


def _counts(n_frozen, n_trainable) -> tuple[int, int]:
    return check_int("n_frozen", n_frozen, low=0), check_int("n_trainable", n_trainable, low=0)


def _nonnegative(name: str, value) -> float:
    """A finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number >= 0, got {value!r} ({type(value).__name__})")
    if not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)

"""Parameter, checkpoint and training-memory arithmetic for full fine-tuning vs LoRA.

A `ModelShape` holds what the counts need; presets live in `lora_lab.maths.shapes` and are
re-exported here (`GPT3_175B`, `PRESETS`, …). Matrix shapes follow `nn.Linear`: (d_out, d_in).
A LoRA pair on one matrix has r·(d_out + d_in) parameters: B (d_out, r) plus A (r, d_in).
Sizes are in bytes with decimal units (1 GB = 10⁹ B), as the paper's "350GB" is 175B × 2 bytes.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from lora_lab._checks import check_int
from lora_lab.maths.shapes import (  # noqa: F401  (re-exported presets)
    GPT2_LARGE,
    GPT2_MEDIUM,
    GPT3_6_7B,
    GPT3_175B,
    GPT3_SMALL,
    LLAMA2_7B,
    LLAMA2_13B,
    LLAMA2_70B,
    PRESETS,
    ROBERTA_BASE,
    ROBERTA_LARGE,
    SMOLLM2_135M,
    ModelShape,
)

ATTENTION_TARGETS = ("q", "k", "v", "o")
MLP_TARGETS = ("gate", "up", "down")
TARGETS = ATTENTION_TARGETS + MLP_TARGETS
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}

#: Bytes per parameter in training: the stored weight, its gradient, and the optimizer's share
#: (Adam's two moments m and v, plus an fp32 master copy in mixed precision).
PRECISIONS = {
    "fp16": {"weight": 2, "grad": 2, "optimizer": 4,
             "text": "weights, gradients and both Adam moments (m, v) in fp16: 2+2+4 = 8 bytes "
                     "per trained parameter; frozen weights 2 bytes"},
    "mixed": {"weight": 2, "grad": 2, "optimizer": 12,
              "text": "mixed precision (ZeRO's accounting): fp16 weights and gradients, fp32 master "
                      "copy and fp32 Adam m, v: 2+2+4+4+4 = 16 bytes per trained parameter; "
                      "frozen weights 2 bytes"},
    "fp32": {"weight": 4, "grad": 4, "optimizer": 8,
             "text": "everything in fp32: 4+4+8 = 16 bytes per trained parameter; frozen weights "
                     "4 bytes"},
}
NOT_COUNTED = "not counted: activations (they grow with batch × sequence length), buffers, workspace"


def check_shape(shape) -> ModelShape:
    """`shape` must be a ModelShape (or a preset's name)."""
    if isinstance(shape, str) and shape in PRESETS:
        return PRESETS[shape]
    if not isinstance(shape, ModelShape):
        raise TypeError(f"shape must be a ModelShape or one of {sorted(PRESETS)}, got {shape!r}")
    return shape


def available_targets(shape: ModelShape) -> tuple[str, ...]:
    """The matrices a layer of `shape` has: q, k, v, o, then gate (SwiGLU only), up, down."""
    return TARGETS if check_shape(shape).gated_mlp else tuple(t for t in TARGETS if t != "gate")


def check_targets(shape: ModelShape, targets) -> tuple[str, ...]:
    """Targets as a tuple of names from TARGETS; "gate" only for a gated (SwiGLU) MLP."""
    if isinstance(targets, str):
        targets = (targets,)
    if not isinstance(targets, (tuple, list, set, frozenset)):
        raise TypeError(f"targets must be a tuple of names from {TARGETS}, got {targets!r}")
    targets = tuple(targets)
    if not targets:
        raise ValueError(f"targets must name at least one matrix from {TARGETS}, got ()")
    valid = available_targets(shape)
    unknown = [t for t in targets if t not in valid]
    if unknown:
        raise ValueError(f"targets must be names from {valid} for {shape.name}, got {unknown!r}")
    if len(set(targets)) != len(targets):
        raise ValueError(f"targets must not repeat a name, got {targets!r}")
    return targets


def matrix_shapes(shape: ModelShape, targets=None) -> dict[str, tuple[int, int]]:
    """Per layer: target name -> (d_out, d_in) of its weight matrix W0 (targets=None: all)."""
    shape = check_shape(shape)
    targets = available_targets(shape) if targets is None else targets
    d, q, kv, ff = shape.d_model, shape.q_dim, shape.kv_dim, shape.d_ff
    all_shapes = {"q": (q, d), "k": (kv, d), "v": (kv, d), "o": (d, q),
                  "gate": (ff, d), "up": (ff, d), "down": (d, ff)}
    return {t: all_shapes[t] for t in check_targets(shape, targets)}


def check_rank(shape: ModelShape, r, targets) -> int:
    """r: an integer in [1, the smallest dimension of the targeted matrices]."""
    top = min(min(s) for s in matrix_shapes(shape, targets).values())
    return check_int("r", r, low=1, high=top)


def lora_param_count(shape: ModelShape, r: int, targets=("q", "v")) -> int:
    """Trainable LoRA parameters: n_layers · Σ_targets r·(d_out + d_in)."""
    shape = check_shape(shape)
    r = check_rank(shape, r, targets)
    per_layer = sum(r * (d_out + d_in) for d_out, d_in in matrix_shapes(shape, targets).values())
    return shape.n_layers * per_layer


def full_param_count(shape: ModelShape, targets=None) -> int:
    """targets=None: every parameter of the model (what full fine-tuning trains);
    a tuple: only those matrices' weights, n_layers · Σ d_out·d_in (biases not included)."""
    shape = check_shape(shape)
    if targets is None:
        return sum(param_breakdown(shape).values())
    return shape.n_layers * sum(o * i for o, i in matrix_shapes(shape, targets).values())


def param_breakdown(shape: ModelShape) -> dict[str, int]:
    """Where a model's parameters are: embeddings, attention, MLP, norms, LM head (untied only)."""
    shape = check_shape(shape)
    d, L = shape.d_model, shape.n_layers
    mlp_targets = MLP_TARGETS if shape.gated_mlp else ("up", "down")
    n_mlp = len(mlp_targets)
    attn = full_param_count(shape, ATTENTION_TARGETS) // L
    mlp = full_param_count(shape, mlp_targets) // L
    if shape.bias:  # one bias per output feature
        attn += shape.q_dim + 2 * shape.kv_dim + d
        mlp += (n_mlp - 1) * shape.d_ff + d
    per_norm = 2 * d if shape.norm == "layernorm" else d
    return {
        "embeddings": (shape.vocab_size + shape.n_positions + shape.n_token_types) * d,
        "attention": L * attn,
        "mlp": L * mlp,
        "norms": (2 * L + 1) * per_norm,  # two per layer, plus the final (or embedding) norm
        "lm_head": 0 if shape.tied_embeddings else shape.vocab_size * d,
    }


def bytes_per(value, name: str = "bytes_per_param") -> float:
    """Bytes per parameter from a number (> 0) or a dtype name in DTYPE_BYTES."""
    if isinstance(value, str):
        if value not in DTYPE_BYTES:
            raise ValueError(f"{name} must be a number > 0 or one of {sorted(DTYPE_BYTES)}, got {value!r}")
        return float(DTYPE_BYTES[value])
    valid = f"a number > 0 or one of {sorted(DTYPE_BYTES)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {valid}, got {value!r} ({type(value).__name__})")
    if not 0 < value < float("inf"):
        raise ValueError(f"{name} must be {valid}, got {value!r}")
    return float(value)


def adapter_bytes(n_params: int, bytes_per_param=2) -> int:
    """Size of `n_params` stored at `bytes_per_param` (2: fp16/bf16, 4: fp32, 1: int8)."""
    n_params = check_int("n_params", n_params, low=0)
    return round(n_params * bytes_per(bytes_per_param))


@dataclass(frozen=True)
class MemoryBudget:
    """Training memory in bytes, split the way the bars show it, with the assumptions as text."""

    method: str
    trainable: int
    weights: int
    gradients: int
    optimizer: int
    assumptions: str

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer


def training_memory(shape: ModelShape, method: str = "full", r: int = 4, targets=("q", "v"),
                    precision: str = "fp16") -> MemoryBudget:
    """Weights + gradients + Adam states for full fine-tuning or LoRA (activations not counted)."""
    shape = check_shape(shape)
    if method not in ("full", "lora"):
        raise ValueError(f"method must be 'full' or 'lora', got {method!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    p, total = PRECISIONS[precision], full_param_count(shape)
    trainable = total if method == "full" else lora_param_count(shape, r, targets)
    stored = total if method == "full" else total + trainable
    names = "all parameters" if method == "full" else ", ".join(check_targets(shape, targets))
    what = names if method == "full" else f"LoRA r={r} on {names}"
    text = f"{shape.name}, {method} fine-tuning ({what}), Adam; {p['text']}; {NOT_COUNTED}."
    return MemoryBudget(method, trainable, stored * p["weight"], trainable * p["grad"],
                        trainable * p["optimizer"], text)


def checkpoint_storage(shape: ModelShape, n_tasks: int, r: int = 4, targets=("q", "v"),
                       bytes_per_param=2) -> dict[str, int]:
    """Bytes on disk for `n_tasks` tasks: one full copy per task vs one base + one adapter per task."""
    shape = check_shape(shape)
    n_tasks = check_int("n_tasks", n_tasks, low=1)
    model = adapter_bytes(full_param_count(shape), bytes_per_param)
    adapter = adapter_bytes(lora_param_count(shape, r, targets), bytes_per_param)
    return {"full": n_tasks * model, "lora": model + n_tasks * adapter, "adapter": adapter}


def budget_summary(shape: ModelShape, r: int, targets=("q", "v"), precision: str = "fp16") -> dict:
    """Everything the budget sliders show: counts, share, adapter size, both memory budgets."""
    shape = check_shape(shape)
    trainable, total = lora_param_count(shape, r, targets), full_param_count(shape)
    return {"model": shape.name, "r": r, "targets": check_targets(shape, targets),
            "trainable": trainable, "total": total, "percent": 100.0 * trainable / total,
            "adapter_bytes": adapter_bytes(trainable, 2),
            "full": training_memory(shape, "full", precision=precision),
            "lora": training_memory(shape, "lora", r, targets, precision)}


def format_bytes(n: float) -> str:
    """A byte count in decimal units: 37748736 -> '37.7 MB'."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def format_count(n: float) -> str:
    """A parameter count in short form: 18874368 -> '18.87M'."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{int(n)}"


#: The paper's Table 1: GPT-2 medium, one forward pass, ms (NVIDIA Quadro RTX8000, averaged
#: over 100 trials). Columns: (batch size, sequence length, adapter parameters |Θ|).
TABLE1_SETTINGS = ((32, 512, "0.5M"), (16, 256, "11M"), (1, 128, "11M"))
TABLE1_LATENCY_MS = {
    "fine-tune / LoRA": (1449.4, 338.0, 19.8),
    "Adapter-L": (1482.0, 354.8, 23.9),
    "Adapter-H": (1492.2, 366.3, 25.8),
}
#: The overheads the paper prints next to the adapters' times, in %.
TABLE1_PRINTED_OVERHEAD = {"Adapter-L": (2.2, 5.0, 20.7), "Adapter-H": (3.0, 8.4, 30.3)}


def latency_overhead(table: dict = TABLE1_LATENCY_MS, base: str = "fine-tune / LoRA") -> dict:
    """Extra latency of each row over `base`, in % per column: 100 · (t / t_base − 1)."""
    if base not in table:
        raise ValueError(f"base must be one of {sorted(table)}, got {base!r}")
    ref = table[base]
    return {name: tuple(100.0 * (t / t0 - 1.0) for t, t0 in zip(row, ref, strict=True))
            for name, row in table.items() if name != base}

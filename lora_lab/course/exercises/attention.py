"""Checkers for `04_lora_attention`: heads, LoRA's parameter count, target names, fused QKV."""

from __future__ import annotations

import torch

from lora_lab.course.exercises import Case, CheckResult, Mistake, run_cases
from lora_lab.course.i18n import t


def _randn(seed: int, *shape) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --- splitting d_model into heads --------------------------------------------------------------

def _split_heads(x, n_heads):
    B, T, d = x.shape
    return x.reshape(B, T, n_heads, d // n_heads).transpose(1, 2)  # (B, nh, T, hs)


SPLIT_MISTAKES = [
    Mistake(lambda x, h: x.reshape(x.shape[0], h, x.shape[1], x.shape[2] // h),
            "reshaping straight to (B, n_heads, T, d_head) mixes tokens into heads: reshape to "
            "(B, T, n_heads, d_head) first, then swap axes 1 and 2"),
    Mistake(lambda x, h: x.reshape(x.shape[0], x.shape[1], x.shape[2] // h, h).permute(0, 3, 1, 2),
            "head h owns the columns h·d_head … (h+1)·d_head − 1 (a block, not every n_heads-th column): "
            "reshape to (B, T, n_heads, d_head)"),
]


def _head_cases(shapes, seed: int = 0) -> list[Case]:
    return [Case(f"x {(b, t, d)}, n_heads={h}", (_randn(seed + i, b, t, d), h),
                 _split_heads(_randn(seed + i, b, t, d), h)) for i, (b, t, d, h) in enumerate(shapes)]


def check_split_heads(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(x, n_heads)` must return the heads.  Shapes: x (B, T, d_model) -> (B, n_heads, T, d_head).
    `hidden=True` adds the grade cell's hidden cases."""
    cases = _head_cases([(2, 5, 8, 2), (1, 3, 12, 3), (2, 4, 8, 4), (1, 6, 6, 1)])
    more = _head_cases([(3, 2, 15, 5), (1, 7, 16, 8)], seed=10) if hidden else []
    return run_cases("split_heads", fn, cases, SPLIT_MISTAKES, show=show, hidden=more)


# --- the source notes' single-head LoRAAttention: what does it train? --------------------------

def seed_attention_trainable(embed_dim: int, r: int) -> int:
    """Trainable parameters of the source notes' LoRAAttention: three (B, A) pairs plus all of W_O."""
    return 3 * 2 * r * embed_dim + embed_dim * embed_dim + embed_dim


SEED_MISTAKES = [
    Mistake(lambda d, r: 3 * 2 * r * d,
            "the LoRA pairs are right, but W_O is never frozen: its weight and bias train too"),
    Mistake(lambda d, r: 3 * 2 * r * d + d * d, "W_O's bias (embed_dim entries) trains as well"),
    Mistake(lambda d, r: 3 * r * d + d * d + d, "each LoRA pair has two factors, A (r, embed_dim) and "
            "B (embed_dim, r)"),
    Mistake(lambda d, r: 2 * 2 * r * d + d * d + d, "LoRA sits on W_Q, W_K and W_V here: three (A, B) pairs"),
]


def check_seed_trainable(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(embed_dim, r)`: the parameters the source notes' LoRAAttention(embed_dim, r) really trains.
    `hidden=True` adds the grade cell's hidden cases."""
    cases, more = ([Case(f"embed_dim={d}, r={r}", (d, r), seed_attention_trainable(d, r)) for d, r in sizes]
                   for sizes in ([(64, 4), (16, 2), (768, 8)], [(10, 3), (4096, 16)] if hidden else []))
    return run_cases("seed_trainable", fn, cases, SEED_MISTAKES, show=show, hidden=more)


# --- LoRA's trainable parameters in a stack of Transformer blocks -----------------------------

def _in_out(name: str, d_model: int, d_ff: int) -> tuple[int, int]:
    return {"fc1": (d_model, d_ff), "fc2": (d_ff, d_model)}.get(name, (d_model, d_model))


def lora_param_count(d_model: int, d_ff: int, n_layers: int, targets, r: int) -> int:
    """The reference: n_layers · Σ over targets of r·(d_in + d_out)."""
    return n_layers * sum(r * sum(_in_out(t, d_model, d_ff)) for t in targets)


COUNT_MISTAKES = [
    Mistake(lambda d, f, n, t, r: n * len(t) * 2 * r * d,
            "2·r·d_model holds for the square attention matrices only: fc1 is (d_ff, d_model), "
            "so count r·(d_in + d_out)"),
    Mistake(lambda d, f, n, t, r: lora_param_count(d, f, 1, t, r),
            "every one of the n_layers blocks gets its own A and B: multiply by n_layers"),
    Mistake(lambda d, f, n, t, r: lora_param_count(d, f, n, t, r) // 2,
            "count both factors: A is (r, d_in) and B is (d_out, r)"),
    Mistake(lambda d, f, n, t, r: n * sum(r * i * o for i, o in (_in_out(x, d, f) for x in t)),
            "r·d_in·d_out is the size of r full matrices; A and B have r·(d_in + d_out) entries"),
]


def check_lora_param_count(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(d_model, d_ff, n_layers, targets, r)`; targets among q_proj, k_proj, v_proj, o_proj, fc1, fc2.
    `hidden=True` adds the grade cell's hidden cases."""
    qv, four = ("q_proj", "v_proj"), ("q_proj", "k_proj", "v_proj", "o_proj")
    settings = [
        (t("GPT-3 175B, Wq+Wv, r=4 (paper §5.1, FACTS: 18,874,368)"), (12288, 49152, 96, qv, 4)),
        (t("GPT-3 175B, all four, r=2"), (12288, 49152, 96, four, 2)),
        (t("a tiny block, Wq only"), (8, 32, 1, ("q_proj",), 1)),
        (t("FFN only"), (16, 64, 3, ("fc1", "fc2"), 2)),
        (t("everything"), (16, 40, 2, four + ("fc1", "fc2"), 4)),
    ]
    extra = [(t("RoBERTa-base shapes, Wk+fc2, r=3"), (768, 3072, 12, ("k_proj", "fc2"), 3)),
             (t("fc1 and o_proj, 5 blocks"), (20, 50, 5, ("fc1", "o_proj"), 7))] if hidden else []
    cases, more = ([Case(label, args, lora_param_count(*args)) for label, args in group]
                   for group in (settings, extra))
    return run_cases("lora_param_count", fn, cases, COUNT_MISTAKES, show=show, hidden=more)


# --- PEFT-style target names ------------------------------------------------------------------

def matches(name: str, target: str) -> bool:
    """The reference: the whole name, or a suffix that starts after a dot."""
    return name == target or name.endswith("." + target)


MATCH_MISTAKES = [
    Mistake(lambda n, t: n.endswith(t),
            "a bare endswith also accepts 'xq_proj' for 'q_proj' (and 'blocks.10.…' for '0.…'): "
            "require a dot before the target"),
    Mistake(lambda n, t: t in n, "'in' finds the target anywhere inside the name; it must be the end"),
    Mistake(lambda n, t: n.split(".")[-1] == t,
            "a target can have several parts, like 'attn.q_proj': compare the end of the name"),
]

MATCH_CASES = [  # ordered so that each known mistake first fails on a case that tells it apart
    ("blocks.0.attn.q_proj", "q_proj", True), ("q_proj", "q_proj", True),
    ("blocks.0.attn.q_proj_old", "q_proj", False), ("blocks.0.attn.xq_proj", "q_proj", False),
    ("blocks.0.attn.q_proj", "attn.q_proj", True), ("blocks.10.attn.q_proj", "0.attn.q_proj", False),
    ("blocks.0.attn.q_proj", "0.attn.q_proj", True), ("blocks.0.mlp.fc1", "attn", False),
]


def _as_bool(fn, name: str, target: str) -> float:
    answer = fn(name, target)
    if not isinstance(answer, (bool, int)) and type(answer).__name__ != "bool_":
        raise TypeError(t("return True or False, got {kind}", kind=type(answer).__name__))
    return float(answer)


MATCH_HIDDEN = [("model.layers.3.self_attn.v_proj", "self_attn.v_proj", True),
                ("encoder.layer.1.attention.self.query", "query", True), ("lm_head", "head", False),
                ("transformer.h.0.attn.c_attn", "h.0.attn.c_attn", True),
                ("blocks.2.fc1", "blocks.2.fc", False)]


def check_matches(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(name, target)` must say whether PEFT's `target_modules=[target]` selects module `name`.
    `hidden=True` adds the grade cell's hidden cases."""
    cases, more = ([Case(f"name={n!r}, target={t!r}", (n, t), float(ok)) for n, t, ok in group]
                   for group in (MATCH_CASES, MATCH_HIDDEN if hidden else []))
    return run_cases("matches", lambda n, t: _as_bool(fn, n, t), cases,
                     [Mistake(lambda n, t, m=m: float(m.wrong(n, t)), m.hint) for m in MATCH_MISTAKES],
                     show=show, hidden=more)


# --- slicing a fused QKV weight ---------------------------------------------------------------

def _stacked(fn, W: torch.Tensor) -> torch.Tensor:
    """Run the learner's split on a copy and stack the three parts, or explain what came back."""
    parts = fn(W.clone())
    if not isinstance(parts, (tuple, list)) or len(parts) != 3:
        raise ValueError(t("return three tensors (W_q, W_k, W_v), got {kind}", kind=type(parts).__name__))
    d = W.shape[0] // 3
    shapes = [tuple(torch.as_tensor(p).shape) for p in parts]
    if any(s != (d, W.shape[1]) for s in shapes):
        raise ValueError(t("each part must be (d, d_in) = {want}, got {got} — the fused weight "
                           "(3·d, d_in) stacks W_q, W_k, W_v along its rows (dim 0)", want=(d, W.shape[1]),
                           got=shapes))
    return torch.stack([torch.as_tensor(p).detach() for p in parts])


SPLIT_QKV_MISTAKES = [
    Mistake(lambda W: torch.stack(W.reshape(W.shape[0] // 3, 3, -1).unbind(1)),
            "rows are not interleaved (q, k, v, q, k, v…): PyTorch stacks whole matrices, W_q first"),
    Mistake(lambda W: torch.stack(W.chunk(3)[::-1]), "the order is q, k, v (W_q first)"),
    Mistake(lambda W: torch.stack([W.chunk(3)[i] for i in (1, 0, 2)]), "the order is q, k, v (W_q first)"),
]


def _qkv_cases(sizes, seed: int = 0) -> list[Case]:
    return [Case(f"in_proj_weight {(3 * d, d_in)}", (_randn(seed + i, 3 * d, d_in),),
                 torch.stack(_randn(seed + i, 3 * d, d_in).chunk(3))) for i, (d, d_in) in enumerate(sizes)]


def check_split_qkv(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(in_proj_weight)` must return (W_q, W_k, W_v).  Shapes: (3·d, d_in) -> three (d, d_in).
    `hidden=True` adds the grade cell's hidden cases."""
    more = _qkv_cases([(1, 7), (5, 3)], seed=10) if hidden else []
    return run_cases("split_qkv", lambda W: _stacked(fn, W), _qkv_cases([(4, 6), (2, 5), (6, 6)]),
                     SPLIT_QKV_MISTAKES, show=show, hidden=more)

"""Checkers for the budget exercises of `01_why_lora` and `05_parameter_budget`."""

from __future__ import annotations

from lora_lab.course.exercises import Case, CheckResult, Mistake, run_cases

# (n_layers, [(d_out, d_in), ...], r): GPT-3 Wq+Wv, LLaMA-2 70B Wq+Wk (grouped-query K),
# SmolLM2 Wv+Wdown, a tiny non-square layer
_LAYERS = [
    (96, [(12288, 12288), (12288, 12288)], 4),
    (80, [(8192, 8192), (1024, 8192)], 8),
    (30, [(192, 576), (576, 1536)], 2),
    (2, [(6, 10)], 3),
]


def _lora_params(n_layers, shapes, r):
    return n_layers * sum(r * (d_out + d_in) for d_out, d_in in shapes)


def check_lora_params(fn) -> CheckResult:
    """`fn(n_layers, shapes, r)` -> trainable LoRA parameters, shapes a list of (d_out, d_in)."""
    cases = [Case(f"n_layers={n}, shapes={s}, r={r}", (n, s, r), _lora_params(n, s, r))
             for n, s, r in _LAYERS]
    mistakes = [
        Mistake(lambda n, s, r: n * sum(2 * r * i for _, i in s),
                "2·r·d only holds for square matrices: B is (d_out, r) and A is (r, d_in)"),
        Mistake(lambda n, s, r: sum(r * (o + i) for o, i in s), "multiply by the number of layers"),
        Mistake(lambda n, s, r: n * sum(r * i for _, i in s),
                "count both factors: B (d_out, r) and A (r, d_in)"),
        Mistake(lambda n, s, r: n * sum(r * o * i for o, i in s),
                "r · d_out · d_in is not a parameter count: B and A have r·(d_out + d_in) entries"),
    ]
    return run_cases("lora_params", fn, cases, mistakes)


def _megabytes(n_params, bytes_per_param):
    return n_params * bytes_per_param / 1e6


def check_adapter_megabytes(fn) -> CheckResult:
    """`fn(n_params, bytes_per_param)` -> file size in MB (decimal: 1 MB = 10⁶ bytes)."""
    args = [(18_874_368, 2), (18_874_368, 4), (4_718_592, 1), (294_912, 2)]
    cases = [Case(f"n_params={n:,}, bytes_per_param={b}", (n, b), _megabytes(n, b)) for n, b in args]
    mistakes = [
        Mistake(lambda n, b: n / 1e6, "that is millions of parameters, not megabytes: multiply by "
                "the bytes per parameter (the seed notes' '35MB of parameters' mixes the two)"),
        Mistake(lambda n, b: n * b / 2**20, "that is MiB (2²⁰ bytes); the paper's MB are 10⁶ bytes"),
        Mistake(lambda n, b: n * b * 8 / 1e6, "that counts bits: bytes_per_param is already in bytes"),
    ]
    return run_cases("adapter_megabytes", fn, cases, mistakes)


def _training_bytes(n_total, n_trainable, weight_bytes, grad_bytes, state_bytes):
    return n_total * weight_bytes + n_trainable * (grad_bytes + state_bytes)


def check_training_bytes(fn) -> CheckResult:
    """`fn(n_total, n_trainable, weight_bytes, grad_bytes, state_bytes)` -> training memory in
    bytes: every weight is stored; only trainable ones have a gradient and Adam states."""
    args = [(175_000_000_000, 175_000_000_000, 2, 2, 4), (175_000_000_000, 18_874_368, 2, 2, 4),
            (1000, 10, 2, 2, 12), (1000, 0, 4, 4, 8)]
    cases = [Case(f"n_total={a[0]:,}, n_trainable={a[1]:,}, bytes={a[2:]}", a, _training_bytes(*a))
             for a in args]
    mistakes = [
        Mistake(lambda n, t, w, g, s: n * (w + g + s),
                "frozen weights have no gradient and no Adam states: only n_trainable does"),
        Mistake(lambda n, t, w, g, s: t * (w + g + s),
                "the frozen weights still sit in memory (the forward pass needs them): store all n_total"),
        Mistake(lambda n, t, w, g, s: n * w + t * g,
                "Adam keeps two states per trainable parameter: add them"),
    ]
    return run_cases("training_bytes", fn, cases, mistakes)


def _storage(n_tasks, model_bytes, adapter_bytes):
    return n_tasks * model_bytes, model_bytes + n_tasks * adapter_bytes


def check_task_storage(fn) -> CheckResult:
    """`fn(n_tasks, model_bytes, adapter_bytes)` -> (bytes with full fine-tuning, bytes with LoRA)."""
    args = [(100, 350e9, 35e6), (1, 350e9, 35e6), (12, 1.4e9, 1.6e6), (1000, 2e6, 1e4)]
    cases = [Case(f"n_tasks={n}, model_bytes={m:g}, adapter_bytes={a:g}", (n, m, a), _storage(n, m, a))
             for n, m, a in args]
    mistakes = [
        Mistake(lambda n, m, a: (n * m, n * (m + a)),
                "with LoRA every task shares ONE copy of the base model"),
        Mistake(lambda n, m, a: (n * m, n * a),
                "an adapter alone cannot run: keep one copy of the base model too"),
        Mistake(lambda n, m, a: (m, m + n * a), "full fine-tuning stores a whole model for every task"),
    ]
    return run_cases("task_storage", fn, cases, mistakes)

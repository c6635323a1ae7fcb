"""Checkers for the budget exercises of `01_why_lora` and `05_parameter_budget`. Each checker's
`hidden=True` adds the cases of its grade cell's hidden tests."""

from __future__ import annotations

from lora_lab.course.exercises import Case, CheckResult, Mistake, run_cases
from lora_lab.maths import budget

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


_MORE_LAYERS = [(32, [(4096, 4096), (11008, 4096), (4096, 11008)], 16), (1, [(3, 7), (7, 3)], 1),
                (24, [(1024, 1024)], 64)]


def _params_cases(layers) -> list[Case]:
    return [Case(f"n_layers={n}, shapes={s}, r={r}", (n, s, r), _lora_params(n, s, r)) for n, s, r in layers]


def check_lora_params(fn, hidden: bool = False) -> CheckResult:
    """`fn(n_layers, shapes, r)` -> trainable LoRA parameters, shapes a list of (d_out, d_in)."""
    cases, more = _params_cases(_LAYERS), _params_cases(_MORE_LAYERS) if hidden else []
    mistakes = [
        Mistake(lambda n, s, r: n * sum(2 * r * i for _, i in s),
                "2·r·d only holds for square matrices: B is (d_out, r) and A is (r, d_in)"),
        Mistake(lambda n, s, r: sum(r * (o + i) for o, i in s), "multiply by the number of layers"),
        Mistake(lambda n, s, r: n * sum(r * i for _, i in s),
                "count both factors: B (d_out, r) and A (r, d_in)"),
        Mistake(lambda n, s, r: n * sum(r * o * i for o, i in s),
                "r · d_out · d_in is not a parameter count: B and A have r·(d_out + d_in) entries"),
    ]
    return run_cases("lora_params", fn, cases, mistakes, hidden=more)


def _megabytes(n_params, bytes_per_param):
    return n_params * bytes_per_param / 1e6


def _mb_cases(args) -> list[Case]:
    return [Case(f"n_params={n:,}, bytes_per_param={b}", (n, b), _megabytes(n, b)) for n, b in args]


def check_adapter_megabytes(fn, hidden: bool = False) -> CheckResult:
    """`fn(n_params, bytes_per_param)` -> file size in MB (decimal: 1 MB = 10⁶ bytes)."""
    cases = _mb_cases([(18_874_368, 2), (18_874_368, 4), (4_718_592, 1), (294_912, 2)])
    more = _mb_cases([(16_777_216, 2), (4_741, 4), (1_000_000, 1)]) if hidden else []
    mistakes = [
        Mistake(lambda n, b: n / 1e6, "that is millions of parameters, not megabytes: multiply by "
                "the bytes per parameter (the seed notes' '35MB of parameters' mixes the two)"),
        Mistake(lambda n, b: n * b / 2**20, "that is MiB (2²⁰ bytes); the paper's MB are 10⁶ bytes"),
        Mistake(lambda n, b: n * b * 8 / 1e6, "that counts bits: bytes_per_param is already in bytes"),
    ]
    return run_cases("adapter_megabytes", fn, cases, mistakes, hidden=more)


def _training_bytes(n_total, n_trainable, weight_bytes, grad_bytes, state_bytes):
    return n_total * weight_bytes + n_trainable * (grad_bytes + state_bytes)


def _memory_cases(args) -> list[Case]:
    return [Case(f"n_total={a[0]:,}, n_trainable={a[1]:,}, bytes={a[2:]}", a, _training_bytes(*a))
            for a in args]


def check_training_bytes(fn, hidden: bool = False) -> CheckResult:
    """`fn(n_total, n_trainable, weight_bytes, grad_bytes, state_bytes)` -> training memory in
    bytes: every weight is stored; only trainable ones have a gradient and Adam states."""
    cases = _memory_cases([(175_000_000_000, 175_000_000_000, 2, 2, 4),
                           (175_000_000_000, 18_874_368, 2, 2, 4), (1000, 10, 2, 2, 12), (1000, 0, 4, 4, 8)])
    more = _memory_cases([(6_738_415_616, 16_777_216, 2, 2, 4), (500, 500, 4, 4, 8), (77, 3, 1, 2, 3)]) \
        if hidden else []
    mistakes = [
        Mistake(lambda n, t, w, g, s: n * (w + g + s),
                "frozen weights have no gradient and no Adam states: only n_trainable does"),
        Mistake(lambda n, t, w, g, s: t * (w + g + s),
                "the frozen weights still sit in memory (the forward pass needs them): store all n_total"),
        Mistake(lambda n, t, w, g, s: n * w + t * g,
                "Adam keeps two states per trainable parameter: add them"),
    ]
    return run_cases("training_bytes", fn, cases, mistakes, hidden=more)


def _storage(n_tasks, model_bytes, adapter_bytes):
    return n_tasks * model_bytes, model_bytes + n_tasks * adapter_bytes


def _storage_cases(args) -> list[Case]:
    return [Case(f"n_tasks={n}, model_bytes={m:g}, adapter_bytes={a:g}", (n, m, a), _storage(n, m, a))
            for n, m, a in args]


def check_task_storage(fn, hidden: bool = False) -> CheckResult:
    """`fn(n_tasks, model_bytes, adapter_bytes)` -> (bytes with full fine-tuning, bytes with LoRA)."""
    cases = _storage_cases([(100, 350e9, 35e6), (1, 350e9, 35e6), (12, 1.4e9, 1.6e6), (1000, 2e6, 1e4)])
    more = _storage_cases([(7, 13.5e9, 33.6e6), (3, 5.0, 2.0), (250, 1e12, 0.0)]) if hidden else []
    mistakes = [
        Mistake(lambda n, m, a: (n * m, n * (m + a)),
                "with LoRA every task shares ONE copy of the base model"),
        Mistake(lambda n, m, a: (n * m, n * a),
                "an adapter alone cannot run: keep one copy of the base model too"),
        Mistake(lambda n, m, a: (m, m + n * a), "full fine-tuning stores a whole model for every task"),
    ]
    return run_cases("task_storage", fn, cases, mistakes, hidden=more)


def _share(shapes, n_layers, targets, r, n_total):
    trainable = n_layers * sum(r * sum(shapes[t]) for t in targets)
    return trainable, 100 * trainable / n_total


def _preset_cases(specs) -> list[Case]:
    cases = []
    for name, targets, r in specs:
        model = budget.PRESETS[name]
        args = (budget.matrix_shapes(model), model.n_layers, targets, r, budget.full_param_count(model))
        cases.append(Case(f"{name}, targets={targets}, r={r}", args, _share(*args)))
    return cases


def check_lora_share(fn, hidden: bool = False) -> CheckResult:
    """`fn(shapes, n_layers, targets, r, n_total)` -> (trainable LoRA parameters, their percent of
    n_total), `shapes` a dict name -> (d_out, d_in) as `budget.matrix_shapes` returns it."""
    cases = _preset_cases([("SmolLM2-135M", ("q", "v"), 8), ("GPT-3 175B", ("q", "v"), 4),
                           ("SmolLM2-135M", ("k", "down"), 2)])
    more = _preset_cases([("LLaMA-2 70B", ("q", "k", "v", "o"), 16),
                          ("LLaMA-2 7B", ("gate", "up", "down"), 4),
                          ("LLaMA-2 70B", ("v",), 1)]) if hidden else []
    mistakes = [
        Mistake(lambda s, n, t, r, tot: _share({k: (i, i) for k, (o, i) in s.items()}, n, t, r, tot),
                "2·r·d_in holds only for square matrices: B is (d_out, r) and A (r, d_in)"),
        Mistake(lambda s, n, t, r, tot: _share(s, 1, t, r, tot), "multiply by the number of layers"),
        Mistake(lambda s, n, t, r, tot: (_share(s, n, t, r, tot)[0], _share(s, n, t, r, tot)[1] / 100),
                "the second number is a percent: 100 · trainable / n_total"),
        Mistake(lambda s, n, t, r, tot: _share(s, n, list(s), r, tot),
                "count only the matrices named in targets, not every matrix of the layer"),
    ]
    return run_cases("lora_share", fn, cases, mistakes, hidden=more)

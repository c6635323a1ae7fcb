"""Checkers for `08_deploy_and_switch`: serving cost, switching tasks, adapter file size, PEFT keys."""

from __future__ import annotations

import torch

from lora_lab.course.exercises import (
    NOT_DONE,
    Case,
    CheckResult,
    Mistake,
    cases_passed,
    grading,
    is_not_done,
    line,
    raised,
    run_cases,
)
from lora_lab.course.i18n import N_, t


def _flops_reference(d_in: int, d_out: int, r: int, merged: bool) -> int:
    return 0 if merged else 2 * r * (d_in + d_out)


def _flops_cases(settings) -> list[Case]:
    return [Case(f"d_in={i}, d_out={o}, r={r}, merged={m}", (i, o, r, m), _flops_reference(i, o, r, m))
            for i, o, r, m in settings]


def check_extra_flops(fn, hidden: bool = False) -> CheckResult:
    """`fn(d_in, d_out, r, merged)`: FLOPs one token spends on the LoRA path (0 once merged).
    `hidden=True` adds the grade cell's hidden cases (tall and wide layers, r = 1, merged)."""
    cases = _flops_cases([(1024, 1024, 4, False), (768, 3072, 8, False), (12288, 12288, 4, False),
                          (64, 32, 2, True)])
    more = _flops_cases([(4096, 11008, 16, False), (5, 3, 1, False), (300, 7, 7, False),
                         (4096, 4096, 64, True)]) if hidden else []
    mistakes = [
        Mistake(lambda i, o, r, m: 2 * r * (i + o), "a merged layer runs only W = W0 + ΔW: no extra FLOPs"),
        Mistake(lambda i, o, r, m: 0 if m else 2 * i * o, "that is the cost of applying a full ΔW; the "
                "LoRA path is x -> A (r×d_in) -> B (d_out×r)"),
        Mistake(lambda i, o, r, m: 0 if m else r * (i + o), "count 2 FLOPs per multiply-add"),
    ]
    return run_cases("extra_flops", fn, cases, mistakes, hidden=more)


def _switch_reference(W, A_old, B_old, A_new, B_new, scaling):
    return W - scaling * (B_old @ A_old) + scaling * (B_new @ A_new)


def _switch_cases(settings, seed: int = 0) -> list[Case]:
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for d_out, d_in, r, s in settings:
        args = (torch.randn(d_out, d_in, generator=gen), torch.randn(r, d_in, generator=gen),
                torch.randn(d_out, r, generator=gen), torch.randn(r, d_in, generator=gen),
                torch.randn(d_out, r, generator=gen), s)
        cases.append(Case(f"W ({d_out}, {d_in}), r={r}, scaling={s}", args, _switch_reference(*args)))
    return cases


def check_switch_weight(fn, hidden: bool = False) -> CheckResult:
    """`fn(W, A_old, B_old, A_new, B_new, scaling)`: the weight after switching a merged layer
    from the old task to the new one.  Shapes: W (d_out, d_in), A (r, d_in), B (d_out, r).
    `hidden=True` adds hidden cases (other shapes and scalings, rank up to min(d_out, d_in))."""
    mistakes = [
        Mistake(lambda W, Ao, Bo, An, Bn, s: W + s * (Bn @ An),
                "W still holds the old task's ΔW: subtract s·B_old A_old before adding the new one"),
        Mistake(lambda W, Ao, Bo, An, Bn, s: W - Bo @ Ao + Bn @ An, "each ΔW is scaling · B @ A"),
        Mistake(lambda W, Ao, Bo, An, Bn, s: W + s * (Bo @ Ao) - s * (Bn @ An),
                "the signs are swapped: remove the old ΔW, add the new one"),
        Mistake(lambda W, Ao, Bo, An, Bn, s: W - s * (Bo @ Ao),
                "that unmerges the old task but never merges the new one"),
    ]
    more = _switch_cases([(2, 9, 2, 4.0), (10, 3, 3, 0.125), (1, 1, 1, 3.0)], seed=1) if hidden else []
    return run_cases("switch_weight", fn, _switch_cases([(6, 4, 2, 2.0), (3, 5, 1, 0.5), (8, 8, 4, 1.0)]),
                     mistakes, rtol=1e-4, atol=1e-5, hidden=more)


def _bytes_reference(shapes, r: int, bytes_per_param: int) -> int:
    return sum(r * (d_in + d_out) for d_out, d_in in shapes) * bytes_per_param


def _bytes_cases(settings) -> list[Case]:
    return [Case(t("{n} layers, first {first}, r={r}, {b} bytes", n=len(s), first=s[0], r=r, b=b), (s, r, b),
                 _bytes_reference(s, r, b))
            for s, r, b in settings]


def check_adapter_bytes(fn, hidden: bool = False) -> CheckResult:
    """`fn(shapes, r, bytes_per_param)`: bytes of A and B for layers of W0 shapes [(d_out, d_in), …].
    `hidden=True` adds hidden cases (mixed shapes, 1-byte and 8-byte parameters)."""
    cases = _bytes_cases([([(128, 128)] * 4, 8, 4), ([(256, 128), (128, 256)], 4, 2),
                          ([(12288, 12288)] * 192, 4, 2), ([(3, 5)], 1, 4)])
    more = _bytes_cases([([(576, 576), (192, 576)] * 30, 8, 2), ([(7, 2), (2, 7), (9, 9)], 2, 1),
                         ([(11008, 4096)], 16, 8)]) if hidden else []
    mistakes = [
        Mistake(lambda s, r, b: sum(r * (i + o) for o, i in s), "multiply the parameter count by "
                "bytes_per_param (4 for float32, 2 for float16)"),
        Mistake(lambda s, r, b: sum(2 * r * i for o, i in s) * b, "2·r·d only holds for square W0; "
                "A is (r, d_in), B is (d_out, r)"),
        Mistake(lambda s, r, b: sum(o * i + r * (i + o) for o, i in s) * b, "an adapter file holds only "
                "A and B, never W0"),
        Mistake(lambda s, r, b: sum(r * i for o, i in s) * b, "count B (d_out, r) as well as A (r, d_in)"),
    ]
    return run_cases("adapter_bytes", fn, cases, mistakes, hidden=more)


PEFT_KEY_CASES = [("blocks.0.attn.q_proj.lora_A", "base_model.model.blocks.0.attn.q_proj.lora_A.weight"),
                  ("blocks.1.attn.v_proj.lora_B", "base_model.model.blocks.1.attn.v_proj.lora_B.weight"),
                  ("q_proj.lora_A", "base_model.model.q_proj.lora_A.weight")]
PEFT_KEY_HIDDEN = [("model.layers.29.self_attn.v_proj.lora_B",
                    "base_model.model.model.layers.29.self_attn.v_proj.lora_B.weight"),
                   ("encoder.layer.3.attention.self.query.lora_A",
                    "base_model.model.encoder.layer.3.attention.self.query.lora_A.weight")]


def _peft_key_hint(got: str, expected: str) -> str:
    if got.startswith("base_model.model.") and not got.endswith(".weight"):
        return t("PEFT's A and B are nn.Linear modules: their tensor is `.weight`")
    if got.endswith(".weight") and not got.startswith("base_model.model."):
        return t("PEFT wraps the model twice (PeftModel.base_model.model): prefix 'base_model.model.'")
    if ".default." in got:
        return t("saved files drop the adapter name ('default'); PEFT re-inserts it when loading")
    return t("expected {want!r}", want=expected)


def _peft_key_problem(fn, key: str, expected: str) -> str | None:
    try:
        with grading.quiet():
            got = fn(key)
    except NotImplementedError:
        return t(NOT_DONE)
    except Exception as exc:  # a learner's bug becomes a message
        return raised(exc)
    if not isinstance(got, str):
        return t("expected a str, got {kind}", kind=type(got).__name__)
    return None if got == expected else t("got {got!r} — {hint}", got=got, hint=_peft_key_hint(got, expected))


def check_peft_key(fn, hidden: bool = False) -> CheckResult:
    """`fn(key)`: our state-dict key ('….q_proj.lora_A') -> PEFT's saved key.
    `hidden=True` adds hidden keys (a Llama-style and a BERT-style model's names)."""
    name, cases = "peft_key", PEFT_KEY_CASES + (PEFT_KEY_HIDDEN if hidden else [])
    if not callable(fn):
        return _say(name, False, 0, t("expected a function, got {kind}", kind=type(fn).__name__),
                    len(cases))
    for i, (key, expected) in enumerate(cases):
        where = N_("hidden case {label}: {problem}") if i >= len(PEFT_KEY_CASES) else \
            N_("case {label}: {problem}")
        problem = _peft_key_problem(fn, key, expected)
        if problem is not None:
            detail = problem if is_not_done(problem) else t(where, label=repr(key), problem=problem)
            return _say(name, False, i, detail, len(cases))
    hidden_n = len(PEFT_KEY_HIDDEN) if hidden else 0
    return _say(name, True, len(cases), cases_passed(len(cases), len(cases), hidden_n), len(cases))


def _say(name: str, passed: bool, cases: int, detail: str, total: int) -> CheckResult:
    message = line(name, passed, detail)
    print(message)
    return CheckResult(name=name, passed=passed, cases=cases, total=total, message=message,
                       hidden=len(PEFT_KEY_HIDDEN) if total > len(PEFT_KEY_CASES) else 0)

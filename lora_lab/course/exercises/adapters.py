"""Checkers for `08_deploy_and_switch`: serving cost, switching tasks, adapter file size, PEFT keys."""

from __future__ import annotations

import torch

from lora_lab.course.exercises import NOT_DONE, Case, CheckResult, Mistake, run_cases


def _flops_reference(d_in: int, d_out: int, r: int, merged: bool) -> int:
    return 0 if merged else 2 * r * (d_in + d_out)


def check_extra_flops(fn) -> CheckResult:
    """`fn(d_in, d_out, r, merged)`: FLOPs one token spends on the LoRA path (0 once merged)."""
    settings = [(1024, 1024, 4, False), (768, 3072, 8, False), (12288, 12288, 4, False), (64, 32, 2, True)]
    cases = [Case(f"d_in={i}, d_out={o}, r={r}, merged={m}", (i, o, r, m), _flops_reference(i, o, r, m))
             for i, o, r, m in settings]
    mistakes = [
        Mistake(lambda i, o, r, m: 2 * r * (i + o), "a merged layer runs only W = W0 + ΔW: no extra FLOPs"),
        Mistake(lambda i, o, r, m: 0 if m else 2 * i * o, "that is the cost of applying a full ΔW; the "
                "LoRA path is x -> A (r×d_in) -> B (d_out×r)"),
        Mistake(lambda i, o, r, m: 0 if m else r * (i + o), "count 2 FLOPs per multiply-add"),
    ]
    return run_cases("extra_flops", fn, cases, mistakes)


def _switch_reference(W, A_old, B_old, A_new, B_new, scaling):
    return W - scaling * (B_old @ A_old) + scaling * (B_new @ A_new)


def _switch_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)
    cases = []
    for d_out, d_in, r, s in [(6, 4, 2, 2.0), (3, 5, 1, 0.5), (8, 8, 4, 1.0)]:
        args = (torch.randn(d_out, d_in, generator=gen), torch.randn(r, d_in, generator=gen),
                torch.randn(d_out, r, generator=gen), torch.randn(r, d_in, generator=gen),
                torch.randn(d_out, r, generator=gen), s)
        cases.append(Case(f"W ({d_out}, {d_in}), r={r}, scaling={s}", args, _switch_reference(*args)))
    return cases


def check_switch_weight(fn) -> CheckResult:
    """`fn(W, A_old, B_old, A_new, B_new, scaling)`: the weight after switching a merged layer
    from the old task to the new one.  Shapes: W (d_out, d_in), A (r, d_in), B (d_out, r)."""
    mistakes = [
        Mistake(lambda W, Ao, Bo, An, Bn, s: W + s * (Bn @ An),
                "W still holds the old task's ΔW: subtract s·B_old A_old before adding the new one"),
        Mistake(lambda W, Ao, Bo, An, Bn, s: W - Bo @ Ao + Bn @ An, "each ΔW is scaling · B @ A"),
        Mistake(lambda W, Ao, Bo, An, Bn, s: W + s * (Bo @ Ao) - s * (Bn @ An),
                "the signs are swapped: remove the old ΔW, add the new one"),
        Mistake(lambda W, Ao, Bo, An, Bn, s: W - s * (Bo @ Ao),
                "that unmerges the old task but never merges the new one"),
    ]
    return run_cases("switch_weight", fn, _switch_cases(), mistakes, rtol=1e-4, atol=1e-5)


def _bytes_reference(shapes, r: int, bytes_per_param: int) -> int:
    return sum(r * (d_in + d_out) for d_out, d_in in shapes) * bytes_per_param


def check_adapter_bytes(fn) -> CheckResult:
    """`fn(shapes, r, bytes_per_param)`: bytes of A and B for layers of W0 shapes [(d_out, d_in), …]."""
    settings = [([(128, 128)] * 4, 8, 4), ([(256, 128), (128, 256)], 4, 2),
                ([(12288, 12288)] * 192, 4, 2), ([(3, 5)], 1, 4)]
    cases = [Case(f"{len(s)} layers, first {s[0]}, r={r}, {b} bytes", (s, r, b), _bytes_reference(s, r, b))
             for s, r, b in settings]
    mistakes = [
        Mistake(lambda s, r, b: sum(r * (i + o) for o, i in s), "multiply the parameter count by "
                "bytes_per_param (4 for float32, 2 for float16)"),
        Mistake(lambda s, r, b: sum(2 * r * i for o, i in s) * b, "2·r·d only holds for square W0; "
                "A is (r, d_in), B is (d_out, r)"),
        Mistake(lambda s, r, b: sum(o * i + r * (i + o) for o, i in s) * b, "an adapter file holds only "
                "A and B, never W0"),
        Mistake(lambda s, r, b: sum(r * i for o, i in s) * b, "count B (d_out, r) as well as A (r, d_in)"),
    ]
    return run_cases("adapter_bytes", fn, cases, mistakes)


PEFT_KEY_CASES = [("blocks.0.attn.q_proj.lora_A", "base_model.model.blocks.0.attn.q_proj.lora_A.weight"),
                  ("blocks.1.attn.v_proj.lora_B", "base_model.model.blocks.1.attn.v_proj.lora_B.weight"),
                  ("q_proj.lora_A", "base_model.model.q_proj.lora_A.weight")]


def _peft_key_hint(got: str, expected: str) -> str:
    if got.startswith("base_model.model.") and not got.endswith(".weight"):
        return "PEFT's A and B are nn.Linear modules: their tensor is `.weight`"
    if got.endswith(".weight") and not got.startswith("base_model.model."):
        return "PEFT wraps the model twice (PeftModel.base_model.model): prefix 'base_model.model.'"
    if ".default." in got:
        return "saved files drop the adapter name ('default'); PEFT re-inserts it when loading"
    return f"expected {expected!r}"


def check_peft_key(fn) -> CheckResult:
    """`fn(key)`: our state-dict key ('….q_proj.lora_A') -> PEFT's saved key."""
    name = "peft_key"
    if not callable(fn):
        return _say(name, False, 0, f"expected a function, got {type(fn).__name__}")
    for i, (key, expected) in enumerate(PEFT_KEY_CASES):
        try:
            got = fn(key)
        except NotImplementedError:
            return _say(name, False, i, NOT_DONE)
        except Exception as exc:  # a learner's bug becomes a message
            return _say(name, False, i, f"case {key!r}: your function raised {type(exc).__name__}: {exc}")
        if not isinstance(got, str):
            return _say(name, False, i, f"case {key!r}: expected a str, got {type(got).__name__}")
        if got != expected:
            return _say(name, False, i, f"case {key!r}: got {got!r} — {_peft_key_hint(got, expected)}")
    return _say(name, True, len(PEFT_KEY_CASES), f"{len(PEFT_KEY_CASES)}/{len(PEFT_KEY_CASES)} cases")


def _say(name: str, passed: bool, cases: int, detail: str) -> CheckResult:
    message = f"{'✓' if passed else '✗'} {name}: {detail}"
    print(message)
    return CheckResult(name=name, passed=passed, cases=cases, total=len(PEFT_KEY_CASES), message=message)

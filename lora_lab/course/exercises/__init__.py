"""Exercise checkers that teach. One submodule per topic (`exercises.lowrank`, `exercises.layers`…).

A checker runs the learner's function on several cases, compares with the reference and prints
one stable line: `✓ name: 5/5 cases`, or `✗ name: <what was expected, what came back, the likely
cause>`. It never lets the learner's exception escape; it returns a `CheckResult` for graders.
In a notebook the returned object displays nothing, so the line is not shown twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NOT_DONE = "not done yet — replace `raise NotImplementedError()` with your code and run the cell again"


@dataclass(frozen=True)
class CheckResult:
    """What a checker found: `passed`, how many `cases` passed of `total`, and the `message`."""

    name: str
    passed: bool
    cases: int
    total: int
    message: str

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        """The checker already printed the message; show nothing more as the cell's result."""


@dataclass
class Case:
    """One call of the learner's function: a label for messages, the arguments, the expected value."""

    label: str
    args: tuple
    expected: Any
    kwargs: dict = field(default_factory=dict)


@dataclass
class Mistake:
    """A known wrong answer: `wrong(*args)` computes it, `hint` explains the likely cause."""

    wrong: Callable[..., Any]
    hint: str


def to_array(value) -> np.ndarray | None:
    """A learner's answer as a float64 array, or None if it is not numeric."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().double().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def compare(got, expected, rtol: float = 1e-5, atol: float = 1e-6) -> str | None:
    """None when `got` matches `expected`; otherwise a message saying what differs and how."""
    if got is None:
        return "your function returned None — did you forget `return`?"
    exp, out = to_array(expected), to_array(got)
    if out is None:
        return f"expected a number or an array, got {type(got).__name__}"
    if out.shape != exp.shape:
        swapped = exp.ndim == 2 and out.shape == exp.shape[::-1]
        hint = " — did you swap A and B, or transpose?" if swapped else ""
        return f"expected shape {exp.shape}, got {out.shape}{hint}"
    if not np.isfinite(out).all():
        return "your answer contains NaN or inf — look for a division by zero or an uninitialised tensor"
    if _close(out, exp, rtol, atol):
        return None
    ratio = _constant_ratio(out, exp) if exp.size > 1 else None  # any two numbers have a ratio
    if ratio is not None:
        return f"off by a factor {ratio:.4g} — is a scaling (such as α/r) missing or applied twice?"
    if exp.size == 1:
        return f"expected {exp.item():.6g}, got {out.item():.6g}"
    err = float(np.max(np.abs(out - exp)))
    return f"values differ from the reference (largest difference {err:.3g})"


def _constant_ratio(out: np.ndarray, exp: np.ndarray) -> float | None:
    mask = np.abs(exp) > 1e-12
    if not mask.any() or (np.abs(out[~mask]) > 1e-9).any():
        return None
    ratios = out[mask] / exp[mask]
    r = float(np.median(ratios))
    if math.isclose(r, 1.0, rel_tol=1e-4) or abs(r) < 1e-12:
        return None
    return r if np.allclose(ratios, r, rtol=1e-4) else None


def run_cases(name: str, fn: Callable, cases: Sequence[Case], mistakes: Sequence[Mistake] = (),
              rtol: float = 1e-5, atol: float = 1e-6, show: bool = True) -> CheckResult:
    """Run `fn` on every case; report the first failure with the most helpful message."""
    if not callable(fn):
        return _report(name, False, 0, len(cases), f"expected a function, got {type(fn).__name__}", show)
    passed, first = 0, None
    for case in cases:
        problem = _run_one(fn, case, mistakes, rtol, atol)
        if problem is None:
            passed += 1
        elif first is None:
            first = problem if problem == NOT_DONE else f"case {case.label}: {problem}"
    if first is None:
        return _report(name, True, passed, len(cases), f"{passed}/{len(cases)} cases", show)
    return _report(name, False, passed, len(cases), first, show)


def _run_one(fn, case: Case, mistakes, rtol, atol) -> str | None:
    try:
        got = fn(*case.args, **case.kwargs)
    except NotImplementedError:
        return NOT_DONE
    except Exception as exc:  # a learner's bug becomes a message, never a traceback
        return f"your function raised {type(exc).__name__}: {exc}"
    problem = compare(got, case.expected, rtol, atol)
    if problem is None:
        return None
    for m in mistakes:
        try:
            wrong = m.wrong(*case.args, **case.kwargs)
        except Exception:
            continue
        if compare(got, wrong, rtol, atol) is None:
            return f"{problem} — {m.hint}" if "shape" not in problem else problem
    return problem


def check_value(name: str, answer, expected, mistakes: dict | None = None, rtol: float = 1e-6,
                show: bool = True) -> CheckResult:
    """Check one number (or array) answer; `mistakes` maps known wrong values to hints."""
    if answer is None or answer is Ellipsis:
        return _report(name, False, 0, 1, NOT_DONE, show)
    problem = compare(answer, expected, rtol=rtol, atol=0.0)
    if problem is not None:
        for wrong, hint in (mistakes or {}).items():
            if compare(answer, wrong, rtol=rtol, atol=0.0) is None:
                problem = f"{problem} — {hint}"
                break
    return _report(name, problem is None, int(problem is None), 1, problem or "1/1 cases", show)


def _report(name, passed, n, total, detail, show) -> CheckResult:
    message = f"{'✓' if passed else '✗'} {name}: {detail}"
    if show:
        print(message)
    return CheckResult(name=name, passed=passed, cases=n, total=total, message=message)

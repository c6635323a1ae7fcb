"""Exercise checkers that teach. One submodule per topic (`exercises.lowrank`, `exercises.layers`…);
`exercises.grading` holds how a check scores under nbgrader.

A checker runs the learner's function on several cases, compares with the reference and prints
one stable line: `✓ name: 5/5 cases`, or `✗ name: <what was expected, what came back, the likely
cause>`. It never lets the learner's exception escape; it returns a `CheckResult`. In JupyterLab
the returned object displays nothing, so the line is not shown twice and Run All never stops.
While nbgrader executes the notebook, a `CheckResult` that did not pass displays its score
(points × passed / total) as the cell's result, which is what nbgrader reads (see `grading`).

Hidden tests: a grade cell's hidden region (stripped from the student copy) calls a checker again
with more cases, e.g. `run_cases(name, fn, cases, hidden=more_cases)` or a checker's
`hidden=True`; the cell's last check gives its score, so a hidden check counts the visible cases
too (`run_cases` runs `cases`, then `hidden`), and `combine` joins several results into one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lora_lab.course.exercises import grading

NOT_DONE = "not done yet — replace `raise NotImplementedError()` with your code and run the cell again"


@dataclass(frozen=True)
class CheckResult:
    """What a checker found: `passed`, how many `cases` passed of `total` (`hidden` of them from a
    grade cell's hidden region), and the `message` it printed."""

    name: str
    passed: bool
    cases: int
    total: int
    message: str
    hidden: int = 0

    def __str__(self) -> str:
        return self.message

    @property
    def fraction(self) -> float:
        """The share of the cell's points this check earns (1 only when it passed)."""
        return grading.fraction(self.passed, self.cases, self.total)

    @property
    def _ipython_display_(self):
        """Show nothing (the message is already printed), except while nbgrader grades a check that
        did not pass: then None, so IPython displays the text below as the cell's result."""
        if grading.grading() and not self.passed:
            return None
        return self._display_nothing

    def _display_nothing(self) -> None:
        """The checker already printed the message; show nothing more as the cell's result."""

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        """The score nbgrader reads: points × passed / total for the cell being executed."""
        printer.text(f"{grading.score(self.passed, self.cases, self.total, grading.current_cell_source()):g}")


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
              rtol: float = 1e-5, atol: float = 1e-6, show: bool = True,
              hidden: Sequence[Case] = ()) -> CheckResult:
    """Run `fn` on every case, then on every `hidden` case (a grade cell's hidden tests); report
    the first failure with the most helpful message, and how many cases passed."""
    _check_cases(name, cases, hidden)
    total = len(cases) + len(hidden)
    if not callable(fn):
        return _report(name, False, 0, total, f"expected a function, got {type(fn).__name__}", show,
                       len(hidden))
    passed, first = 0, None
    labelled = [(f"case {c.label}", c) for c in cases] + [(f"hidden case {c.label}", c) for c in hidden]
    for label, case in labelled:
        problem = _run_one(fn, case, mistakes, rtol, atol)
        if problem is None:
            passed += 1
        elif first is None:
            first = problem if problem == NOT_DONE else f"{label}: {problem}"
    extra = f" ({len(hidden)} hidden)" if hidden else ""
    detail = f"{passed}/{total} cases{extra}" if first is None else first
    return _report(name, first is None, passed, total, detail, show, len(hidden))


def _check_cases(name, cases, hidden) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    for arg, given in (("cases", cases), ("hidden", hidden)):
        if isinstance(given, (str, bytes)) or not all(isinstance(c, Case) for c in given):
            raise TypeError(f"{arg} must be a sequence of Case, got {given!r:.80}")
    if not cases:
        raise ValueError("cases must hold at least one Case (the visible ones), got none")


def combine(name: str, *results: CheckResult, show: bool = True) -> CheckResult:
    """One result for several checks (a visible one and a hidden one, or one per property): it
    passes when all pass, counts every case, and reports the first failure's message."""
    if not results or not all(isinstance(r, CheckResult) for r in results):
        raise TypeError(f"results must be one or more CheckResult, got {[type(r).__name__ for r in results]}")
    cases, total = sum(r.cases for r in results), sum(r.total for r in results)
    hidden = sum(r.hidden for r in results)
    failed = [r for r in results if not r.passed]
    extra = f" ({hidden} hidden)" if hidden else ""
    detail = failed[0].message.split(": ", 1)[-1] if failed else f"{cases}/{total} cases{extra}"
    return _report(name, not failed, cases, total, detail, show, hidden)


def _run_one(fn, case: Case, mistakes, rtol, atol) -> str | None:
    try:
        with grading.quiet():
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


def _report(name, passed, n, total, detail, show, hidden: int = 0) -> CheckResult:
    message = f"{'✓' if passed else '✗'} {name}: {detail}"
    if show:
        print(message)
    return CheckResult(name=name, passed=passed, cases=n, total=total, message=message, hidden=hidden)

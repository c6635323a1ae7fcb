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

Languages: every message is an English template rendered by `lora_lab.course.i18n.t`, in English or
in Chinese as `setup_notebook(lang=...)` chose (the Chinese edition passes "zh"); the ✓/✗ mark and the
function's name always start the line, and the scores do not depend on the language.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lora_lab.course.exercises import grading
from lora_lab.course.exercises.compare import compare, to_array  # noqa: F401 (to_array: re-exported)
from lora_lab.course.i18n import N_, Msg, known, t

NOT_DONE = N_("not done yet — replace `raise NotImplementedError()` with your code and run the cell again")
#: the one line a checker prints: the mark and the function's name first, then the detail
LINE = N_("{mark} {name}: {detail}")


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


def run_cases(name: str, fn: Callable, cases: Sequence[Case], mistakes: Sequence[Mistake] = (),
              rtol: float = 1e-5, atol: float = 1e-6, show: bool = True,
              hidden: Sequence[Case] = ()) -> CheckResult:
    """Run `fn` on every case, then on every `hidden` case (a grade cell's hidden tests); report
    the first failure with the most helpful message, and how many cases passed."""
    _check_cases(name, cases, hidden)
    total = len(cases) + len(hidden)
    if not callable(fn):
        return report(name, False, 0, total, t("expected a function, got {kind}", kind=type(fn).__name__),
                       show, len(hidden))
    passed, first = 0, None
    labelled = [(N_("case {label}: {problem}"), c) for c in cases] + \
        [(N_("hidden case {label}: {problem}"), c) for c in hidden]
    for where, case in labelled:
        problem = _run_one(fn, case, mistakes, rtol, atol)
        if problem is None:
            passed += 1
        elif first is None:
            first = problem if is_not_done(problem) else t(where, label=case.label, problem=problem)
    detail = cases_passed(passed, total, len(hidden)) if first is None else first
    return report(name, first is None, passed, total, detail, show, len(hidden))


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
    detail = _detail(failed[0].message) if failed else cases_passed(cases, total, hidden)
    return report(name, not failed, cases, total, detail, show, hidden)


def _run_one(fn, case: Case, mistakes, rtol, atol) -> str | None:
    try:
        with grading.quiet():
            got = fn(*case.args, **case.kwargs)
    except NotImplementedError:
        return t(NOT_DONE)
    except Exception as exc:  # a learner's bug becomes a message, never a traceback
        return raised(exc)
    problem = compare(got, case.expected, rtol, atol)
    if problem is None:
        return None
    for m in mistakes:
        try:
            wrong = m.wrong(*case.args, **case.kwargs)
        except Exception:
            continue
        if compare(got, wrong, rtol, atol) is None:
            return problem if problem.template.startswith("expected shape") else with_hint(problem, m.hint)
    return problem


def check_value(name: str, answer, expected, mistakes: dict | None = None, rtol: float = 1e-6,
                show: bool = True) -> CheckResult:
    """Check one number (or array) answer; `mistakes` maps known wrong values to hints."""
    if answer is None or answer is Ellipsis:
        return report(name, False, 0, 1, t(NOT_DONE), show)
    problem = compare(answer, expected, rtol=rtol, atol=0.0)
    if problem is not None:
        for wrong, hint in (mistakes or {}).items():
            if compare(answer, wrong, rtol=rtol, atol=0.0) is None:
                problem = with_hint(problem, hint)
                break
    return report(name, problem is None, int(problem is None), 1, problem or cases_passed(1, 1), show)


def raised(exc: Exception, who: str = N_("your function")) -> Msg:
    """What a learner's code raised, as a message: 'your function raised ValueError: …'. An
    exception a checker's own wrapper raised with a message keeps that message's English twin."""
    text = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], Msg) else exc
    return t("{who} raised {error}: {exc}", who=t(who), error=type(exc).__name__, exc=text)


def with_hint(problem, hint: str) -> Msg:
    """A problem and the likely cause: `hint` is a template of the catalogue, rendered now, or a
    caller's own text (a `Mistake` written in a notebook), shown as it is."""
    return t("{problem} — {hint}", problem=problem, hint=known(hint))


def is_not_done(text) -> bool:
    """True for the 'not done yet' message, in either language."""
    return getattr(text, "template", None) == NOT_DONE


def cases_passed(passed: int, total: int, hidden: int = 0) -> Msg:
    """'5/5 cases', or '7/7 cases (2 hidden)'."""
    if hidden:
        return t("{passed}/{total} cases ({hidden} hidden)", passed=passed, total=total, hidden=hidden)
    return t("{passed}/{total} cases", passed=passed, total=total)


def line(name: str, passed: bool, detail) -> Msg:
    """The one line a checker prints: '✓ name: detail' or '✗ name: detail'."""
    return t(LINE, mark="✓" if passed else "✗", name=name, detail=detail)


def _detail(message) -> str:
    """The part of a checker's line after its name."""
    if isinstance(message, Msg) and message.template == LINE:
        return message.values["detail"]
    return message.split(": ", 1)[-1]


def report(name, passed, n, total, detail, show, hidden: int = 0) -> CheckResult:
    """A checker's result: its one line (printed when `show`) and the cases it counted."""
    message = line(name, passed, detail)
    if show:
        print(message)
    return CheckResult(name=name, passed=passed, cases=n, total=total, message=message, hidden=hidden)

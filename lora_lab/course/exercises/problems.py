"""What the module checkers share: a `Problem` (a property that does not hold, with the message the
learner reads), running the learner's code so that nothing it raises escapes, the checks of one
parameter and of one output, and walking the sizes in order to one result line."""

from __future__ import annotations

import torch
from torch import nn

from lora_lab.course.exercises import (
    NOT_DONE,
    CheckResult,
    cases_passed,
    grading,
    is_not_done,
    raised,
    report,
)
from lora_lab.course.i18n import as_msg, t


class Problem(Exception):
    """A property that does not hold; its `text` (a Msg) is the message the learner reads."""

    @property
    def text(self):
        return self.args[0]


def _run(what: str, fn):
    """Call the learner's code; turn what it raises into a Problem that says so."""
    try:
        with grading.quiet():
            return fn()
    except NotImplementedError as exc:
        raise Problem(t(NOT_DONE)) from exc
    except Problem:
        raise
    except Exception as exc:  # a learner's bug becomes a message, never a traceback
        raise Problem(raised(exc, what)) from exc


def _param(layer, name: str, shape: tuple[int, int], other: tuple[int, int] = ()) -> torch.Tensor:
    p = getattr(layer, name, None)
    if not isinstance(p, nn.Parameter):
        raise Problem(t("expected an nn.Parameter called `{name}`, got {kind}", name=name,
                        kind=type(p).__name__))
    if tuple(p.shape) != shape:
        swapped = tuple(p.shape) in (shape[::-1], tuple(other))
        raise Problem(t("`{name}` must be {want}, got {got} — did you swap A and B?" if swapped
                        else "`{name}` must be {want}, got {got}", name=name, want=shape, got=tuple(p.shape)))
    return p


def _close(got, want, what: str, atol: float = 1e-5) -> None:
    """`what` is a template (or a Msg) naming the output being compared."""
    what = as_msg(what)
    if not isinstance(got, torch.Tensor):
        raise Problem(t("{what}: expected a tensor, got {kind}", what=what, kind=type(got).__name__))
    if tuple(got.shape) != tuple(want.shape):
        raise Problem(t("{what}: expected shape {want}, got {got}", what=what, want=tuple(want.shape),
                        got=tuple(got.shape)))
    if not torch.isfinite(got).all():
        raise Problem(t("{what}: the output holds NaN or inf — an uninitialised tensor (torch.empty)?",
                        what=what))
    if not torch.allclose(got.detach().float(), want.detach().float(), rtol=1e-5, atol=atol):
        raise Problem(t("{what}: values differ from the reference (largest difference {err:.3g})", what=what,
                        err=(got - want).abs().max()))


def _steps(steps) -> int:
    """Run the properties in order; a Problem carries how many passed before it."""
    for done, step in enumerate(steps):
        try:
            step()
        except Problem as problem:
            problem.passed = done + 1  # building the layer and its shapes count as one
            raise
    return len(steps) + 1


def _size_label(size) -> str:
    return f"d_in={size[0]}, d_out={size[1]}, r={size[2]}, α={size[3]:g}"


def _over_sizes(name: str, build_and_check, sizes, per: int, show: bool, hidden: int = 0,
                label=_size_label) -> CheckResult:
    """Check every size (`per` properties each); report the first failure and the cases passed.
    The checks seed torch themselves, inside `fork_rng`: the notebook's random stream is left as it was."""
    with torch.random.fork_rng(devices=[]):
        return _each_size(name, build_and_check, sizes, per, show, hidden, label)


def _each_size(name, build_and_check, sizes, per, show, hidden, label) -> CheckResult:
    cases = 0
    for i, size in enumerate(sizes):
        try:
            cases += build_and_check(size, seed=i)
        except Problem as problem:
            done = getattr(problem, "passed", 0)
            total = per * len(sizes)
            text = problem.text if is_not_done(problem.text) else \
                t("{label}: {problem}", label=label(size), problem=problem.text)
            return report(name, False, cases + done, total, text, show, hidden)
    return report(name, True, cases, cases, cases_passed(cases, cases, hidden), show, hidden)


"""The worked exercise of `00_start_here`: parameters of a matrix and of its rank-r factors."""

from __future__ import annotations

from lora_lab.course.exercises import Case, CheckResult, Mistake, run_cases


def _reference(d_out: int, d_in: int, r: int) -> tuple[int, int]:
    return d_out * d_in, r * (d_in + d_out)


def _cases(shapes) -> list[Case]:
    return [Case(f"d_out={o}, d_in={i}, r={r}", (o, i, r), _reference(o, i, r)) for o, i, r in shapes]


def check_factor_params(fn, hidden: bool = False) -> CheckResult:
    """`fn(d_out, d_in, r)` must return (parameters of W, parameters of B (d_out, r) + A (r, d_in));
    `hidden=True` adds the cases of the grade cell's hidden tests."""
    cases = _cases([(1024, 1024, 4), (768, 3072, 8), (64, 32, 1), (12288, 12288, 4)])
    more = _cases([(11008, 4096, 16), (3, 7, 2), (50, 50, 50)]) if hidden else []
    mistakes = [
        Mistake(lambda o, i, r: (o * i, r * r), "the factors are (d_out × r) and (r × d_in), not r × r"),
        Mistake(lambda o, i, r: (o * i, 2 * r * i),
                "2·r·d only holds when d_out = d_in; count B and A separately"),
        Mistake(lambda o, i, r: (o * i, r * i * o), "r · d_in · d_out is the size of B @ A, not of B and A"),
    ]
    return run_cases("factor_params", fn, cases, mistakes, hidden=more)

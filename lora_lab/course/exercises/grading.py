"""How a check cell scores under nbgrader, and stays one quiet line in JupyterLab.

nbgrader 0.9.6 (`nbgrader.utils.determine_grade`) turns a grade cell's outputs into points: an
`error` output or any stderr stream gives 0; an `execute_result` whose text parses as a float gives
that many points (absolute, not a fraction; more than the cell's maximum is an error); anything
else gives full points. So while nbgrader executes a notebook (`NBGRADER_EXECUTION` is set during
`autograde` and `validate`) a check that did not pass every case displays its score,
points × passed / total (0 when nothing passed), as the cell's result, and its message stays on
stdout, where nbgrader's feedback shows it. A check that passed displays nothing: full points.

A grade cell's points live in its own source, one line `# points: N` (1 without it):
`assignments.tag_nbgrader` copies them into the cell's nbgrader metadata, and at run time the
checker reads them from the source of the cell being executed (IPython's input history), so the
two cannot disagree and no checker needs a `points` argument.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import warnings

#: `# points: 3` in a code cell, `<!-- points: 3 -->` in a Markdown answer cell
POINTS_LINE = re.compile(r"^[ \t]*(?:#|<!--)[ \t]*points:[ \t]*(\d+(?:\.\d+)?)[ \t]*(?:-->)?[ \t]*$",
                         re.MULTILINE)


def grading() -> bool:
    """True while nbgrader executes the notebook (autograde or validate)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def points_in(source: str) -> float:
    """The points a grade cell's source declares with a `# points: N` line; 1 when it has none."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a str (a cell's source), got {type(source).__name__}")
    found = POINTS_LINE.findall(source)
    if len(found) > 1:
        raise ValueError(f"source must declare its points at most once, found {len(found)} lines: {found}")
    return float(found[0]) if found else 1.0


def current_cell_source() -> str | None:
    """The source of the cell IPython is executing now, or None outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the course
        return None
    shell = get_ipython()
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    return history[-1] if history else None


def fraction(passed: bool, cases: int, total: int) -> float:
    """Share of the points earned: 1 only when the check passed; otherwise passed cases / total,
    kept below 1 (a check that failed after every case, e.g. on a property, never scores full)."""
    if passed:
        return 1.0
    if total <= 0:
        return 0.0
    return min(max(cases, 0), total - 1) / total


def score(passed: bool, cases: int, total: int, source: str | None) -> float:
    """Points for the running grade cell, rounded down to 0.01 (never up to full points).
    Without the cell's source the points are unknown, and a check that did not pass scores 0."""
    if passed:
        return points_in(source) if source is not None else 1.0
    if source is None:
        return 0.0
    return math.floor(100 * points_in(source) * fraction(passed, cases, total)) / 100


@contextlib.contextmanager
def quiet():
    """Run a learner's code without warnings and with stderr sent to stdout: under nbgrader any
    stderr in a grade cell scores 0, and a library's warning is no reason to lose points."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(sys.stdout):
        warnings.simplefilter("ignore")
        yield

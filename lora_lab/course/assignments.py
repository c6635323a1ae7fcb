"""Classroom chores: nbgrader metadata on the masters, student copies without solutions, and a
ready nbgrader course directory (the teacher's kit).

Convention (nbgrader's): a solution sits between `### BEGIN SOLUTION` and `### END SOLUTION`
(code or Markdown); hidden tests between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`.
A grade cell's points are one line of its source, `# points: N` (1 without it; see
`exercises.grading`); `tag_nbgrader` copies them into the metadata.
"""

from __future__ import annotations

import ast
import copy
import math
import re
import shutil
from datetime import datetime
from pathlib import Path

import nbformat

from lora_lab.course.exercises.grading import points_in

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[^\n]*",
                      re.MULTILINE | re.DOTALL)
CODE_STUB = "{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError()"
ANSWER_STUB = "YOUR ANSWER HERE"
MASTERS = Path(__file__).resolve().parents[2] / "notebooks"


def has_solution(cell) -> bool:
    """True when the cell holds a solution region (marker lines, not prose that names them)."""
    return SOLUTION.search(cell.source) is not None


def prose_markers(source: str) -> list[str]:
    """Lines that mention a marker without being one. nbgrader treats any line that contains
    'BEGIN SOLUTION' or 'END SOLUTION' as a marker (and drops or stubs it), so a master must not
    have such lines; tests use this to keep every master safe for nbgrader."""
    markers = (BEGIN, END, HIDDEN_BEGIN, HIDDEN_END)
    words = [m.removeprefix("### ") for m in markers]
    return [line for line in source.splitlines()
            if any(w in line for w in words) and line.strip() not in markers]


def tag_nbgrader(nb, prefix: str = "nb") -> int:
    """Give solution cells and the check cell after each nbgrader metadata; return how many."""
    tagged, previous_was_solution = 0, False
    for i, cell in enumerate(nb.cells):
        meta = None
        if has_solution(cell):
            meta = {"solution": True, "grade": cell.cell_type == "markdown", "locked": False}
            if cell.cell_type == "markdown":
                meta["points"] = _points(cell.source)
            previous_was_solution = True
        elif previous_was_solution and cell.cell_type == "code" and _checks(cell.source):
            meta = {"solution": False, "grade": True, "locked": True, "points": _points(cell.source)}
            previous_was_solution = False
        else:
            previous_was_solution = previous_was_solution and cell.cell_type == "markdown"
        if meta is not None:
            meta.update(grade_id=f"{prefix}-cell-{i:03d}", schema_version=3)
            cell.metadata["nbgrader"] = meta
            tagged += 1
    return tagged


def _checks(source: str) -> bool:
    """A grade cell calls a checker (`check_…`, `run_cases`, `combine`) or holds hidden tests."""
    return any(word in source for word in ("check", "run_cases", "combine(", HIDDEN_BEGIN))


def _points(source: str) -> int | float:
    points = points_in(source)
    return int(points) if points.is_integer() else points


def strip_hidden(source: str) -> str:
    """Drop every hidden-tests region line by line, as nbgrader's ClearHiddenTests does: a line
    that contains a marker opens or closes a region, and the kept lines are joined with newlines."""
    kept, inside = [], False
    for line in source.split("\n"):
        if HIDDEN_BEGIN in line:
            inside = True
        elif HIDDEN_END in line:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def strip_solutions(source: str, markdown: bool = False) -> str:
    """Replace every solution region by a stub and drop hidden tests."""
    source = strip_hidden(source)
    if markdown:
        return SOLUTION.sub(ANSWER_STUB, source)
    return SOLUTION.sub(lambda m: CODE_STUB.format(indent=m.group(1)), source)


def student_version(nb):
    """A copy of `nb` with solutions stubbed, hidden tests removed and outputs cleared."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source)
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown":
            cell.source = strip_solutions(cell.source, markdown=True)
    return nb


def write_student_copies(out_dir, source_dir=MASTERS) -> list[Path]:
    """Write a student copy of every master notebook into `out_dir`; the masters are untouched."""
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    masters = sorted(source_dir.glob("*.ipynb"))
    if not masters:
        raise ValueError(f"source_dir must hold .ipynb notebooks, found none in {source_dir}")
    if out_dir.resolve() == source_dir.resolve():
        raise ValueError(f"out_dir must differ from the masters' folder, got {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in masters:
        nb = nbformat.read(path, as_version=4)
        target = out_dir / path.name
        nbformat.write(student_version(nb), target)
        written.append(target)
    return written


# --- the teacher's kit ------------------------------------------------------------------------

COURSE_ID = "lora_lab"
CONFIG = """# nbgrader configuration written by `python -m lora_lab course` (LoRA Lab's teacher's kit).
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = {course_id!r}
# one assignment per notebook: source/<notebook>/<notebook>.ipynb
# per-cell timeout: {why}
c.Execute.timeout = {timeout}
# after a cell's reply, how long to wait for its last outputs: nbclient's 4 s default fails a cell
# that printed after a long computation on a busy machine ("Timeout waiting for IOPub output")
c.Execute.iopub_timeout = 60
# a graded notebook's kernel is stopped at once when its last cell is done (nbclient's graceful
# default waits about a second per submission for a kernel nothing needs any more)
c.Execute.shutdown_kernel = "immediate"
# the stubs nbgrader writes are the ones `python -m lora_lab student` writes
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# release and collect go through an exchange folder: /srv/nbgrader/exchange unless you set
# c.Exchange.root = "/path/to/exchange"
"""


def _cell_seconds(cell) -> float | None:
    times = cell.get("metadata", {}).get("execution", {})
    start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
    if not (start and end):
        return None
    return (datetime.fromisoformat(end.replace("Z", "+00:00"))
            - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


def run_seconds(path) -> float:
    """Seconds the stored run of one notebook took: the sum of its code cells' recorded times."""
    cells = nbformat.read(path, as_version=4).cells
    return sum(_cell_seconds(c) or 0.0 for c in cells if c.cell_type == "code")


def slowest_cell(source_dir=MASTERS) -> tuple[float, str]:
    """(seconds, 'notebook cell i') of the slowest code cell in the masters' stored runs, read from
    the execution times nbclient records in each cell's metadata when a master is executed."""
    slowest = (0.0, "none")
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            seconds = _cell_seconds(cell) if cell.cell_type == "code" else None
            if seconds is not None and seconds > slowest[0]:
                slowest = (seconds, f"{path.stem} cell {i}")
    return slowest


def grading_timeout(slowest_seconds: float, margin: float = 2.0, floor: int = 60) -> int:
    """Per-cell timeout for nbgrader: `margin` × the slowest stored cell (a learner's code or a busy
    grading machine may be slower than the master's run), rounded up to 30 s, at least `floor`."""
    if not (isinstance(slowest_seconds, (int, float)) and slowest_seconds >= 0):
        raise ValueError(f"slowest_seconds must be a number >= 0, got {slowest_seconds!r}")
    if not margin >= 1:
        raise ValueError(f"margin must be >= 1, got {margin!r}")
    return max(int(floor), 30 * math.ceil(margin * slowest_seconds / 30))


def write_course(course_dir, source_dir=MASTERS, timeout: int | None = None) -> list[Path]:
    """Lay out an nbgrader course in `course_dir`: source/<notebook>/<notebook>.ipynb for every
    master and an nbgrader_config.py; return the files written. The masters are untouched."""
    course_dir, masters = Path(course_dir), sorted(Path(source_dir).glob("*.ipynb"))
    if not masters:
        raise ValueError(f"source_dir must hold .ipynb notebooks, found none in {source_dir}")
    if course_dir.resolve() == Path(source_dir).resolve() or (course_dir / "source").is_file():
        raise ValueError(f"course_dir must be a folder other than the masters', got {course_dir}")
    if timeout is None:
        seconds, where = slowest_cell(source_dir)
        timeout, why = grading_timeout(seconds), f"2 x the slowest master cell ({where}, {seconds:.0f} s)"
    elif not (isinstance(timeout, int) and timeout > 0):
        raise ValueError(f"timeout must be a positive int of seconds, got {timeout!r}")
    else:
        why = "set by hand"
    written = []
    for path in masters:
        folder = course_dir / "source" / path.stem
        folder.mkdir(parents=True, exist_ok=True)
        written.append(Path(shutil.copy(path, folder / path.name)))
    config = course_dir / "nbgrader_config.py"
    config.write_text(CONFIG.format(course_id=COURSE_ID, timeout=timeout, why=why))
    return [config, *written]


def exercise_of(cell) -> str:
    """The exercise a grade cell scores: the checker its last line calls, without `check_`."""
    if cell.cell_type == "markdown":
        return "written answer"
    try:
        last = ast.parse(cell.source).body[-1]
    except (SyntaxError, IndexError):
        return cell.metadata.get("nbgrader", {}).get("grade_id", "?")
    func = last.value.func if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) else None
    name = getattr(func, "id", None) or getattr(func, "attr", None) or "?"
    return name.removeprefix("check_")


def exercise_table(source_dir=MASTERS) -> str:
    """README's table: per master, its exercises with their points, and the notebook's total."""
    rows = ["| notebook | exercises (points) | points |", "| --- | --- | --- |"]
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        graded = [(exercise_of(c), c.metadata["nbgrader"]["points"])
                  for c in nbformat.read(path, as_version=4).cells
                  if c.metadata.get("nbgrader", {}).get("grade")]
        listed = ", ".join(f"`{name}` {points:g}" for name, points in graded) or "—"
        rows.append(f"| `{path.stem}` | {listed} | {sum(p for _, p in graded):g} |")
    return "\n".join(rows) + "\n"

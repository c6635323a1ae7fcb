"""Classroom chores: nbgrader metadata on the masters, and student copies without solutions.

Convention (nbgrader's): a solution sits between `### BEGIN SOLUTION` and `### END SOLUTION`
(code or Markdown); hidden tests between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?",
                    re.MULTILINE | re.DOTALL)
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
    markers = (BEGIN, END, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
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
                meta["points"] = 1
            previous_was_solution = True
        elif previous_was_solution and cell.cell_type == "code" and "check" in cell.source:
            meta = {"solution": False, "grade": True, "locked": True, "points": 1}
            previous_was_solution = False
        else:
            previous_was_solution = previous_was_solution and cell.cell_type == "markdown"
        if meta is not None:
            meta.update(grade_id=f"{prefix}-cell-{i:03d}", schema_version=3)
            cell.metadata["nbgrader"] = meta
            tagged += 1
    return tagged


def strip_solutions(source: str, markdown: bool = False) -> str:
    """Replace every solution region by a stub and drop hidden tests."""
    source = HIDDEN.sub("", source)
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

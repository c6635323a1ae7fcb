"""nbgrader grades honestly, with its own tools (generate_assignment, autograde with its gradebook
database, generate_feedback), on a tiny fixture notebook: every rule in seconds. Its own file, so
that under `make test`'s two workers it runs beside tests/test_nbgrader.py's grading of every
master instead of before it."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from lora_lab.course.assignments import student_version, write_course
from lora_lab.course.exercises import NOT_DONE

pytest.importorskip("nbgrader")  # in the test extra: this runs under make test
from nbgrader_tools import auto_scores, nbgrader, released, submit  # noqa: E402 (tests/ is on sys.path)

GRADE = """# points: 4
from lora_lab.course.exercises import Case, run_cases
CASES = [Case("x=1", (1,), 2), Case("x=2", (2,), 4)]
run_cases("double", double, CASES)
### BEGIN HIDDEN TESTS
run_cases("double", double, CASES, hidden=[Case("x=5", (5,), 10), Case("x=-3", (-3,), -6)])
### END HIDDEN TESTS
"""
SOLUTION = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
ANSWERS = {  # student -> (their solution cell, the points nbgrader must give)
    "right": (SOLUTION, 4.0),
    "noisy": ("import warnings\ndef double(x):\n    warnings.warn('noisy')\n    return 2 * x\n", 4.0),
    "cheat": ("def double(x):\n    return {1: 2, 2: 4}[x]\n", 2.0),  # the visible cases only
    "wrong": ("def double(x):\n    return 0\n", 0.0),
    "blank": (None, 0.0),
}


def fixture_master():
    from lora_lab.course.assignments import tag_nbgrader

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Double it"), nbformat.v4.new_code_cell(SOLUTION),
                nbformat.v4.new_code_cell(GRADE), nbformat.v4.new_code_cell("print('after')")]
    tag_nbgrader(nb, prefix="fx")
    return nb


@pytest.fixture(scope="module")
def fixture_course(tmp_path_factory) -> Path:
    masters = tmp_path_factory.mktemp("fixture_masters")
    nbformat.write(fixture_master(), masters / "double.ipynb")
    root = tmp_path_factory.mktemp("fixture_course")
    write_course(root, source_dir=masters, timeout=60)
    nbgrader(root, "generate_assignment", "double", "--force")
    for student, (answer, _) in ANSWERS.items():
        nb = released(root, "double.ipynb")
        if answer is not None:
            nb.cells[1].source = answer
        submit(root, student, nb, "double.ipynb")
    nbgrader(root, "autograde", "double")
    return root


@pytest.mark.parametrize("student", ANSWERS)
def test_fixture_scores_what_the_answer_earns(fixture_course, student):
    assert auto_scores(fixture_course, student, "double") == {"fx-cell-002": ANSWERS[student][1]}


def test_fixture_release_hides_the_hidden_cases_and_the_feedback_shows_the_message(fixture_course):
    grade = released(fixture_course, "double.ipynb").cells[2].source
    assert "x=5" not in grade and "HIDDEN" not in grade and grade.startswith("# points: 4")
    nbgrader(fixture_course, "generate_feedback", "double", "--student=cheat")
    html = (fixture_course / "feedback" / "cheat" / "double" / "double.html").read_text()
    assert "✗ double: hidden case x=5: your function raised KeyError: 5" in html


def test_fixture_grade_cell_prints_one_line_and_displays_its_score(fixture_course):
    graded = nbformat.read(fixture_course / "autograded" / "cheat" / "double" / "double.ipynb", as_version=4)
    outputs = kinds(graded.cells[2].outputs)
    assert [kind for kind, _ in outputs] == ["stdout", "execute_result"] and outputs[1][1] == "2"
    right = nbformat.read(fixture_course / "autograded" / "right" / "double" / "double.ipynb", as_version=4)
    assert [kind for kind, _ in kinds(right.cells[2].outputs)] == ["stdout"]


def kinds(outputs) -> list[tuple[str, str]]:
    """(stream name or output type, text) per output, a stream's consecutive chunks joined: a busy
    machine can send one printed line in two messages ("after", then "\n")."""
    merged = []
    for o in outputs:
        kind = o.name if o.output_type == "stream" else o.output_type
        text = o.text if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
        if merged and o.output_type == "stream" and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + text)
        else:
            merged.append((kind, text))
    return merged


def test_self_study_shows_one_line_and_run_all_reaches_the_end(monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    nb = student_version(fixture_master())
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()  # raises on any error
    assert kinds(nb.cells[2].outputs) == [("stdout", f"✗ double: {NOT_DONE}\n")]
    assert kinds(nb.cells[3].outputs) == [("stdout", "after\n")]

"""nbgrader grades honestly, with its own tools: generate_assignment, autograde (with its gradebook
database) and generate_feedback, on a tiny fixture notebook and on every master.

Cost: autograde executes each submission once. Every master is executed twice (all solutions,
and the untouched release, which also proves that Run All on a student copy reaches the end);
02, 03 and 05 twice more (wrong constants, and the first exercises solved). Two course folders,
each holding every master, grade at once, one per core: each lane takes the next unit of work
(`work_units`: a master, or a chain of masters that share runs) when it is free, largest first.
The first execution of a master trains what its experiments need into the runs cache; every later
one (the release, the probes, then `make test`'s strict nbval) reads it back.
`LORA_LAB_GRADE=02,05` grades only those masters (while developing); unset, every master is.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from lora_lab.course.assignments import (
    MASTERS,
    exercise_of,
    grading_timeout,
    has_solution,
    run_seconds,
    slowest_cell,
    student_version,
    write_course,
)
from lora_lab.course.exercises import NOT_DONE

pytest.importorskip("nbgrader")  # in the test extra: this runs under make test
from nbgrader.api import Gradebook  # noqa: E402

ENV = {"OMP_WAIT_POLICY": "PASSIVE", "LORA_LAB_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1"}
ONLY = [p for p in os.environ.get("LORA_LAB_GRADE", "").split(",") if p]
MASTER_PATHS = [p for p in sorted(MASTERS.glob("*.ipynb")) if not ONLY or p.stem[:2] in ONLY]
PROBED = [p for p in MASTER_PATHS if p.stem[:2] in ("02", "03", "05")]
STUB = re.compile(r"^([ \t]+)raise NotImplementedError\(\)", re.MULTILINE)


def nbgrader(root: Path, *args: str, wait: bool = True):
    """Run one nbgrader command in the course folder `root` (where its nbgrader_config.py is)."""
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}"]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # nbgrader runs alembic
    proc = subprocess.Popen(cmd, cwd=root, env={**os.environ, **ENV, "PATH": path}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return finish(proc) if wait else proc


def finish(proc) -> str:
    out, _ = proc.communicate()  # no wall-clock limit here: nbgrader's per-cell timeout bounds a cell
    assert proc.returncode == 0, out[-4000:]
    return out


def submit(root: Path, student: str, nb, name: str) -> None:
    folder = root / "submitted" / student / Path(name).stem
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)


def auto_scores(root: Path, student: str, assignment: str) -> dict[str, float]:
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(assignment, assignment, student)
        return {g.name: g.auto_score for g in notebook.grades if g.cell.cell_type == "code"}


def code_points(nb) -> dict[str, float]:
    """grade_id -> points of every autograded (code) grade cell, in order."""
    return {c.metadata.nbgrader["grade_id"]: float(c.metadata.nbgrader["points"]) for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


def released(root: Path, name: str):
    return nbformat.read(root / "release" / Path(name).stem / name, as_version=4)


# --- a tiny fixture notebook: every rule in seconds ----------------------------------------------

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
    outputs = graded.cells[2].outputs
    assert [o.output_type for o in outputs] == ["stream", "execute_result"]
    assert outputs[0].name == "stdout" and outputs[1].data["text/plain"] == "2"
    right = nbformat.read(fixture_course / "autograded" / "right" / "double" / "double.ipynb", as_version=4)
    assert [o.output_type for o in right.cells[2].outputs] == ["stream"]


def test_self_study_shows_one_line_and_run_all_reaches_the_end(monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    nb = student_version(fixture_master())
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()  # raises on any error
    assert [o.get("text") for o in nb.cells[2].outputs] == [f"✗ double: {NOT_DONE}\n"]
    assert nb.cells[3].outputs[0].text == "after\n"


# --- every master --------------------------------------------------------------------------------

def first_half_solved(master, release):
    """The release with the solution cells of its first ⌈n/2⌉ exercises taken from the master, and
    the grade_ids that must then score (later exercises may build on earlier ones, never the reverse)."""
    nb, grades = nbformat.from_dict(release), list(code_points(master))
    solved = grades[: (len(grades) + 1) // 2]
    for i, cell in enumerate(master.cells):
        if has_solution(cell) and cell.cell_type == "code":
            after = [c.metadata.nbgrader["grade_id"] for c in master.cells[i:] if c.metadata.get(
                "nbgrader", {}).get("grade") and c.cell_type == "code"]
            if after and after[0] in solved:
                nb.cells[i].source = cell.source
    return nb, set(solved)


def wrong_constants(release):
    nb = nbformat.from_dict(release)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = STUB.sub(r"\1return 0.0", cell.source)
    return nb


#: Masters whose experiments share runs (06 trains what 07, 10 and 12 read back): one unit of work,
#: graded in this order in one lane, so a cold runs cache never trains the same run twice at once.
CHAINS = [("06", "07", "10", "12")]


def cost(master: Path) -> float:
    """A master's share of the grading: its stored run time, twice for a probed master."""
    return run_seconds(master) * (2 if master in PROBED else 1)


def work_units(masters) -> list[list[Path]]:
    """The masters as units of work, each graded in order by one lane: every chain (of the masters
    selected), then each other master alone; the costliest unit first."""
    by_number = {m.stem[:2]: m for m in masters}
    units = [[by_number[n] for n in chain if n in by_number] for chain in CHAINS]
    chained = {m for unit in units for m in unit}
    units = [u for u in units if u] + [[m] for m in masters if m not in chained]
    return sorted(units, key=lambda unit: -sum(cost(m) for m in unit))


def grade_in_lanes(roots: list[Path], units: list[list[Path]]) -> dict[Path, Path]:
    """Autograde every unit, one `nbgrader autograde <master>` at a time per course folder in
    `roots`, each folder's lane taking the next unit when it is free. Returns master -> folder."""
    queue, root_of, errors, lock = list(units), {}, [], threading.Lock()

    def lane(root: Path) -> None:
        while True:
            with lock:
                if not queue or errors:
                    return
                unit = queue.pop(0)
            for master in unit:
                try:
                    nbgrader(root, "autograde", master.stem)
                except Exception as error:  # re-raised below, in the test's thread
                    with lock:
                        errors.append(error)
                    return
                root_of[master] = root

    threads = [threading.Thread(target=lane, args=(root,)) for root in roots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return root_of


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """Every submission autograded by two lanes at once (one per core), each with its own course
    folder holding every master: 'solutions' (every master as it is), 'release' (untouched), and on
    the probed masters 'wrong' and 'some'. Returns each master's course folder and the seconds."""
    timeout = grading_timeout(slowest_cell()[0])  # what write_course computes from every master
    chosen = tmp_path_factory.mktemp("masters")
    roots = [tmp_path_factory.mktemp(f"course_{i}") for i in (0, 1)]
    for master in MASTER_PATHS:
        shutil.copy(master, chosen / master.name)
    for root in roots:
        write_course(root, source_dir=chosen, timeout=timeout)
    for proc in [nbgrader(root, "generate_assignment", "*", "--force", wait=False) for root in roots]:
        finish(proc)
    for root in roots:
        for master in MASTER_PATHS:
            nb, release = nbformat.read(master, as_version=4), released(root, master.name)
            submit(root, "solutions", nb, master.name)
            submit(root, "release", release, master.name)
            if master in PROBED:
                submit(root, "wrong", wrong_constants(release), master.name)
                submit(root, "some", first_half_solved(nb, release)[0], master.name)
    start = time.perf_counter()
    root_of = grade_in_lanes(roots, work_units(MASTER_PATHS))
    seconds = time.perf_counter() - start
    print(f"\nautograde: {seconds:.0f} s wall for {len(MASTER_PATHS)} masters, {len(PROBED)} probed")
    return {"root": root_of, "seconds": seconds}


def ids(paths):
    return [p.stem for p in paths]


@pytest.mark.parametrize("master", MASTER_PATHS, ids=ids(MASTER_PATHS))
def test_all_solutions_score_full_marks(graded, master):
    points = code_points(nbformat.read(master, as_version=4))
    assert auto_scores(graded["root"][master], "solutions", master.stem) == points


@pytest.mark.parametrize("master", MASTER_PATHS, ids=ids(MASTER_PATHS))
def test_untouched_release_scores_zero_and_runs_to_the_end(graded, master):
    root = graded["root"][master]
    points = code_points(nbformat.read(master, as_version=4))
    assert auto_scores(root, "release", master.stem) == dict.fromkeys(points, 0.0)
    run = nbformat.read(root / "autograded" / "release" / master.stem / master.name, as_version=4)
    master_nb = nbformat.read(master, as_version=4)
    for cell, master_cell in zip(run.cells, master_nb.cells, strict=True):
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, f"Run All stopped before:\n{cell.source[:200]}"
        graded_cell = cell.metadata.get("nbgrader", {}).get("grade", False)
        for out in cell.outputs:
            if out.output_type == "error":
                assert out.ename == "NotImplementedError", f"{out.ename}: {out.evalue}\n{cell.source}"
        # the printed lines, whatever chunks the kernel sent them in (a busy machine splits a line)
        shown = "".join(o.get("text", "") for o in master_cell.get("outputs", [])
                        if o.output_type == "stream")
        for line in "".join(o.text for o in cell.outputs if o.output_type == "stream").splitlines():
            if line.startswith("✗") and graded_cell:
                assert "not done yet" in line, f"a check failed for another reason: {line}"
            elif line.startswith("✗"):  # a mistake the master shows on purpose
                assert line in shown.splitlines(), line


@pytest.mark.parametrize("master", PROBED, ids=ids(PROBED))
def test_wrong_constants_score_zero(graded, master):
    points = code_points(nbformat.read(master, as_version=4))
    assert auto_scores(graded["root"][master], "wrong", master.stem) == dict.fromkeys(points, 0.0)


@pytest.mark.parametrize("master", PROBED, ids=ids(PROBED))
def test_some_solved_score_exactly_their_points(graded, master):
    nb = nbformat.read(master, as_version=4)
    _, solved = first_half_solved(nb, released(graded["root"][master], master.name))
    expected = {gid: (p if gid in solved else 0.0) for gid, p in code_points(nb).items()}
    assert auto_scores(graded["root"][master], "some", master.stem) == expected


def test_feedback_carries_the_checkers_message(graded):
    exercises = {m: [exercise_of(c) for c in nbformat.read(m, as_version=4).cells if c.cell_type == "code"
                     and c.metadata.get("nbgrader", {}).get("grade")] for m in MASTER_PATHS}
    master = next((m for m in MASTER_PATHS if exercises[m]), None)
    if master is None:
        pytest.skip("no graded master selected")
    root = graded["root"][master]
    nbgrader(root, "generate_feedback", master.stem, "--student=release")
    html = (root / "feedback" / "release" / master.stem / f"{master.stem}.html").read_text()
    assert f"✗ {exercises[master][0]}: not done yet" in html


@pytest.mark.parametrize("master", sorted(MASTERS.glob("*.ipynb")), ids=ids(sorted(MASTERS.glob("*.ipynb"))))
def test_every_grade_cell_ends_with_the_check_that_scores_it(master):
    """Only the cell's result is read as its score: a grade cell must end with a checker call."""
    for cell in nbformat.read(master, as_version=4).cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            last = ast.parse(cell.source).body[-1]
            call = last.value if isinstance(last, ast.Expr) else None
            name = getattr(getattr(call, "func", None), "id", None) or getattr(
                getattr(call, "func", None), "attr", "")
            checks = name.startswith("check") or name in ("run_cases", "combine")
            assert isinstance(call, ast.Call) and checks, f"{master.stem}: no check ends\n{cell.source}"

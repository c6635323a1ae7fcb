"""nbgrader grades honestly, with its own tools: generate_assignment, autograde (with its gradebook
database) and generate_feedback, on every master (the rules on a tiny notebook:
tests/test_nbgrader_fixture.py).

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
    write_course,
)

pytest.importorskip("nbgrader")  # in the test extra: this runs under make test
from nbgrader_tools import auto_scores, code_points, finish, nbgrader, released, submit  # noqa: E402

ONLY = [p for p in os.environ.get("LORA_LAB_GRADE", "").split(",") if p]
MASTER_PATHS = [p for p in sorted(MASTERS.glob("*.ipynb")) if not ONLY or p.stem[:2] in ONLY]
PROBED = [p for p in MASTER_PATHS if p.stem[:2] in ("02", "03", "05")]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "nbgrader"
STUB = re.compile(r"^([ \t]+)raise NotImplementedError\(\)", re.MULTILINE)


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


def grade_in_lanes(roots: list[Path], units: list[list[Path]], log: list | None = None) -> dict[Path, Path]:
    """Autograde every unit, one `nbgrader autograde <master>` at a time per course folder in
    `roots`, each folder's lane taking the next unit when it is free. Returns master -> folder;
    appends (lane, master, start, seconds) to `log` for each autograde."""
    queue, root_of, errors, lock = list(units), {}, [], threading.Lock()
    log, t0 = [] if log is None else log, time.perf_counter()

    def lane(root: Path) -> None:
        while True:
            with lock:
                if not queue or errors:
                    return
                unit = queue.pop(0)
            for master in unit:
                start = time.perf_counter()
                try:
                    nbgrader(root, "autograde", master.stem)
                except Exception as error:  # re-raised below, in the test's thread
                    with lock:
                        errors.append(error)
                    return
                root_of[master] = root
                log.append((roots.index(root), master.stem, start - t0, time.perf_counter() - start))

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
    # twice the margin of the teacher's kit (write_course): here two masters execute at once beside
    # the other test files on 2 cores, and a fresh-clone run timed 09's training cell (stored 169 s)
    # out at the kit's 360 s
    timeout = grading_timeout(slowest_cell()[0], margin=4.0)
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
    start, log = time.perf_counter(), []
    root_of = grade_in_lanes(roots, work_units(MASTER_PATHS), log)
    seconds = time.perf_counter() - start
    write_lane_log(log, seconds)
    return {"root": root_of, "seconds": seconds}


def write_lane_log(log: list, seconds: float) -> None:
    """Where the grading time went, for whoever tunes it: test-artifacts/nbgrader/lanes.txt."""
    lines = [f"autograde: {seconds:.0f} s wall for {len(MASTER_PATHS)} masters, {len(PROBED)} probed"]
    lines += [f"lane {lane}  {stem:28s} from {at:6.0f} s  {took:6.0f} s" for lane, stem, at, took in
              sorted(log, key=lambda row: (row[0], row[2]))]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "lanes.txt").write_text("\n".join(lines) + "\n")


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

"""Student copies: solutions stubbed, hidden tests gone, outputs cleared; the teacher's kit.
That the student copies still run to the end is proved by nbgrader's autograde of the untouched
release in tests/test_nbgrader.py (one execution per master serves both)."""

import re
from pathlib import Path

import nbformat
import pytest

from lora_lab.course.assignments import (
    BEGIN,
    END,
    MASTERS,
    exercise_table,
    grading_timeout,
    has_solution,
    prose_markers,
    slowest_cell,
    strip_solutions,
    student_version,
    tag_nbgrader,
    write_course,
    write_student_copies,
)

CODE = """def f(x):
    ### BEGIN SOLUTION
    secret_line = x * 2
    return secret_line
    ### END SOLUTION
"""


def test_strip_solutions_keeps_indentation_and_stubs():
    out = strip_solutions(CODE)
    assert "secret_line" not in out
    assert "    # YOUR CODE HERE\n    raise NotImplementedError()" in out
    compile(out, "<student>", "exec")


def test_strip_markdown_answer_and_hidden_tests():
    md = "Why?\n\n### BEGIN SOLUTION\nBecause B = 0.\n### END SOLUTION\n"
    assert strip_solutions(md, markdown=True) == "Why?\n\nYOUR ANSWER HERE\n"
    hidden = "check(f)\n### BEGIN HIDDEN TESTS\nassert f(1) == 2\n### END HIDDEN TESTS\nprint('ok')"
    assert strip_solutions(hidden) == "check(f)\nprint('ok')"


def _toy_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Toy"),
                nbformat.v4.new_code_cell(CODE),
                nbformat.v4.new_code_cell("check_f(f)"),
                nbformat.v4.new_code_cell("print(1)")]
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    return nb


def test_tag_nbgrader_marks_solution_and_check_cells():
    nb = _toy_notebook()
    assert tag_nbgrader(nb, prefix="toy") == 2
    sol, grade = nb.cells[1].metadata["nbgrader"], nb.cells[2].metadata["nbgrader"]
    assert sol["solution"] and not sol["grade"] and not sol["locked"]
    assert grade["grade"] and grade["locked"] and grade["points"] == 1
    assert sol["grade_id"] != grade["grade_id"]
    assert "nbgrader" not in nb.cells[3].metadata


def test_student_version_does_not_touch_the_master():
    nb = _toy_notebook()
    student = student_version(nb)
    assert "secret_line" in nb.cells[1].source
    assert nb.cells[3].outputs
    assert not student.cells[3].outputs
    assert "secret_line" not in student.cells[1].source


def test_write_student_copies_rejects_bad_folders(tmp_path):
    with pytest.raises(ValueError, match="source_dir must hold .ipynb notebooks"):
        write_student_copies(tmp_path / "out", source_dir=tmp_path)
    with pytest.raises(ValueError, match="out_dir must differ"):
        write_student_copies(MASTERS, source_dir=MASTERS)


def _solution_lines(nb) -> set[str]:
    lines = set()
    for cell in nb.cells:
        if has_solution(cell):
            for region in re.findall(rf"{BEGIN}(.*?){END}", cell.source, re.DOTALL):
                lines |= {ln.strip() for ln in region.splitlines() if len(ln.strip()) > 12}
    return lines


MASTER_PATHS = sorted(MASTERS.glob("*.ipynb"))


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    write_student_copies(out)
    return out


@pytest.mark.parametrize("master", MASTER_PATHS, ids=[p.stem for p in MASTER_PATHS])
def test_student_copy_is_clean(master, student_dir):
    student = nbformat.read(student_dir / master.name, as_version=4)
    nbformat.validate(student)
    text = "\n".join(c.source for c in student.cells)
    master_nb = nbformat.read(master, as_version=4)
    shown = "\n".join(strip_solutions(c.source) for c in master_nb.cells)  # lines taught openly
    leaked = [ln for ln in _solution_lines(master_nb) if ln in text and ln not in shown]
    assert not leaked, f"solution lines leaked into the student copy: {leaked[:3]}"
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


@pytest.mark.parametrize("master", MASTER_PATHS, ids=[p.stem for p in MASTER_PATHS])
def test_masters_carry_nbgrader_metadata(master):
    nb = nbformat.read(master, as_version=4)
    ids = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if has_solution(cell):
            assert meta and meta["solution"], f"untagged solution cell:\n{cell.source[:200]}"
        if meta:
            ids.append(meta["grade_id"])
    assert len(ids) == len(set(ids)), "grade_id values must be unique"


def test_has_solution_needs_marker_lines_not_prose():
    prose = nbformat.v4.new_markdown_cell(f"Answers sit between `{BEGIN}` and `{END}`.")
    assert not has_solution(prose) and prose_markers(prose.source) == [prose.source]
    assert has_solution(nbformat.v4.new_code_cell(CODE)) and prose_markers(CODE) == []


@pytest.mark.parametrize("master", MASTER_PATHS, ids=[p.stem for p in MASTER_PATHS])
def test_masters_are_safe_for_nbgrader_and_tagged_by_the_rule(master):
    nb = nbformat.read(master, as_version=4)
    bad = [line for cell in nb.cells for line in prose_markers(cell.source)]
    assert not bad, f"nbgrader would take these lines for markers: {bad[:2]}"
    retagged = nbformat.read(master, as_version=4)
    for cell in retagged.cells:
        cell.metadata.pop("nbgrader", None)
    tag_nbgrader(retagged, prefix=master.stem[:2])
    for i, (cell, again) in enumerate(zip(nb.cells, retagged.cells, strict=True)):
        assert cell.metadata.get("nbgrader") == again.metadata.get("nbgrader"), f"cell {i}"


def test_nbgrader_generate_assignment_agrees_with_our_student_copies(tmp_path):
    """nbgrader itself (generate_assignment, no database) takes every master as it is, and the
    student notebooks it releases equal ours, cell for cell."""
    import shutil
    import subprocess
    import sys

    pytest.importorskip("nbgrader")  # in the test extra: this runs under make test
    source = tmp_path / "source" / "lora_lab"
    source.mkdir(parents=True)
    for master in MASTER_PATHS:
        shutil.copy(master, source / master.name)
    done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "lora_lab", "--no-db",
                           "--force", f"--CourseDirectory.root={tmp_path}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for master in MASTER_PATHS:
        theirs = nbformat.read(tmp_path / "release" / "lora_lab" / master.name, as_version=4)
        ours = student_version(nbformat.read(master, as_version=4))
        assert len(theirs.cells) == len(ours.cells), master.name
        for i, (a, b) in enumerate(zip(ours.cells, theirs.cells, strict=True)):
            assert a.source == b.source, f"{master.name} cell {i}"
            assert not b.get("outputs"), f"{master.name} cell {i} kept outputs"
        locked = [c for c in theirs.cells if c.metadata.get("nbgrader", {}).get("grade")
                  and c.cell_type == "code"]
        assert all(c.metadata["nbgrader"]["locked"] for c in locked), master.name
        assert all("checksum" in c.metadata["nbgrader"] for c in locked), master.name


def test_points_come_from_the_grade_cells_points_line():
    nb = _toy_notebook()
    nb.cells[2].source = "# points: 3\ncheck_f(f)"
    nb.cells.insert(3, nbformat.v4.new_markdown_cell(f"<!-- points: 2.5 -->\n{BEGIN}\nB = 0.\n{END}"))
    tag_nbgrader(nb)
    assert nb.cells[2].metadata["nbgrader"]["points"] == 3
    assert nb.cells[3].metadata["nbgrader"]["points"] == 2.5


def test_tag_nbgrader_also_tags_run_cases_and_hidden_test_cells():
    nb = _toy_notebook()
    nb.cells[2].source = "run_cases('f', f, CASES)"
    assert tag_nbgrader(nb) == 2 and nb.cells[2].metadata["nbgrader"]["grade"]


def test_exercise_table_lists_checkers_and_points(tmp_path):
    nb = _toy_notebook()
    nb.cells[2].source = "# points: 2\nfrom x import check_f\ncheck_f(f)"
    tag_nbgrader(nb)
    nbformat.write(nb, tmp_path / "07_toy.ipynb")
    assert exercise_table(tmp_path).splitlines()[2] == "| `07_toy` | `f` 2 | 2 |"


def test_readme_table_of_exercises_is_the_masters():
    readme = (MASTERS.parent / "README.md").read_text()
    table = readme.split("<!-- exercise-table -->\n")[1].split("<!-- /exercise-table -->")[0]
    assert table == exercise_table(), "run `python -m lora_lab exercise-table` and paste it into README"


def test_slowest_cell_reads_the_stored_execution_times(tmp_path):
    nb = _toy_notebook()
    nb.cells[3].metadata["execution"] = {"iopub.execute_input": "2026-11-29T09:58:20.500000Z",
                                         "shell.execute_reply": "2026-11-29T09:58:32.750000Z"}
    nbformat.write(nb, tmp_path / "01_toy.ipynb")
    assert slowest_cell(tmp_path) == (12.25, "01_toy cell 3")
    assert grading_timeout(12.25) == 60 and grading_timeout(630) == 1260
    with pytest.raises(ValueError, match="slowest_seconds must be a number >= 0, got -1"):
        grading_timeout(-1)
    with pytest.raises(ValueError, match="margin must be >= 1"):
        grading_timeout(5, margin=0.5)


def test_write_course_lays_out_one_assignment_per_master(tmp_path):
    written = write_course(tmp_path / "course", timeout=120)
    config = (tmp_path / "course" / "nbgrader_config.py").read_text()
    assert "c.Execute.timeout = 120" in config and "c.CourseDirectory.course_id = 'lora_lab'" in config
    compile(config, "nbgrader_config.py", "exec")
    from traitlets.config import Config

    loaded = Config()
    exec(compile(config, "nbgrader_config.py", "exec"), {"get_config": lambda: loaded})
    # what nbgrader's Execute preprocessor reads: the per-cell timeout, and time for late outputs
    assert loaded.Execute.timeout == 120 and loaded.Execute.iopub_timeout >= 30
    # ... and nbgrader's own Execute takes every setting (a misspelt trait would only warn)
    nbgrader_execute = pytest.importorskip("nbgrader.preprocessors").Execute(config=loaded)
    assert (nbgrader_execute.timeout, nbgrader_execute.shutdown_kernel) == (120, "immediate")
    assert set(loaded.Execute) <= set(nbgrader_execute.trait_names())
    for master in MASTER_PATHS:
        copied = tmp_path / "course" / "source" / master.stem / master.name
        assert copied.read_bytes() == master.read_bytes()
    assert len(written) == len(MASTER_PATHS) + 1
    with pytest.raises(ValueError, match="timeout must be a positive int"):
        write_course(tmp_path / "c2", timeout=0)
    with pytest.raises(ValueError, match="course_dir must be a folder other than the masters'"):
        write_course(MASTERS)

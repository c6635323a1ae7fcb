"""Running nbgrader's own commands in a course folder, shared by tests/test_nbgrader.py (every
master) and tests/test_nbgrader_fixture.py (a tiny fixture notebook)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

ENV = {"OMP_WAIT_POLICY": "PASSIVE", "LORA_LAB_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1"}


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
    """grade_id -> the points nbgrader's gradebook gave each code grade cell of one submission."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(assignment, assignment, student)
        return {g.name: g.auto_score for g in notebook.grades if g.cell.cell_type == "code"}


def code_points(nb) -> dict[str, float]:
    """grade_id -> points of every autograded (code) grade cell, in order."""
    return {c.metadata.nbgrader["grade_id"]: float(c.metadata.nbgrader["points"]) for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


def released(root: Path, name: str):
    return nbformat.read(root / "release" / Path(name).stem / name, as_version=4)

"""Every slider in the course works in real JupyterLab: headless Chromium opens each notebook
whose code builds sliders, runs all cells, moves each slider by keyboard and by drag (and each
dropdown by keyboard and by selection), and checks that the text and the image beside it changed.
Self-check notebooks prove the check can fail."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from slider_driver import (
    CONTROLS,
    RUN_ALL_TIMEOUT,
    TIMEOUT,
    DidNotChange,
    check_control,
    error_outputs,
    open_notebook,
    run_all,
)
from slider_notebooks import (
    NOTEBOOKS,
    UNWIRE_CALLBACKS,
    copy_without_outputs,
    creates_sliders,
    self_check_notebook,
    slider_notebooks,
)

COURSE = [p.name for p in slider_notebooks(NOTEBOOKS)]
# the checker gives a broken slider this long to (not) change: nothing is coming, so keep it short
BROKEN_TIMEOUT = 15.0


def run_notebook(page, server, name: str) -> int:
    """Open `name`, run all its cells, assert no cell failed; return how many controls it shows."""
    open_notebook(page, server, name, TIMEOUT)
    run_all(page, RUN_ALL_TIMEOUT)
    assert error_outputs(page) == [], f"{name}: a cell failed"
    return page.locator(CONTROLS).count()


def check_all_controls(page, name: str, n: int, shots: Path, timeout: float = TIMEOUT) -> None:
    """Check each of the notebook's `n` controls; log every move to shots/moves.txt."""
    stem = Path(name).stem
    for i in range(n):
        for m in check_control(page, i, shots, f"{stem}-control{i}", timeout):
            line = (f"{name} {m['kind']} {i} {m['label']!r} in {m['box']}: {m['move']}: "
                    f"{m['from']} -> {m['to']}, the box changed")
            shots.mkdir(parents=True, exist_ok=True)  # another run may have emptied it
            with (shots / "moves.txt").open("a") as log:
                log.write(line + "\n")
    assert error_outputs(page) == [], f"{name}: moving a slider made a cell show a traceback"


def log_expected_failure(folder: Path, name: str, error: Exception) -> None:
    """Keep the message a deliberately broken slider produced, as evidence the check can fail."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "expected-failures.txt").open("a") as log:
        log.write(f"{name}: {error}\n")


def test_discovery_sees_sliders_in_code_not_in_prose(tmp_path):
    self_check_notebook(tmp_path / "01_with.ipynb", ("working",))
    self_check_notebook(tmp_path / "03_interact.ipynb", (), interact=True)
    prose = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("Move the IntSlider( below"),
                                            nbformat.v4.new_code_cell("# an interactive plot\n1 + 1")])
    nbformat.write(prose, tmp_path / "02_without.ipynb")
    assert creates_sliders(tmp_path / "01_with.ipynb")
    assert not creates_sliders(tmp_path / "02_without.ipynb")
    assert [p.name for p in slider_notebooks(tmp_path)] == ["01_with.ipynb", "03_interact.ipynb"]


def test_the_course_has_slider_notebooks():
    assert COURSE, f"no notebook in {NOTEBOOKS} builds a slider, but the course promises rank sliders"


@pytest.mark.browser
@pytest.mark.parametrize("name", COURSE)
def test_every_control_changes_what_depends_on_it(name, page, lab_server, shots):
    n = run_notebook(page, lab_server, name)
    assert n > 0, f"{name} builds controls in its code, but no slider or dropdown appeared in JupyterLab"
    check_all_controls(page, name, n, shots)


@pytest.mark.browser
def test_self_check_working_controls_pass(page, lab_server, shots):
    n = run_notebook(page, lab_server, "selfcheck_working.ipynb")
    assert n == 3  # the lora-lab-selfcheck box's slider, the interact box's slider and dropdown
    check_all_controls(page, "selfcheck_working.ipynb", n, shots)


@pytest.mark.browser
def test_self_check_broken_callbacks_fail(page, lab_server, shots):
    name = "selfcheck_broken.ipynb"
    assert run_notebook(page, lab_server, name) == 2
    for i, stale in enumerate(["its image did not change", "its text and image did not change"]):
        with pytest.raises(DidNotChange, match=stale) as failure:
            check_control(page, i, shots / "selfcheck-broken", f"selfcheck_broken-control{i}", BROKEN_TIMEOUT)
        log_expected_failure(shots / "selfcheck-broken", name, failure.value)


@pytest.mark.browser
@pytest.mark.skipif(not os.environ.get("LORA_LAB_BROWSER_MUTANTS"),
                    reason="set LORA_LAB_BROWSER_MUTANTS=1 to prove each course slider's check can fail")
@pytest.mark.parametrize("name", COURSE)
def test_course_controls_fail_when_unwired(name, page, lab_server, lab_root, shots):
    """Each course control, with its callback unwired in a copy, must fail the check."""
    mutant = f"unwired_{name}"
    copy_without_outputs(NOTEBOOKS / name, lab_root / mutant, extra_cells=(UNWIRE_CALLBACKS,))
    n = run_notebook(page, lab_server, mutant)
    assert n > 0
    for i in range(n):
        with pytest.raises(DidNotChange, match="did not change") as failure:
            check_control(page, i, shots / "unwired", f"{Path(name).stem}-control{i}", BROKEN_TIMEOUT)
        log_expected_failure(shots / "unwired", mutant, failure.value)

"""Notebook 08's stored timing run is one the lesson can rest on: the merged/base ratio it shows lies
inside the band its prose states (issue 19: a stored run once showed merged ×7.92 and drew it)."""

import json
import re
from pathlib import Path

from lora_lab.lora.deploy import MERGED_BAND

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "08_deploy_and_switch.ipynb"
#: the run issue 19 found stored, as it was printed
BAD_RUN = ("batch 32: base 3.58 ms · LoRA, unmerged ×7.99 · LoRA, merged ×7.92 · Adapter-L (mlp) ×15.72 · "
           "Adapter-H (attn, mlp) ×5.68\nbatch 1: base 0.87 ms · LoRA, unmerged ×1.36 · LoRA, merged ×1.03 · "
           "Adapter-L (mlp) ×1.08 · Adapter-H (attn, mlp) ×1.14\n")


def _cells() -> list[dict]:
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]


def _text(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def stated_band(cells: list[dict]) -> tuple[float, float]:
    """The band the prose states for merged ÷ base ("between ×0.90 and ×1.10")."""
    prose = "\n".join(_text(c) for c in cells if c["cell_type"] == "markdown")
    found = set(re.findall(r"merged ÷ base must come out between ×(\d+\.\d+) and ×(\d+\.\d+)", prose))
    assert len(found) == 1, f"the prose must state one band for merged ÷ base, found {sorted(found)}"
    low, high = found.pop()
    return float(low), float(high)


def timing_output(cells: list[dict]) -> str:
    """The stored text output of the cell that runs `time_ratios`."""
    cell = next(c for c in cells if c["cell_type"] == "code" and "time_ratios(" in _text(c))
    return "".join("".join(o["text"]) for o in cell["outputs"] if o["output_type"] == "stream")


def merged_ratios(output: str) -> dict[str, float]:
    """Setting -> the merged ÷ base ratio a timing output prints."""
    return {label: float(r) for label, r in
            re.findall(r"^(batch \d+):.*?LoRA, merged ×(\d+\.\d+)", output, flags=re.MULTILINE)}


def outside(ratios: dict[str, float], band: tuple[float, float]) -> list[str]:
    return [label for label, r in ratios.items() if not band[0] <= r <= band[1]]


def test_the_prose_states_the_package_band():
    assert stated_band(_cells()) == MERGED_BAND


def test_the_stored_run_shows_merged_inside_the_stated_band():
    cells = _cells()
    output = timing_output(cells)
    ratios = merged_ratios(output)
    assert set(ratios) == {"batch 32", "batch 1"}, f"no merged ratios found in the stored output:\n{output}"
    bad = outside(ratios, stated_band(cells))
    assert not bad, f"stored merged ÷ base is outside the stated band at {bad}: rerun 08 when quiet"
    assert "check: merged ÷ base" in output and "check failed" not in output


def test_the_stored_figure_is_drawn_only_for_a_clean_run():
    cells = _cells()
    figure = next(c for c in cells if c["cell_type"] == "code" and "plot_latency(" in _text(c))
    images = [o for o in figure["outputs"] if "image/png" in o.get("data", {})]
    assert len(images) == 1


def test_the_bad_run_of_issue_19_would_fail():
    ratios = merged_ratios(BAD_RUN)
    assert ratios == {"batch 32": 7.92, "batch 1": 1.03}
    assert outside(ratios, MERGED_BAND) == ["batch 32"]

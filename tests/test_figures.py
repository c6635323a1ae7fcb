"""`make figures` finds every figure, and what it writes are real PNG files."""

from pathlib import Path

import pytest

from lora_lab.course.figures import registry, write_all

ROOT = Path(__file__).resolve().parent.parent


def test_registry_lists_png_files_with_callables():
    figures = registry()
    assert len(figures) >= 10
    assert all(name.endswith(".png") and callable(fn) for name, fn in figures.items())


def test_every_committed_figure_is_still_produced():
    committed = {p.name for p in (ROOT / "figures").glob("*.png")}
    assert committed <= set(registry()), f"stale figures: {sorted(committed - set(registry()))}"


def test_write_all_writes_a_png(tmp_path):
    [path] = write_all(tmp_path, only=["lowrank_spectrum.png"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_all_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="only names unknown figures"):
        write_all(tmp_path, only=["nope.png"])

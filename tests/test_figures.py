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


def test_the_registry_is_explicit_and_misses_no_views_module():
    import importlib
    import pkgutil

    import lora_lab.views.plots as plots
    from lora_lab.course import figures

    with_recipes = {m.name for m in pkgutil.iter_modules(plots.__path__)
                    if hasattr(importlib.import_module(f"{plots.__name__}.{m.name}"), "FIGURES")}
    assert with_recipes == {m.__name__.rsplit(".", 1)[1] for m in figures.VIEWS}
    assert "pkgutil" not in Path(figures.__file__).read_text()


def test_a_figure_listed_twice_is_an_error(monkeypatch):
    from lora_lab.course import figures

    monkeypatch.setitem(figures.TRAINED, "lowrank_spectrum.png", lambda: None)
    with pytest.raises(ValueError, match="'lowrank_spectrum.png' is listed twice"):
        registry()

"""The package's shape holds by itself: each floor imports only the floors below it, and no
module or function grows past what a reader can hold (STYLE.md: one concept per module)."""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lora_lab"
#: bottom to top; a module may import its own floor and the floors below it
FLOORS = ("_checks", "maths", "lora", "lab", "views", "course")
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 250, 40
#: the package itself, `python -m lora_lab`, and the kernel caps the package sets before any floor
#: imports torch
ENTRY_POINTS = ("lora_lab", "lora_lab.__main__", "lora_lab._kernels")


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _floor(dotted: str) -> int | None:
    """The floor of `lora_lab.<floor>.…`, or None for the package's own entry points."""
    parts = dotted.split(".")
    return FLOORS.index(parts[1]) if len(parts) > 1 and parts[1] in FLOORS else None


def _dotted(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(p for p in rel.parts if p != "__init__")


def _imports(path: Path) -> set[str]:
    """Every `lora_lab…` module the file imports, at any depth (lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lora_lab"):
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lora_lab")}
    return found


def upward_imports() -> list[str]:
    """'importer -> imported' for every import of a higher floor (empty when the rule holds)."""
    bad = []
    for path in _modules():
        me = _floor(_dotted(path))
        if me is None:
            continue
        for target in _imports(path):
            theirs = _floor(target)
            if theirs is None and target != "lora_lab":
                continue
            if theirs is None or theirs > me:
                bad.append(f"{_dotted(path)} -> {target}")
    return sorted(bad)


def test_every_module_lives_on_a_floor():
    loose = [_dotted(p) for p in _modules() if _floor(_dotted(p)) is None
             and _dotted(p) not in ENTRY_POINTS]
    assert not loose, f"put these under one of {FLOORS}: {loose}"


def test_no_floor_imports_a_floor_above_it():
    assert upward_imports() == []


def test_the_rule_catches_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "lora_lab"
    (fake / "maths").mkdir(parents=True)
    (fake / "maths" / "bad.py").write_text("from lora_lab.lab.runs import run\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert upward_imports() == ["lora_lab.maths.bad -> lora_lab.lab.runs",
                                "lora_lab.maths.bad -> lora_lab.lab.runs.run"]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: _dotted(p))
def test_module_is_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_dotted(path)} has {lines} lines (at most {MAX_MODULE_LINES})"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: _dotted(p))
def test_functions_are_short(path):
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{_dotted(path)}: split {long} (at most {MAX_FUNCTION_LINES} lines each)"

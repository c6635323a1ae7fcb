"""The install files agree with each other, and the repo has the shape DESIGN.md promises."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment_pip_deps() -> list[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:")
    deps = [ln.strip()[2:].strip() for ln in lines[start + 1:] if ln.strip().startswith("- ")]
    return [d for d in deps if d != "-e ."]


def test_environment_yml_matches_pyproject_dependencies():
    assert sorted(_environment_pip_deps()) == sorted(_pyproject()["project"]["dependencies"])


def test_every_dependency_is_pinned_in_constraints():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version
    project = _pyproject()["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    names = {re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[ ]", d)[0].lower()) for d in wanted}
    missing = sorted(n for n in names if n not in pins)
    assert not missing, f"add these to constraints.txt: {missing}"
    assert pins["torch"] == "2.13.0", "the CPU wheel on this machine kind is torch 2.13.0"


def test_top_level_layout():
    for path in ["README.md", "environment.yml", "pyproject.toml", "Makefile", ".ci/run",
                 "notebooks", "lora_lab", "figures", "tests", "benchmarks"]:
        assert (ROOT / path).exists(), f"{path} is missing"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci/run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "set -e" in ci
    assert "make test" in readme


def test_nbval_is_strict():
    make = (ROOT / "Makefile").read_text()
    assert "--nbval " in make and "--nbval-lax" not in make


def test_readme_table_lists_exactly_the_notebooks():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- notebook-table -->")[1].split("<!-- /notebook-table -->")[0]
    listed = set(re.findall(r"\(notebooks/(\d\d_\w+)\.ipynb\)", table))
    present = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert listed == present


def test_package_docstring_maps_every_module():
    import lora_lab

    doc = lora_lab.__doc__
    package = ROOT / "lora_lab"
    per_topic = {"exercises", "plots", "widgets"}  # one submodule per topic: their own docstrings list them
    modules = sorted({p.stem for p in package.rglob("*.py")
                      if p.stem != "__init__" and p.parent.name not in per_topic}
                     | {p.parent.name for p in package.rglob("*/__init__.py")})
    missing = [m for m in modules if f"`{m}`" not in doc]
    assert not missing, f"add these to lora_lab/__init__.py's module map: {missing}"


def test_every_data_file_of_the_package_is_declared_package_data():
    """A data file not matched by [tool.setuptools.package-data] works in the editable install
    and is missing from a wheel (the Chinese message catalogue, the base checkpoint)."""
    globs = _pyproject()["tool"]["setuptools"]["package-data"]["lora_lab"]
    package = ROOT / "lora_lab"
    data = [p.relative_to(package) for p in package.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert data, "the package has data files (the checkpoint, the catalogue)"
    undeclared = [str(p) for p in data if not any(p.match(g) for g in globs)]
    assert not undeclared, f"add these to pyproject's package-data: {undeclared}"

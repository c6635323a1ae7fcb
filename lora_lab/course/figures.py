"""`python -m lora_lab figures`: draw every figure listed in a `lora_lab.views.plots.*` module's FIGURES."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import lora_lab.views.plots


def registry() -> dict:
    """File name -> figure function, gathered from every `lora_lab.views.plots` submodule."""
    found = {}
    for info in sorted(pkgutil.iter_modules(lora_lab.views.plots.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"lora_lab.views.plots.{info.name}")
        for name, fn in getattr(module, "FIGURES", {}).items():
            if name in found:
                raise ValueError(f"figure {name!r} is listed twice (in lora_lab.views.plots.{info.name})")
            found[name] = fn
    return found


def write_all(out_dir="figures", only: list[str] | None = None) -> list[Path]:
    """Draw and save the figures as PNG in `out_dir`; return the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lora_lab.course.notebook import setup_notebook

    setup_notebook(quiet=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = registry()
    unknown = sorted(set(only or ()) - set(figures))
    if unknown:
        raise ValueError(f"only names unknown figures {unknown}; known: {sorted(figures)}")
    written = []
    for name, fn in figures.items():
        if only and name not in only:
            continue
        fig, _ = fn()
        path = out / name
        fig.savefig(path, dpi=100, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        written.append(path)
    return written

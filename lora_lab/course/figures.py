"""`python -m lora_lab figures`: the recipes behind `make figures`, in one explicit registry.

A recipe is a function of no arguments that returns `(fig, ax)`. Figures that only draw keep their
recipes next to their plot functions (a `FIGURES` dict in `lora_lab.views.plots.<topic>`); the
recipes that train or load models live here, because views never train. `registry()` lists
both, explicitly: a new figure is one line here or in its topic's `FIGURES`.
"""

from __future__ import annotations

from pathlib import Path

from lora_lab.views.plots import attention, budget, deploy, lora_diagram, lowrank, variants

#: the views modules with a `FIGURES` dict: their recipes draw from arithmetic or an untrained model
VIEWS = (attention, budget, deploy, lora_diagram, lowrank, variants)


def alpha_over_r_figure():
    """The α/r figure of notebook 03 (d = 64, planted r* = 8, 10 Adam steps per rank and rule)."""
    from lora_lab.lab.planted import SCALING_RULES, planted_task, update_size
    from lora_lab.views.plots.layers import SCALING_RANKS, plot_scaling_vs_rank

    task = planted_task(d=64, r_true=8)
    return plot_scaling_vs_rank({rule: update_size(task, SCALING_RANKS, rule) for rule in SCALING_RULES})


def rank_sweep_figure():
    """Notebook 03's loss against LoRA rank (d = 32, r* = 4, ranks 1…16, 120 Adam steps each)."""
    from lora_lab.lab.planted import eckart_young_floor, planted_task, rank_sweep
    from lora_lab.views.plots.layers import SWEEP_RANKS, plot_rank_sweep

    task = planted_task(d=32, r_true=4)
    losses = rank_sweep(task, SWEEP_RANKS, lr=0.03, steps=120)
    floors = {r: eckart_young_floor(task, r) for r in SWEEP_RANKS}
    return plot_rank_sweep(losses, floors, r_true=4)


def _methods():
    """Loss and accuracy of head only, full fine-tuning and LoRA on digits 5–9 (notebook 06)."""
    from lora_lab.lab.runs import RunSpec, run
    from lora_lab.views.plots.experiments import plot_histories

    specs = [RunSpec(method="head"), RunSpec(method="full"), RunSpec(method="lora")]
    return plot_histories({s.label(): run(s).history for s in specs})


def _reference() -> dict:
    from lora_lab.lab import ablations

    rows = ablations.compare_methods()
    return {"full fine-tuning": rows[1]["accuracy"], "head only": rows[0]["accuracy"]}


def _rank():
    """The rank ablation, α fixed vs α = r (notebook 06)."""
    from lora_lab.lab import ablations
    from lora_lab.views.plots.experiments import plot_rank_ablation

    alpha_r = ablations.rank_ablation(seeds=(0,), alpha_equals_r=True)
    return plot_rank_ablation(ablations.rank_ablation(), alpha_r, _reference())


def _weight_types():
    from lora_lab.lab import ablations
    from lora_lab.views.plots.experiments import plot_weight_types

    return plot_weight_types(ablations.weight_type_ablation())


def _low_data_intrinsic():
    from lora_lab.lab import ablations
    from lora_lab.views.plots.experiments import plot_low_data_and_intrinsic

    return plot_low_data_and_intrinsic(ablations.low_data(), ablations.intrinsic_curve(), _reference())


def _subspace(kind: str):
    """Notebook 07's figures from the six cached adapters: 'rank', 'seed' or 'amplification'."""
    from lora_lab.lab import readouts
    from lora_lab.views.plots import subspace

    runs = readouts.subspace_runs()
    if kind == "rank":
        return subspace.figure3(readouts.rank_panels(runs, layer=1))
    if kind == "seed":
        return subspace.figure4(readouts.seed_panels(runs, layer=1))
    return subspace.plot_amplification(readouts.amplification_rows(runs, layer=1))


def _pissa_spectrum():
    """The spectrum of the base ViT's W_q in block 0, its top 4 marked (notebook 10)."""
    from lora_lab.lab.models import base_model

    return variants.plot_pissa_spectrum(base_model().blocks[0].attn.q_proj.weight.detach(), 4)


def _intrinsic_dimension():
    from lora_lab.lab.intrinsic import intrinsic_curve
    from lora_lab.views.plots.intrinsic import plot_intrinsic_curve

    return plot_intrinsic_curve(intrinsic_curve())


#: the recipes that train or load
TRAINED = {
    "lora_linear_alpha_over_r.png": alpha_over_r_figure,
    "lora_linear_rank_vs_loss.png": rank_sweep_figure,
    "experiments_methods.png": _methods,
    "experiments_rank.png": _rank,
    "experiments_weight_types.png": _weight_types,
    "experiments_low_data_intrinsic.png": _low_data_intrinsic,
    "subspace_phi_r8_vs_r64.png": lambda: _subspace("rank"),
    "subspace_phi_seed_vs_seed.png": lambda: _subspace("seed"),
    "subspace_amplification.png": lambda: _subspace("amplification"),
    "variants_pissa_spectrum.png": _pissa_spectrum,
    "intrinsic_dimension.png": _intrinsic_dimension,
}


def registry() -> dict:
    """File name -> recipe, for every figure of `make figures`; a name listed twice is an error."""
    found = {}
    for source, figures in [(m.__name__, m.FIGURES) for m in VIEWS] + [(__name__, TRAINED)]:
        for name, fn in figures.items():
            if name in found:
                raise ValueError(f"figure {name!r} is listed twice (again in {source})")
            found[name] = fn
    return found


def write_all(out_dir="figures", only: list[str] | None = None) -> list[Path]:
    """Draw and save the figures as PNG in `out_dir` (all, or the names in `only`); return the paths."""
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

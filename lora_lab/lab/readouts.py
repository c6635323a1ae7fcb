"""What the notebooks read out of trained runs: adapter matrices, trained weights, the φ panels
of notebook 07 (the paper's Figures 3 and 4), Table 7's projections, and notebook 10's tables.

Everything here takes runs (`lora_lab.lab.runs`) and returns arrays, dicts or text; the figures
that draw them live in `lora_lab.views.plots`.
"""

from __future__ import annotations

import numpy as np
import torch

from lora_lab._checks import check_choice, check_int
from lora_lab.lab.runs import Run, cached_run
from lora_lab.maths.subspace import amplification, subspace_similarity

SUBSPACE_RANKS, SUBSPACE_SEEDS = (4, 8, 64), (0, 1)
_PARENT = {"q_proj": "attn", "k_proj": "attn", "v_proj": "attn", "o_proj": "attn", "fc1": "mlp", "fc2": "mlp"}


def subspace_runs(ranks=SUBSPACE_RANKS, seeds=SUBSPACE_SEEDS) -> dict[tuple[int, int], Run]:
    """(r, seed) -> the LoRA run on Wq, Wv of notebook 06's rank ablation, from the cache or trained."""
    return {(r, s): cached_run(method="lora", r=r, seed=s) for r in ranks for s in seeds}


def _module(run_: Run, layer: int, matrix: str):
    block = run_.model.blocks[check_int("layer", layer, low=0, high=len(run_.model.blocks) - 1)]
    return getattr(getattr(block, _PARENT[check_choice("matrix", matrix, _PARENT)]), matrix)


def adapter_matrices(run_: Run, layer: int, matrix: str) -> dict:
    """A (r, d_in), B (d_out, r), ΔW and the frozen W0 (d_out, d_in) of one adapted matrix,
    e.g. `adapter_matrices(run, 1, "q_proj")`, as float64 NumPy arrays."""
    lora = _module(run_, layer, check_choice("matrix", matrix, run_.spec.targets))
    tensors = {"A": lora.lora_A, "B": lora.lora_B, "delta_W": lora.delta_weight(), "W": lora.base.weight}
    return {name: t.detach().double().numpy() for name, t in tensors.items()}


@torch.no_grad()
def trained_weight(run_: Run, layer: int, matrix: str) -> np.ndarray:
    """The weight one matrix of the trained model applies (d_out, d_in), float64: W0 + ΔW for
    LoRA (DoRA: its rescaled weight), the trained weight itself for full fine-tuning."""
    module = _module(run_, layer, matrix)
    if callable(getattr(module, "weight", None)):  # DoRA: m ⊙ (W0 + sBA) / ‖W0 + sBA‖
        weight = module.weight()
    elif hasattr(module, "delta_weight"):
        weight = module.base.weight + (0 if module.merged else module.delta_weight())
    else:
        weight = module.weight
    return weight.detach().double().numpy()


# ---- notebook 07: the paper's Figures 3 and 4, Table 7 ----------------------------------------

def _a(run_: Run, layer: int, matrix: str) -> np.ndarray:
    return adapter_matrices(run_, layer, matrix)["A"]


def rank_panels(runs: dict, layer: int = 1) -> dict:
    """Figure 3: φ(A r=8 seed 0, A r=64 seed 1) for Wq and Wv, and a random pair of the same shapes."""
    rng = np.random.default_rng(0)
    panels = {f"W{m[0]}, block {layer}: A (r=8) vs A (r=64)":
              subspace_similarity(_a(runs[8, 0], layer, m), _a(runs[64, 1], layer, m))
              for m in ["q_proj", "v_proj"]}
    d_in = runs[8, 0].model.config.d_model
    panels[f"random Gaussian (8, {d_in}) vs (64, {d_in})"] = subspace_similarity(
        rng.standard_normal((8, d_in)), rng.standard_normal((64, d_in)))
    return panels


def seed_panels(runs: dict, layer: int = 1, top: int = 16) -> dict:
    """Figure 4: the top-left `top`×`top` corner of φ between two r=64 seeds, Wq, Wv and random."""
    rng = np.random.default_rng(1)
    panels = {f"W{m[0]}, block {layer}: r=64, seed 0 vs seed 1":
              subspace_similarity(_a(runs[64, 0], layer, m), _a(runs[64, 1], layer, m))[:top, :top]
              for m in ["q_proj", "v_proj"]}
    d_in = runs[64, 0].model.config.d_model
    panels["random vs random"] = subspace_similarity(rng.standard_normal((64, d_in)),
                                                     rng.standard_normal((64, d_in)))[:top, :top]
    return panels


def amplification_rows(runs: dict, layer: int = 1, matrix: str = "q_proj", ranks=(4, 64)) -> dict:
    """Table 7's analogue: r -> `maths.subspace.amplification` of the seed-0 run's W and ΔW."""
    rows = {}
    for r in ranks:
        m = adapter_matrices(runs[r, 0], layer, matrix)
        rows[r] = amplification(m["W"], m["delta_W"], r)
    return rows


# ---- notebook 10: runs grouped by label --------------------------------------------------------

def comparison_rows(runs: list[Run]) -> list[dict]:
    """Group runs by label: mean and spread of final accuracy over seeds, trainable parameters."""
    groups: dict[str, list[Run]] = {}
    for run_ in runs:
        groups.setdefault(run_.spec.label(), []).append(run_)
    rows = []
    for label, group in groups.items():
        accs = np.array([g.history.accuracy for g in group], dtype=np.float64)
        rows.append({"run": label, "seeds": len(group), "trainable": group[0].trainable,
                     "mean": float(accs.mean()), "min": float(accs.min()), "max": float(accs.max()),
                     "final_loss": sum(g.history.losses[-1] for g in group) / len(group)})
    return rows


def format_rows(rows: list[dict]) -> str:
    """`comparison_rows` as an aligned text table (last loss: the final step's loss, mean over seeds)."""
    head = f"{'run':<26}{'seeds':>6}{'trainable':>11}{'accuracy (mean)':>17}{'min–max':>15}{'last loss':>11}"
    lines = [head, "-" * len(head)]
    for r in rows:
        spread = f"{r['min']:.3f}–{r['max']:.3f}"
        lines.append(f"{r['run']:<26}{r['seeds']:>6}{r['trainable']:>11,}{r['mean']:>17.3f}{spread:>15}"
                     f"{r['final_loss']:>11.4f}")
    return "\n".join(lines)

"""The tables of notebook 06, each a list of row dicts built from `runs.cached_run` (trained once,
then read back from the runs cache, where notebooks 07, 10 and 12 find them too), beside the paper's
numbers (Tables 5 and 6 of Hu et al. 2021, kept in `maths.paper`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from lora_lab.lab.runs import RunSpec, cached_run
from lora_lab.maths import paper

QV = ("q_proj", "v_proj")
ALL4 = ("q_proj", "k_proj", "v_proj", "o_proj")
#: The weight-type ablation at an equal budget (paper Table 5): (targets, r), 8·d_model·2 per block.
WEIGHT_TYPES = [(("q_proj",), 8), (("k_proj",), 8), (("v_proj",), 8), (("o_proj",), 8),
                (("q_proj", "k_proj"), 4), (QV, 4), (ALL4, 2)]
RANKS = (1, 2, 4, 8, 64)

#: Paper Table 5 (GPT-3 175B, 18M trainable parameters): validation accuracy (%).
PAPER_TABLE5 = {ds: [row[ds] for row in paper.TABLE5] for ds in ("WikiSQL", "MultiNLI")}
#: Paper Table 6, the Wq,Wv rows (GPT-3 175B): accuracy (%) at r = 1, 2, 4, 8, 64.
PAPER_TABLE6_QV = {ds: list(paper.TABLE6[ds]["Wq,Wv"]) for ds in ("WikiSQL", "MultiNLI")}


def _row(spec: RunSpec) -> dict:
    h = cached_run(spec).history
    return {"label": spec.label(), "seed": spec.seed, "trainable": h.trainable, "accuracy": h.accuracy,
            "optimizer_bytes": h.optimizer_state_bytes, "ms_per_step": 1e3 * h.seconds_per_step}


def compare_methods(seed: int = 0, r: int = 4) -> list[dict]:
    """Head only vs full fine-tuning vs LoRA on Wq, Wv (rank r): one row each."""
    specs = [RunSpec(method="head", seed=seed), RunSpec(method="full", seed=seed),
             RunSpec(method="lora", targets=QV, r=r, seed=seed)]
    return [_row(s) for s in specs]


def _spread(rows: list[dict], key: str) -> list[dict]:
    """Group rows by `key`; mean, min and max accuracy over seeds."""
    out = {}
    for row in rows:
        out.setdefault(row[key], []).append(row)
    return [{key: k, "trainable": g[0]["trainable"], "accuracies": [x["accuracy"] for x in g],
             "mean": float(np.mean([x["accuracy"] for x in g])),
             "spread": max(x["accuracy"] for x in g) - min(x["accuracy"] for x in g)}
            for k, g in out.items()]


def rank_ablation(ranks: Sequence[int] = RANKS, seeds: Iterable[int] = (0, 1), alpha_equals_r: bool = False,
                  targets=QV) -> list[dict]:
    """LoRA on `targets` for each rank: α fixed (the paper's choice) or α = r. One row per rank."""
    rows = []
    for r in ranks:
        for seed in seeds:
            spec = RunSpec(method="lora", targets=targets, r=r, seed=seed,
                           **({"alpha": float(r)} if alpha_equals_r else {}))
            rows.append({**_row(spec), "r": r})
    return _spread(rows, "r")


def weight_type_ablation(seeds: Iterable[int] = (0, 1), types=WEIGHT_TYPES) -> list[dict]:
    """LoRA on each weight type at the same budget (paper Table 5). One row per weight type."""
    rows = [_row(RunSpec(method="lora", targets=t, r=r, seed=s)) for t, r in types for s in seeds]
    return _spread(rows, "label")


def low_data(fractions: Sequence[float] = (0.1, 0.3, 1.0), methods=("lora", "full"),
             seed: int = 0) -> list[dict]:
    """LoRA (Wq, Wv, r=4) and full fine-tuning on a share of the training images (same steps)."""
    return [{**_row(RunSpec(method=m, fraction=f, seed=seed)), "fraction": f, "method": m}
            for f in fractions for m in methods]


def intrinsic_curve(dims: Sequence[int] = (1, 16, 256, 4096, 32768), seed: int = 0) -> list[dict]:
    """Train only inside a random d-dimensional subspace of the pretrained weights (+ the head)."""
    return [{**_row(RunSpec(method="subspace", d=d, seed=seed)), "d": d} for d in dims]


def format_rows(rows: list[dict], columns: dict[str, str]) -> str:
    """A plain-text table: `columns` maps a row key to a format spec ('' for str())."""
    head = list(columns)
    cells = [[format(row[c], columns[c]) if columns[c] else str(row[c]) for c in head] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)

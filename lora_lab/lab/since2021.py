"""Notebook 12's measurements: what the field learned about LoRA after 2021, on the course's task
(the ViT pretrained on digits 0–4, adapted to digits 5–9).

Every run is a `RunSpec` trained by `cached_run` (a spec 06 or 10 trained is read back); a rate
equal to the course's default (`runs.LR`) is stored as `lr=None`, the way those notebooks ask for it.

Two scores per run: *learning* — accuracy on the 5–9 test images (the run's own new head), and
*remembering* — accuracy on the 0–4 test images through the adapted body and the pretrained head,
which fine-tuning never touched. Forgetting is the drop of the second from the base model's.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits
from torch import nn

from lora_lab._checks import check_choice
from lora_lab.lab.data import ADAPT_TASK, PRETRAIN_TASK, load_task
from lora_lab.lab.models import base_model
from lora_lab.lab.runs import LR, RunSpec, cached_run
from lora_lab.lab.since2021_cache import cached_values
from lora_lab.maths.intruders import THRESHOLD, TOP_K, best_match, count_intruders, scale_intruders
from lora_lab.maths.sweep import best_lr

SEEDS = (0, 1, 2)
#: Rate grids, factor 2 apart: each holds every seed's lowest point and both its neighbours.
FULL_LRS = (1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2)
LORA_LRS_R4 = (5e-3, 1e-2, 2e-2, 4e-2, 8e-2)
RANK_LRS = {1: (2.5e-3, 5e-3, 1e-2, 2e-2, 4e-2), 64: (1e-2, 2e-2, 4e-2)}  # LoRA α/r, other ranks
RSLORA_LRS = (2.5e-3, 5e-3, 1e-2)  # rsLoRA r=64: its multiplier α/√r = 1 asks for lower rates
QV = ("q_proj", "v_proj")
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("fc1", "fc2")
#: placement -> (targets, r): about 14,000 LoRA parameters each (r · Σ(d_in + d_out) over the matrices)
PLACEMENTS = {"attention": (ATTENTION, 7), "MLP": (MLP, 9), "all linear": (ATTENTION + MLP, 4)}


def spec(method: str = "lora", lr: float | None = None, **fields) -> RunSpec:
    """A RunSpec whose rate is None when it equals the course default (so cached runs are shared)."""
    check_choice("method", method, LR)
    if lr is not None and np.isclose(lr, LR[method], rtol=1e-12, atol=0.0):
        lr = None
    return RunSpec(method=method, lr=lr, **fields).checked()


def lr_grid(method: str, lrs: Iterable[float], seeds: Iterable[int] = SEEDS, **fields) -> list[RunSpec]:
    """One spec per (rate, seed), rates outermost."""
    return [spec(method, lr, seed=s, **fields) for lr in lrs for s in seeds]


@torch.no_grad()
def scores(model: nn.Module, head: nn.Linear | None = None) -> dict:
    """Target accuracy and test loss (the model's own head), source accuracy (the pretrained `head`
    on the model's body: how much of digits 0–4 the adapted body still serves)."""
    head = base_model().head if head is None else head
    target, source = load_task(ADAPT_TASK), load_task(PRETRAIN_TASK)
    model.eval()
    logits = model(target.x_test)  # (N, 5)
    src = head(model.features(source.x_test)).argmax(-1)  # (N,)
    return {"target_acc": float((logits.argmax(-1) == target.y_test).float().mean()),
            "target_loss": float(F.cross_entropy(logits, target.y_test)),
            "source_acc": float((src == source.y_test).float().mean())}


def base_source_accuracy() -> float:
    """Accuracy of the untouched pretrained model on the 0–4 test images (before any forgetting)."""
    task, model = load_task(PRETRAIN_TASK), base_model().eval()
    with torch.no_grad():
        return float((model(task.x_test).argmax(-1) == task.y_test).float().mean())


def fields(spec_: RunSpec) -> dict:
    """A table row's spec part: the fields that vary here and the run's rate."""
    return {"label": spec_.label(), "method": spec_.method, "r": spec_.r, "alpha": spec_.alpha,
            "targets": spec_.targets, "variant": spec_.variant, "seed": spec_.seed,
            "lr": spec_.learning_rate, "lora_plus_ratio": spec_.lora_plus_ratio}


def row(spec_: RunSpec, model: nn.Module, head: nn.Linear | None = None) -> dict:
    return {**fields(spec_), **scores(model, head)}  # one table row: its spec's fields and scores


def collect(specs: Iterable[RunSpec], run_fn: Callable = cached_run) -> list[dict]:
    """Train or load every spec (`run_fn(spec)` -> a Run) and score it: one row each. With the
    default `cached_run` the scores are kept beside the run (`since2021_cache`): read, not recomputed."""
    head = base_model().head
    if run_fn is not cached_run:
        return [row(s, run_fn(s).model, head) for s in specs]
    return [{**fields(s), **cached_values(s, "scores", lambda s=s: scores(cached_run(s).model, head))}
            for s in specs]


def group(rows: list[dict], key: Callable[[dict], object]) -> dict:
    """rows split by `key(row)`, in first-seen order."""
    out: dict = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def best_lrs(rows: list[dict], metric: str = "target_loss") -> dict[int, float]:
    """seed -> the best rate of that seed's sweep (lowest `metric`, refined by `best_lr`)."""
    out = {}
    for seed, rs in group(rows, lambda r: r["seed"]).items():
        rs = sorted(rs, key=lambda r: r["lr"])
        out[seed] = best_lr([r["lr"] for r in rs], [r[metric] for r in rs])
    return out


def mean_curve(rows: list[dict], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rates, mean, min, max) of `metric` over seeds, per rate (increasing)."""
    by_lr = group(sorted(rows, key=lambda r: r["lr"]), lambda r: r["lr"])
    vals = [np.array([r[metric] for r in rs]) for rs in by_lr.values()]
    return (np.array(list(by_lr)), np.array([v.mean() for v in vals]),
            np.array([v.min() for v in vals]), np.array([v.max() for v in vals]))


def lr_ratios(lora_rows: list[dict], full_rows: list[dict]) -> dict[int, float]:
    """seed -> best LoRA rate / best full fine-tuning rate (the seeds both sweeps share)."""
    lora, full = best_lrs(lora_rows), best_lrs(full_rows)
    return {s: lora[s] / full[s] for s in sorted(set(lora) & set(full))}


# ---- intruder dimensions of a trained run ------------------------------------------------------

def one_blas_thread(fn):
    """Run `fn` with NumPy's BLAS on one thread: its SVDs of 128×128 matrices are tens of times
    slower when OpenBLAS's threads compete for a busy 2-core CPU (the results are the same)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)
    return wrapper


def _adapted(model: nn.Module, targets) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules()
            if n.split(".")[-1] in targets and (hasattr(m, "delta_weight") or isinstance(m, nn.Linear))}


def weight_pairs(model: nn.Module, targets=QV, base: nn.Module | None = None) -> dict[str, tuple]:
    """name -> (W0, W) as float64 arrays for each matrix named in `targets`: W0 from the pretrained
    base, W = W0 + ΔW after adaptation (LoRA: base weight + (α/r)BA; full: the trained weight).
    Shapes: each (d_out, d_in)."""
    base = base_model() if base is None else base
    start = dict(base.named_modules())
    out = {}
    for name, m in _adapted(model, targets).items():
        W = m.base.weight + m.delta_weight() if hasattr(m, "delta_weight") else m.weight
        out[name] = (start[name].weight.detach().double().numpy(), W.detach().double().numpy())
    if not out:
        raise ValueError(f"targets {tuple(targets)!r} name no linear layer of the model")
    return out


@one_blas_thread
def intruder_count(model: nn.Module, targets=QV, k: int = TOP_K, threshold: float = THRESHOLD,
                   base: nn.Module | None = None) -> int:
    """Intruders among the top-k singular vectors, summed over the matrices named in `targets`."""
    return count_intruders(weight_pairs(model, targets, base).values(), k, threshold)


@one_blas_thread
def best_matches(model: nn.Module, name: str, k: int = TOP_K, base: nn.Module | None = None) -> np.ndarray:
    """For the top-k singular vectors of the adapted matrix `name` (e.g. 'blocks.1.attn.q_proj'),
    the best |cosine| with any singular vector of its W0.  Shapes: -> (k,)."""
    pairs = weight_pairs(model, (name.split(".")[-1],), base)
    if name not in pairs:
        raise ValueError(f"name must be one of {sorted(pairs)}, got {name!r}")
    return best_match(*pairs[name])[:k]


@one_blas_thread
@torch.no_grad()
def with_intruders_scaled(model: nn.Module, lam: float, targets=QV, k: int = TOP_K,
                          threshold: float = THRESHOLD, base: nn.Module | None = None) -> nn.Module:
    """A copy of `model` whose adapted matrices have their intruders' singular values times `lam`."""
    pairs = weight_pairs(model, targets, base)
    model = copy.deepcopy(model)
    for name, m in _adapted(model, targets).items():
        W = torch.as_tensor(scale_intruders(*pairs[name], lam, k, threshold), dtype=torch.float32)
        if hasattr(m, "delta_weight"):  # keep the adapter, move the frozen base: base + ΔW = W
            m.base.weight.copy_(W - m.delta_weight())
        else:
            m.weight.copy_(W)
    return model


def run_intruders(spec_: RunSpec, threshold: float = THRESHOLD, k: int = TOP_K) -> int:
    """`intruder_count` of the run `spec_` (its q, v matrices), kept beside the run."""
    return int(cached_values(spec_, f"intruders-k{k}-eps{threshold:g}", lambda: {
        "count": intruder_count(cached_run(spec_).model, k=k, threshold=threshold)})["count"])


def run_best_matches(spec_: RunSpec, name: str, k: int = TOP_K) -> np.ndarray:
    """`best_matches` of the run `spec_`'s matrix `name`, kept beside the run.  Shapes: -> (k,)."""
    return cached_values(spec_, f"matches-{name}-k{k}",
                         lambda: {"best": best_matches(cached_run(spec_).model, name, k)})["best"]


def run_scaled_scores(spec_: RunSpec, lam: float) -> dict:
    """`scores` of the run `spec_` with its intruders' singular values times `lam`, kept beside it."""
    return cached_values(spec_, f"scaled-k{TOP_K}-eps{THRESHOLD:g}-lam{lam:g}",
                         lambda: scores(with_intruders_scaled(cached_run(spec_).model, lam)))


# ---- the notebook's sweeps ---------------------------------------------------------------------

PLACEMENT_LRS = (1e-2,)  # the course's LoRA rate (q,v r=4's mean curve is lowest at 2e-2)
RANKS = (1, 4, 64)
LORA_PLUS_RATIO, LORA_PLUS_LRS = 16.0, (1.25e-3, 2.5e-3, 5e-3, 1e-2)


def sweeps() -> dict[str, list[RunSpec]]:
    """Every run of notebook 12 by name (LoRA+ apart, see `lora_plus_specs`)."""
    out = {"full": lr_grid("full", FULL_LRS), "LoRA r=4": lr_grid("lora", LORA_LRS_R4, r=4)}
    for r, lrs in RANK_LRS.items():
        out[f"LoRA r={r}"] = lr_grid("lora", lrs, r=r)
    out["rsLoRA r=64"] = lr_grid("lora", RSLORA_LRS, r=64, variant="rslora")  # α/√r; at r = 1 it is LoRA
    for name, (targets, r) in PLACEMENTS.items():
        out[name] = lr_grid("lora", PLACEMENT_LRS, r=r, targets=targets)
    return out


def lora_plus_specs(ratio: float = LORA_PLUS_RATIO) -> list[RunSpec]:
    """LoRA q,v r=4 with η_B = ratio · η_A, for each η_A of `LORA_PLUS_LRS` and seed."""
    return lr_grid("lora", LORA_PLUS_LRS, r=4, lora_plus_ratio=ratio)


def lora_parameters(targets, r: int, model: nn.Module | None = None) -> int:
    """A, B parameters of LoRA at rank r on every matrix named in `targets`: r · Σ(d_in + d_out)."""
    model = base_model() if model is None else model
    mods = [m for n, m in model.named_modules() if n.split(".")[-1] in targets and isinstance(m, nn.Linear)]
    if not mods:
        raise ValueError(f"targets {tuple(targets)!r} name no linear layer of the model")
    return r * sum(m.in_features + m.out_features for m in mods)


def at_best_rate(rows: list[dict], metric: str = "target_loss") -> list[dict]:
    """The rows (one per seed) of the rate whose mean `metric` over seeds is lowest."""
    lrs, mean, _, _ = mean_curve(rows, metric)
    best = lrs[int(np.argmin(np.where(np.isfinite(mean), mean, np.inf)))]
    return [r for r in rows if r["lr"] == best]

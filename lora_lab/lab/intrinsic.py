"""Intrinsic dimension, measured small (Li et al. 2018).

Train a model only inside a random d-dimensional subspace of its parameters: θ = θ0 + P z,
with θ0 (D,) and P (D, d) fixed and random and only z (d,) trained. The smallest d that reaches
90% of the accuracy of training all D parameters is the task's intrinsic dimension d_int90:
`intrinsic_curve` reads it off a fixed grid (so it can only name a grid point), `measure_d90`
searches for it (doubling, then bisection) and returns the bracket that pins it down.
The model is a small MLP on scikit-learn's bundled handwritten digits (no download).

A run is a deterministic function of its arguments and of this code, and its result is one test
accuracy, so each run is trained once and then read back from the runs cache:
`<cache>/runs/intrinsic-v<INTRINSIC_VERSION>-<digest>.safetensors` holds it as a float64 scalar
(bit for bit the float the training returned) with the arguments in its metadata; the digest
covers the arguments, INTRINSIC_VERSION and torch's version. A missing entry is a miss; one that
cannot be read (truncated, corrupt, another run's) is a miss with a warning; a miss trains and
rewrites the entry atomically.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import Tensor

from lora_lab._checks import check_int
from lora_lab.lab.cache import cache_dir, read_tensors, write_tensors
from lora_lab.lab.train import torch_threads

N_IN, N_CLASSES = 64, 10
#: Bump when the training code (`train_in_subspace` or anything it calls: the data split, the MLP,
#: the optimizer settings, `accuracy`) changes what given arguments produce.
INTRINSIC_VERSION = 1


def digit_split(seed: int = 0) -> dict[str, tuple[Tensor, Tensor]]:
    """The 1,797 digits shuffled and split in half: 'train' and 'test', x (n, 64) in [0, 1], y (n,)."""
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)  # (1797, 64)
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    half = len(y) // 2
    return {"train": (x[order[:half]], y[order[:half]]), "test": (x[order[half:]], y[order[half:]])}


def n_params(hidden: int) -> int:
    """D, the parameters of the MLP 64 -> hidden -> 10 (weights and biases)."""
    return hidden * N_IN + hidden + N_CLASSES * hidden + N_CLASSES


def mlp(theta: Tensor, x: Tensor, hidden: int) -> Tensor:
    """Logits of the MLP whose parameters are the flat vector θ.  Shapes: θ (D,), x (n, 64) -> (n, 10)."""
    w1, b1, w2, b2 = torch.split(theta, (hidden * N_IN, hidden, N_CLASSES * hidden, N_CLASSES))
    h = torch.relu(x @ w1.view(hidden, N_IN).t() + b1)  # (n, hidden)
    return h @ w2.view(N_CLASSES, hidden).t() + b2  # (n, 10)


def _train(params: Tensor, loss_fn, steps: int, lr: float) -> Tensor:
    params = params.clone().requires_grad_(True)
    opt = torch.optim.Adam([params], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(params).backward()
        opt.step()
    return params.detach()


def accuracy(theta: Tensor, x: Tensor, y: Tensor, hidden: int) -> float:
    """Share of correct predictions of the MLP θ on (x, y)."""
    with torch.no_grad():
        return float((mlp(theta, x, hidden).argmax(1) == y).float().mean())


def train_in_subspace(d: int | None, hidden: int = 32, steps: int = 200, seed: int = 0,
                      cache: bool = True) -> float:
    """Test accuracy after training θ = θ0 + P z (P (D, d) random, unit columns; only z trained).
    d=None trains all D parameters. Full-batch Adam; everything seeded by `seed`.  A run is trained
    once and then read from the runs cache (module docstring), bit for bit the same number;
    cache=False trains it again and leaves the cache alone."""
    hidden, steps = check_int("hidden", hidden, low=1), check_int("steps", steps, low=1)
    seed = check_int("seed", seed, low=0)
    if d is not None:
        d = check_int("d", d, low=1, high=n_params(hidden))
    if not isinstance(cache, bool):
        raise TypeError(f"cache must be True or False, got {cache!r} ({type(cache).__name__})")
    if not cache:
        return _train_in_subspace(d, hidden, steps, seed)
    settings = {"d": d, "hidden": hidden, "steps": steps, "seed": seed}
    found = load_accuracy(settings)
    if found is None:
        found = _train_in_subspace(d, hidden, steps, seed)
        save_accuracy(settings, found)
    return found


def _train_in_subspace(d: int | None, hidden: int, steps: int, seed: int) -> float:
    """The training behind `train_in_subspace`, with checked arguments and no cache."""
    D = n_params(hidden)
    data = digit_split(seed)
    x, y = data["train"]
    g = torch.Generator().manual_seed(seed)
    theta0 = torch.randn(D, generator=g) * 0.1
    with torch_threads(1):  # tiny matrices: a second thread only adds synchronisation
        if d is None:
            theta = _train(theta0, lambda t: F.cross_entropy(mlp(t, x, hidden), y), steps, lr=0.01)
        else:
            P = torch.randn(D, d, generator=g)  # (D, d)
            P = P / P.norm(dim=0, keepdim=True)
            z = _train(torch.zeros(d), lambda z: F.cross_entropy(mlp(theta0 + P @ z, x, hidden), y),
                       steps, lr=0.05)
            theta = theta0 + P @ z
        return accuracy(theta, *data["test"], hidden)


def intrinsic_curve(ds=(2, 5, 10, 20, 50, 100, 200, 500), hidden: int = 32, seed: int = 0,
                    measure: bool = True, cache: bool = True) -> dict:
    """{'d': ds, 'accuracy': test accuracy per d, 'full': training all D, 'D': D, 'd90_grid', 'd90'}.
    d90_grid is the smallest d in `ds` reaching 90% of the full accuracy (a grid point, so only a
    bound); with `measure`, d90 and d90_bracket come from `measure_d90`, else d90 = d90_grid.
    `cache` as in `train_in_subspace`."""
    full = train_in_subspace(None, hidden, seed=seed, cache=cache)
    accs = [train_in_subspace(d, hidden, seed=seed, cache=cache) for d in ds]
    reached = [d for d, a in zip(ds, accs, strict=True) if a >= 0.9 * full]
    out = {"d": list(ds), "accuracy": accs, "full": full, "D": n_params(hidden),
           "d90_grid": reached[0] if reached else None}
    if measure:
        found = measure_d90(hidden, seed, cache=cache)
        return {**out, "d90": found["d90"], "d90_bracket": found["bracket"]}
    return {**out, "d90": out["d90_grid"]}


def _bracket(acc, threshold: float, start: int, D: int) -> tuple[int, int]:
    """Double d from `start` until acc(d) >= threshold: (last d below, first d at or above)."""
    lo, hi = 0, start
    while acc(hi) < threshold:
        if hi == D:
            raise ValueError(f"no d <= D={D} reaches the threshold {threshold:.3f}")
        lo, hi = hi, min(2 * hi, D)
    return lo, hi


def measure_d90(hidden: int = 32, seed: int = 0, start: int = 25, resolution: float = 0.1,
                share: float = 0.9, cache: bool = True) -> dict:
    """Search for d_int90: double d from `start` until it reaches `share` of the full accuracy,
    then bisect until the bracket (lo, hi] is narrower than `resolution`·hi.  Returns {'d90': hi,
    'bracket': (lo, hi), 'threshold', 'full', 'D', 'tried': {d: accuracy}}.  Assumes accuracy
    grows with d (it does here, but it is not guaranteed); every run is seeded, and read from the
    runs cache unless cache=False (`train_in_subspace`)."""
    check_int("hidden", hidden, low=1)
    D = n_params(hidden)
    check_int("start", start, low=1, high=D)
    if not 0 < resolution < 1:
        raise ValueError(f"resolution must be in (0, 1), got {resolution!r}")
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    full = train_in_subspace(None, hidden, seed=seed, cache=cache)
    tried: dict[int, float] = {}

    def acc(d: int) -> float:
        if d not in tried:
            tried[d] = train_in_subspace(d, hidden, seed=seed, cache=cache)
        return tried[d]

    threshold = share * full
    lo, hi = _bracket(acc, threshold, start, D)
    while hi - lo > max(1, resolution * hi):
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if acc(mid) >= threshold else (mid, hi)
    return {"d90": hi, "bracket": (lo, hi), "threshold": threshold, "full": full, "D": D,
            "tried": dict(sorted(tried.items()))}


# ---- the runs cache: one float64 accuracy per run ---------------------------------------------

def _canonical(settings: dict) -> str:
    return json.dumps({"v": INTRINSIC_VERSION, "torch": torch.__version__, **settings}, sort_keys=True)


def entry_path(settings: dict) -> Path:
    """The cache file of the run with these arguments (a dict: d, hidden, steps, seed)."""
    if not isinstance(settings, dict):
        raise TypeError(f"settings must be a dict of the run's arguments, got {type(settings).__name__}")
    digest = hashlib.sha256(_canonical(settings).encode()).hexdigest()[:16]
    return cache_dir("runs") / f"intrinsic-v{INTRINSIC_VERSION}-{digest}.safetensors"


def load_accuracy(settings: dict) -> float | None:
    """The cached accuracy of these arguments, or None (no entry; or, with a warning, a bad one)."""
    path = entry_path(settings)
    if not path.exists():
        return None
    try:
        meta, tensors = read_tensors(path)
        value = tensors["accuracy"]
        if meta.get("settings") != _canonical(settings) or value.dtype != torch.float64 or value.numel() != 1:
            raise ValueError("the entry holds another run")
        return float(value.item())
    except Exception as error:  # a truncated or corrupt file (a kernel killed mid-write): a miss
        warnings.warn(f"unreadable cached intrinsic-dimension run {path.name} "
                      f"({type(error).__name__}: {error}): training it again", stacklevel=3)
        return None


def save_accuracy(settings: dict, accuracy: float) -> Path:
    """Write `accuracy` as the entry of these arguments (a float64 scalar, atomically)."""
    path = entry_path(settings)
    write_tensors(path, {"accuracy": torch.tensor(float(accuracy), dtype=torch.float64)},
                  {"settings": _canonical(settings)})
    return path

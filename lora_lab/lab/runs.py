"""Every adaptation run of the course, one system: adapt the pretrained ViT (digits 0–4) to 5–9.

`run(method=..., r=..., seed=...)` builds a fresh copy of the base with a new head, sets what
trains (head, full fine-tuning, LoRA and its variants on any targets, a random subspace), trains
it deterministically and keeps the `Run` for the session; `cached_run` also keeps its trained
tensors in the `runs/` cache (`lora_lab.lab.cache`). LoRA layers are built with `fused=True`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from lora_lab._checks import check_choice, check_int, check_positive
from lora_lab.lab.cache import cache_dir, read_tensors, write_tensors
from lora_lab.lab.data import ADAPT_TASK, PRETRAIN_TASK, TASKS, load_task
from lora_lab.lab.models import base_model, checkpoint_path, file_sha256, new_head, quantize_body_nf4
from lora_lab.lab.random_subspace import SubspaceModel
from lora_lab.lab.train import History, fit
from lora_lab.lora.inject import add_lora
from lora_lab.lora.variants import VARIANTS, add_variant

METHODS = ("head", "full", "lora", "subspace")
BASES = ("full", "nf4")  # the frozen body in full precision, or rounded to 4-bit NF4 and back
#: Learning rates, one per method, chosen once on seed 0 (the paper tunes them per method too).
#: The new head always trains at LR["head"]; a method's rate applies to the rest.
LR = {"head": 1e-2, "full": 2e-3, "lora": 1e-2, "subspace": 5e-3}
EPOCHS = 5
ALPHA = 8.0  # fixed for every rank, as the paper does ("set α to the first r we try", §4.1)
#: Bump when the training code changes what a spec produces: cached runs of older versions are ignored.
RUNS_VERSION = 5  # 5: fit trains on one thread (FIT_THREADS)
_NAMES = {"lora": "LoRA", "rslora": "rsLoRA", "dora": "DoRA", "pissa": "PiSSA"}


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one adaptation run (and nothing else: equal specs, equal runs)."""

    method: str = "lora"
    targets: tuple = ("q_proj", "v_proj")
    r: int = 4
    alpha: float = ALPHA
    seed: int = 0
    fraction: float = 1.0   # share of the task's training images
    d: int = 0              # subspace dimension (method "subspace")
    task: str = ADAPT_TASK
    epochs: int = EPOCHS    # at fraction 1; smaller fractions get more epochs (same step count)
    lr: float | None = None  # None: LR[method]
    keep_head: bool = False  # reuse the pretrained head, frozen (tasks with digits 0-4 only)
    variant: str = "lora"   # method "lora" only: one of lora_lab.lora.variants.VARIANTS
    base: str = "full"      # method "lora" only: "nf4" rounds the frozen body to NF4 (QLoRA)
    lora_plus_ratio: float = 1.0  # LoRA+: every lora_B trains at ratio × the rate of lora_A

    def checked(self) -> RunSpec:
        """The spec with its fields validated and normalised (targets as a tuple)."""
        check_choice("method", self.method, METHODS)
        check_choice("task", self.task, TASKS)
        check_choice("variant", self.variant, VARIANTS)
        check_choice("base", self.base, BASES)
        for name in ("r", "seed", "epochs"):
            check_int(name, getattr(self, name), low=0 if name == "seed" else 1)
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction!r}")
        if self.method == "subspace":
            check_int("d", self.d, low=1)
        self._check_lora_only()
        self._check_keep_head()
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        return replace(self, targets=targets, alpha=check_positive("alpha", self.alpha),
                       lr=None if self.lr is None else check_positive("lr", self.lr),
                       lora_plus_ratio=check_positive("lora_plus_ratio", self.lora_plus_ratio))

    def _check_lora_only(self) -> None:
        lora_only = {"variant": "lora", "base": "full", "lora_plus_ratio": 1.0}
        changed = [k for k, default in lora_only.items() if getattr(self, k) != default]
        if changed and self.method != "lora":
            raise ValueError(f"{', '.join(changed)} apply to method='lora' only, got method={self.method!r}")

    def _check_keep_head(self) -> None:
        if self.keep_head and (TASKS[self.task][0] != TASKS[PRETRAIN_TASK][0] or self.method == "head"):
            raise ValueError(f"keep_head=True needs a task with the pretraining digits "
                             f"{TASKS[PRETRAIN_TASK][0]} and a method other than 'head', "
                             f"got task={self.task!r}, method={self.method!r}")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else LR[self.method]

    @property
    def total_epochs(self) -> int:
        """Epochs scaled by 1/fraction, so a low-data run takes about as many steps."""
        return max(self.epochs, round(self.epochs / self.fraction))

    def label(self) -> str:
        """A short name for tables and plots: 'LoRA q,v r=4', 'DoRA q,v r=4', 'full', 'subspace d=64'."""
        if self.method != "lora":
            return f"subspace d={self.d}" if self.method == "subspace" else self.method
        names = ",".join(t.removesuffix("_proj") for t in self.targets)
        label = f"{_NAMES[self.variant]} {names} r={self.r}"
        if self.lora_plus_ratio != 1:
            label += f" LoRA+ ×{self.lora_plus_ratio:g}"
        return label + (" (NF4 base)" if self.base == "nf4" else "")

    def key(self) -> str:
        """A file-name-safe identity of the spec."""
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class Run:
    """One trained run: its spec, the trained model and the training history."""

    spec: RunSpec
    model: nn.Module
    history: History = field(repr=False)

    @property
    def trainable(self) -> int:
        """Trained parameters (the new head included)."""
        return self.history.trainable


def prepare(base: nn.Module, spec: RunSpec) -> nn.Module:
    """A copy of `base` with a new head (seeded; or the pretrained head, frozen, with `keep_head`),
    set up so that only `spec.method`'s part trains."""
    spec = spec.checked()
    n_classes = len(TASKS[spec.task][0])
    model = copy.deepcopy(base) if spec.keep_head else new_head(base, n_classes, seed=spec.seed)
    if spec.method == "head":
        model.requires_grad_(False)
    elif spec.method == "lora":
        if spec.base == "nf4":
            quantize_body_nf4(model)
        torch.manual_seed(spec.seed)  # A's random init
        if spec.variant == "lora":  # freezes all but A, B
            add_lora(model, list(spec.targets), r=spec.r, alpha=spec.alpha, fused=True)
        else:
            add_variant(model, list(spec.targets), spec.variant, r=spec.r, alpha=spec.alpha, fused=True)
    elif spec.method == "subspace":
        model.head.requires_grad_(not spec.keep_head)
        return SubspaceModel(model, spec.d, seed=spec.seed)
    model.head.requires_grad_(not spec.keep_head or spec.method == "full")  # a new head always trains
    return model


def fit_options(spec: RunSpec) -> dict:
    """`fit`'s options for a run: the head at its own rate (and, with LoRA+, every lora_B at
    ratio × the rate), a cosine schedule, about `epochs` test scores."""
    spec = spec.checked()
    rates = {"head.": LR["head"]}
    if spec.lora_plus_ratio != 1:
        rates["lora_B"] = spec.lora_plus_ratio * spec.learning_rate
    return {"epochs": spec.total_epochs, "lr": spec.learning_rate, "seed": spec.seed, "cosine": True,
            "lr_by_name": rates, "eval_every": max(1, spec.total_epochs // spec.epochs)}


_RUNS: dict[RunSpec, Run] = {}


def run(spec: RunSpec | None = None, **changes) -> Run:
    """Train (or recall from this session) the run `spec` with `changes` applied."""
    spec = replace(spec or RunSpec(), **changes).checked()
    if spec not in _RUNS:
        task = load_task(spec.task)
        if spec.fraction < 1:
            task = task.subset(spec.fraction, seed=0)
        model = prepare(base_model(), spec)
        _RUNS[spec] = Run(spec, model.eval(), fit(model, task, **fit_options(spec)))
    return _RUNS[spec]


def forget_runs() -> None:
    """Drop the session's remembered runs (tests use it to force a retrain)."""
    _RUNS.clear()


# ---- on disk: the trained tensors of a run, for another notebook ------------------------------

def run_path(spec: RunSpec):
    """The cache file of a run: `<cache>/runs/v<RUNS_VERSION>-<digest of the spec>.safetensors`."""
    digest = hashlib.sha256(spec.checked().key().encode()).hexdigest()[:16]
    return cache_dir("runs") / f"v{RUNS_VERSION}-{digest}.safetensors"


def save_run(run_: Run) -> None:
    """Write the run's trained tensors (LoRA's A, B, a DoRA magnitude, the head; every weight for
    full fine-tuning) and its history to the cache, atomically."""
    h = run_.history
    tensors = {n: p for n, p in run_.model.named_parameters() if p.requires_grad}
    meta = {"spec": run_.spec.key(), "base_sha256": file_sha256(checkpoint_path()),
            **{k: json.dumps(getattr(h, k)) for k in ("losses", "test_accuracy", "eval_epochs",
                                                       "optimizer_state_bytes", "seconds_per_step")}}
    write_tensors(run_path(run_.spec), tensors, meta)


def _load_run(spec: RunSpec) -> Run | None:
    """The cached run, or None when there is none, it is stale, or it cannot be read."""
    path = run_path(spec)
    if not path.exists():
        return None
    try:
        meta, tensors = read_tensors(path)
        if meta.get("spec") != spec.key() or meta.get("base_sha256") != file_sha256(checkpoint_path()):
            return None
        model = prepare(base_model(), spec)
        if set(tensors) != {n for n, p in model.named_parameters() if p.requires_grad}:
            return None
        model.load_state_dict(tensors, strict=False)
        history = History(trainable=sum(t.numel() for t in tensors.values()),
                          **{k: json.loads(meta[k]) for k in ("losses", "test_accuracy", "eval_epochs",
                                                              "optimizer_state_bytes", "seconds_per_step")})
    except Exception as error:  # a truncated or corrupt file (a kernel killed mid-save): a miss
        warnings.warn(f"unreadable cached run {path.name} ({type(error).__name__}): retraining it",
                      stacklevel=3)
        return None
    return Run(spec, model.eval(), history)


def cached_run(spec: RunSpec | None = None, **changes) -> Run:
    """Like `run`, but first looks on disk (written by `save_run`) and saves what it trains."""
    spec = replace(spec or RunSpec(), **changes).checked()
    if spec in _RUNS:
        return _RUNS[spec]
    loaded = _load_run(spec)
    if loaded is None:
        loaded = run(spec)
        save_run(loaded)
    _RUNS[spec] = loaded
    return loaded

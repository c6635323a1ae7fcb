"""The named runs of notebooks 06 and 07: adapt the pretrained ViT (digits 0–4) to digits 5–9.

`run(method=..., r=..., seed=...)` builds a fresh copy of the base model with a new head, sets
what trains, trains it deterministically and returns a `Run` (model + history). Runs are kept
for the session, so two notebook sections asking for the same run train it once.
`cached_run` also keeps a run's trained tensors on disk (for notebook 07's adapters).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from lora_lab._checks import check_choice, check_int, check_positive
from lora_lab.lab.data import ADAPT_TASK, PRETRAIN_TASK, TASKS, load_task
from lora_lab.lab.models import BASE_SHA256, base_model, cache_dir, checkpoint_path, file_sha256, new_head
from lora_lab.lab.random_subspace import SubspaceModel
from lora_lab.lab.train import History, fit
from lora_lab.lora.inject import add_lora

METHODS = ("head", "full", "lora", "subspace")
#: Learning rates, one per method, chosen once on seed 0 (the paper tunes them per method too).
#: The new head always trains at LR["head"]; a method's rate applies to the rest.
LR = {"head": 1e-2, "full": 2e-3, "lora": 1e-2, "subspace": 5e-3}
EPOCHS = 5
ALPHA = 8.0  # fixed for every rank, as the paper does ("set α to the first r we try", §4.1)
#: Bump when the training code changes what a spec produces: cached runs of older versions are ignored.
RUNS_VERSION = 3


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

    def checked(self) -> RunSpec:
        """The spec with its fields validated and normalised (targets as a tuple)."""
        check_choice("method", self.method, METHODS)
        check_choice("task", self.task, TASKS)
        check_int("seed", self.seed, low=0)
        check_int("epochs", self.epochs, low=1)
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction!r}")
        if self.method == "subspace":
            check_int("d", self.d, low=1)
        if self.keep_head and (TASKS[self.task][0] != TASKS[PRETRAIN_TASK][0] or self.method == "head"):
            raise ValueError(f"keep_head=True needs a task with the pretraining digits "
                             f"{TASKS[PRETRAIN_TASK][0]} and a method other than 'head', "
                             f"got task={self.task!r}, method={self.method!r}")
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        return replace(self, targets=targets, alpha=check_positive("alpha", self.alpha))

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else LR[self.method]

    @property
    def total_epochs(self) -> int:
        """Epochs scaled by 1/fraction, so a low-data run takes about as many steps."""
        return max(self.epochs, round(self.epochs / self.fraction))

    def label(self) -> str:
        """A short name for tables and plots: 'LoRA q,v r=4', 'full', 'subspace d=64'."""
        if self.method == "lora":
            names = ",".join(t.removesuffix("_proj") for t in self.targets)
            return f"LoRA {names} r={self.r}"
        return f"subspace d={self.d}" if self.method == "subspace" else self.method

    def key(self) -> str:
        """A file-name-safe identity of the spec."""
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class Run:
    """One trained run: its spec, the trained model and the training history."""

    spec: RunSpec
    model: nn.Module
    history: History = field(repr=False)


def prepare(base: nn.Module, spec: RunSpec) -> nn.Module:
    """A copy of `base` with a new head (seeded; or the pretrained head, frozen, with `keep_head`),
    set up so that only `spec.method`'s part trains."""
    spec = spec.checked()
    if spec.keep_head:
        model = copy.deepcopy(base)
    else:
        model = new_head(base, len(TASKS[spec.task][0]), seed=spec.seed)
    if spec.method == "head":
        model.requires_grad_(False)
    elif spec.method == "lora":
        torch.manual_seed(spec.seed)  # A's random init
        add_lora(model, list(spec.targets), r=spec.r, alpha=spec.alpha)  # freezes all but A, B
    elif spec.method == "subspace":
        model.head.requires_grad_(not spec.keep_head)
        return SubspaceModel(model, spec.d, seed=spec.seed)
    model.head.requires_grad_(not spec.keep_head or spec.method == "full")  # a new head always trains
    return model


_RUNS: dict[RunSpec, Run] = {}


def run(spec: RunSpec | None = None, **changes) -> Run:
    """Train (or recall from this session) the run `spec` with `changes` applied."""
    spec = replace(spec or RunSpec(), **changes).checked()
    if spec not in _RUNS:
        task = load_task(spec.task)
        if spec.fraction < 1:
            task = task.subset(spec.fraction, seed=0)
        model = prepare(base_model(), spec)
        history = fit(model, task, epochs=spec.total_epochs, lr=spec.learning_rate, seed=spec.seed,
                      cosine=True, lr_by_name={"head.": LR["head"]},
                      eval_every=max(1, spec.total_epochs // spec.epochs))  # ~`epochs` test scores
        _RUNS[spec] = Run(spec, model.eval(), history)
    return _RUNS[spec]


def forget_runs() -> None:
    """Drop the session's remembered runs (tests use it to force a retrain)."""
    _RUNS.clear()


# ---- on disk: the trained tensors of a run, for another notebook ------------------------------

def _run_path(spec: RunSpec):
    return cache_dir() / "runs" / f"v{RUNS_VERSION}-{_digest(spec.key())}.safetensors"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_run(run_: Run) -> None:
    """Write the run's trainable tensors (LoRA A, B and the head) and its history to the cache."""
    from safetensors.torch import save_file

    path = _run_path(run_.spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {n: p.detach().contiguous() for n, p in run_.model.named_parameters() if p.requires_grad}
    meta = {"spec": run_.spec.key(), "base_sha256": file_sha256(checkpoint_path()),
            "losses": json.dumps(run_.history.losses),
            "test_accuracy": json.dumps(run_.history.test_accuracy),
            "eval_epochs": json.dumps(run_.history.eval_epochs)}
    save_file(tensors, str(path), metadata=meta)


def _load_run(spec: RunSpec) -> Run | None:
    from safetensors import safe_open

    path = _run_path(spec)
    if not path.exists():
        return None
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        if meta.get("spec") != spec.key() or meta.get("base_sha256") != file_sha256(checkpoint_path()):
            return None
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
    model = prepare(base_model(), spec)
    missing = model.load_state_dict(tensors, strict=False)
    if missing.unexpected_keys:
        return None
    history = History(losses=json.loads(meta["losses"]), test_accuracy=json.loads(meta["test_accuracy"]),
                      eval_epochs=json.loads(meta["eval_epochs"]),
                      trainable=sum(t.numel() for t in tensors.values()))
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


def base_is_recorded() -> bool:
    """True when the base checkpoint in use is the committed one (its SHA-256 matches)."""
    return file_sha256(checkpoint_path()) == BASE_SHA256



# ---- what notebook 07 reads from a run ---------------------------------------------------------

SUBSPACE_RANKS, SUBSPACE_SEEDS = (4, 8, 64), (0, 1)


def subspace_runs(ranks=SUBSPACE_RANKS, seeds=SUBSPACE_SEEDS) -> dict[tuple[int, int], Run]:
    """(r, seed) -> the LoRA run on Wq, Wv of notebook 06's rank ablation, from the cache or trained."""
    return {(r, s): cached_run(method="lora", r=r, seed=s) for r in ranks for s in seeds}


def adapter_matrices(run_: Run, layer: int, matrix: str) -> dict:
    """A (r, d_in), B (d_out, r), ΔW and the frozen W0 (d_out, d_in) of one adapted projection,
    e.g. `adapter_matrices(run, 1, "q_proj")`, as float64 NumPy arrays."""
    module = run_.model.blocks[check_int("layer", layer, low=0, high=len(run_.model.blocks) - 1)].attn
    lora = getattr(module, check_choice("matrix", matrix, run_.spec.targets))
    tensors = {"A": lora.lora_A, "B": lora.lora_B, "delta_W": lora.delta_weight(), "W": lora.base.weight}
    return {name: t.detach().double().numpy() for name, t in tensors.items()}

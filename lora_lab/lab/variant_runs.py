"""Notebook 10's runs: LoRA's variants on the experiments' task (the ViT of digits 0–4 -> 5–9).

Everything but the variant is `lora_lab.lab.runs`' setting: the same base, new head, targets,
epochs, learning rate and training loop (`lora_lab.lab.train.fit`), so `variant="lora"` reproduces
`experiments.run(method="lora", ...)` exactly. `base="nf4"` first rounds every frozen weight of
the body to 4-bit NF4 and back (a simulated QLoRA base, see `lora_lab.maths.nf4`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn

from lora_lab._checks import check_choice, check_int, check_positive
from lora_lab.lab.data import ADAPT_TASK, load_task
from lora_lab.lab.models import base_model
from lora_lab.lab.runs import ALPHA, EPOCHS, LR, RunSpec, prepare
from lora_lab.lab.train import History, fit
from lora_lab.lora.inject import count_parameters
from lora_lab.lora.variants import VARIANTS, add_variant
from lora_lab.maths.nf4 import nf4_roundtrip

BASES = ("full", "nf4")


@dataclass(frozen=True)
class VariantSpec:
    """One run: the variant, its rank and α, the seed, the targets and the base's precision."""

    variant: str = "lora"
    r: int = 4
    alpha: float = ALPHA
    seed: int = 0
    targets: tuple = ("q_proj", "v_proj")
    base: str = "full"
    epochs: int = EPOCHS
    lr: float = LR["lora"]

    def checked(self) -> VariantSpec:
        """The spec validated, targets as a tuple."""
        check_choice("variant", self.variant, VARIANTS)
        check_choice("base", self.base, BASES)
        check_int("r", self.r, low=1)
        check_int("seed", self.seed, low=0)
        check_int("epochs", self.epochs, low=1)
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        return replace(self, targets=targets, alpha=check_positive("alpha", self.alpha),
                       lr=check_positive("lr", self.lr))

    def label(self) -> str:
        """'DoRA r=4', 'rsLoRA r=16', 'LoRA r=4 (NF4 base)'."""
        name = {"lora": "LoRA", "rslora": "rsLoRA", "dora": "DoRA", "pissa": "PiSSA"}[self.variant]
        return f"{name} r={self.r}" + (" (NF4 base)" if self.base == "nf4" else "")


@dataclass
class VariantRun:
    """A trained run: spec, model, history and the trainable parameter count."""

    spec: VariantSpec
    model: nn.Module
    history: History = field(repr=False)

    @property
    def trainable(self) -> int:
        return count_parameters(self.model)[0]


@torch.no_grad()
def quantize_body_nf4(model: nn.Module, block_size: int = 64) -> nn.Module:
    """Round every nn.Linear weight except the head's to NF4 and back, in place (simulated QLoRA)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name != "head":
            module.weight.copy_(nf4_roundtrip(module.weight, block_size))
    return model


def prepare_variant(base: nn.Module, spec: VariantSpec) -> nn.Module:
    """A copy of `base` with a new head and `spec`'s variant on the targets; only the variant's
    parameters and the head train. Same steps and seeds as `experiments.prepare` for LoRA."""
    spec = spec.checked()
    model = prepare(base, RunSpec(method="head", seed=spec.seed, task=ADAPT_TASK))  # new head, frozen body
    if spec.base == "nf4":
        quantize_body_nf4(model)
    torch.manual_seed(spec.seed)  # A's random init, as experiments.prepare
    add_variant(model, list(spec.targets), spec.variant, r=spec.r, alpha=spec.alpha)
    model.head.requires_grad_(True)
    return model


def fit_options(spec: VariantSpec) -> dict:
    """`fit`'s options for a run: those `experiments.run` uses at fraction 1 (the head at its own
    rate, a test score every epoch). tests/test_variant_runs.py fails if the two drift apart."""
    return {"epochs": spec.epochs, "lr": spec.lr, "seed": spec.seed, "cosine": True,
            "lr_by_name": {"head.": LR["head"]}, "eval_every": 1}


_RUNS: dict[VariantSpec, VariantRun] = {}


def variant_run(spec: VariantSpec | None = None, **changes) -> VariantRun:
    """Train (or recall from this session) the run `spec` with `changes` applied."""
    spec = replace(spec or VariantSpec(), **changes).checked()
    if spec not in _RUNS:
        model = prepare_variant(base_model(), spec)
        history = fit(model, load_task(ADAPT_TASK), **fit_options(spec))
        _RUNS[spec] = VariantRun(spec, model.eval(), history)
    return _RUNS[spec]


def comparison_rows(runs: list[VariantRun]) -> list[dict]:
    """Group runs by label: mean and spread of final accuracy over seeds, trainable parameters."""
    groups: dict[str, list[VariantRun]] = {}
    for run in runs:
        groups.setdefault(run.spec.label(), []).append(run)
    rows = []
    for label, group in groups.items():
        accs = torch.tensor([g.history.accuracy for g in group], dtype=torch.float64)
        rows.append({"run": label, "seeds": len(group), "trainable": group[0].trainable,
                     "mean": float(accs.mean()), "min": float(accs.min()), "max": float(accs.max()),
                     "final_loss": sum(g.history.losses[-1] for g in group) / len(group)})
    return rows


def format_rows(rows: list[dict]) -> str:
    """`comparison_rows` as an aligned text table (last loss: the final step's loss, mean over seeds)."""
    head = f"{'run':<22}{'seeds':>6}{'trainable':>11}{'accuracy (mean)':>17}{'min–max':>15}{'last loss':>11}"
    lines = [head, "-" * len(head)]
    for r in rows:
        spread = f"{r['min']:.3f}–{r['max']:.3f}"
        lines.append(f"{r['run']:<22}{r['seeds']:>6}{r['trainable']:>11,}{r['mean']:>17.3f}{spread:>15}"
                     f"{r['final_loss']:>11.4f}")
    return "\n".join(lines)


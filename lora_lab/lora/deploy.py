"""Inference cost of each way to serve a fine-tune: the base, LoRA unmerged, LoRA merged, adapters.

The paper's Table 1 (§3) compares LoRA with serial Adapter layers (Houlsby et al. 2019): an
adapter runs after a module, y + W_up·ReLU(W_down·y), so its small matrix products wait for the
module's output and add depth to every forward pass. A merged LoRA adds nothing: W0 + ΔW is one
matrix of the same shape. Counting operations and FLOPs gives stable numbers; wall-clock time
is measured, noisy, and reported as ratios taken side by side in one run (`time_ratios`), with a
check that a run is clean enough to show (`merged_check`: a merged model runs the base's own
operations, so its time ratio must sit near 1).
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils import flop_counter
from torch.utils._python_dispatch import TorchDispatchMode

from lora_lab._checks import check_int


class BottleneckAdapter(nn.Module):
    """A serial adapter after `inner`: h = y + W_up ReLU(W_down y), y = inner(x).

    W_up starts at zero, so a new adapter leaves the model unchanged (like LoRA's B = 0).
    Shapes: y (..., d_model) -> (..., d_model); W_down (bottleneck, d_model); W_up (d_model, bottleneck).
    """

    def __init__(self, inner: nn.Module, d_model: int, bottleneck: int):
        super().__init__()
        self.inner = inner
        d_model = check_int("d_model", d_model, low=1)
        self.down = nn.Linear(d_model, check_int("bottleneck", bottleneck, low=1, high=d_model))
        self.up = nn.Linear(bottleneck, d_model)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: Tensor) -> Tensor:
        y = self.inner(x)
        return y + self.up(F.relu(self.down(y)))


def _output_width(module: nn.Module, name: str) -> int:
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"target {name!r} holds no nn.Linear, so its output width is unknown")
    return linears[-1].out_features


def add_bottleneck_adapters(model: nn.Module, targets, bottleneck: int = 8) -> nn.Module:
    """Wrap every module whose name ends with a target ("attn", "mlp") in a BottleneckAdapter.

    Adapters on "attn" and "mlp" of every block is the Houlsby layout (the paper's Adapter-H);
    only "mlp" is close to Lin et al.'s Adapter-L. Everything but the adapters is frozen.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    targets = [targets] if isinstance(targets, str) else list(targets)
    names = [n for n, _ in model.named_modules() if n and any(n == t or n.endswith("." + t) for t in targets)]
    if not names:
        examples = [n for n, _ in model.named_modules()][1:6]
        raise ValueError(f"targets {targets} match no module; module names look like {examples}")
    widths = {name: _output_width(model.get_submodule(name), name) for name in names}  # check all first
    for p in model.parameters():
        p.requires_grad_(False)
    for name, width in widths.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, BottleneckAdapter(model.get_submodule(name), width, bottleneck))
    return model


class _OpCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


@torch.no_grad()
def count_ops(model: nn.Module, x: Tensor) -> int:
    """Number of tensor operations (ATen calls) one forward pass runs: each is a step the next waits on."""
    with _OpCounter() as counter:
        model(x)
    return counter.count


def _addmm_flops(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """out += a @ b with a (m, k), b (k, n): m·k·n multiply-adds, 2 FLOPs each."""
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


@torch.no_grad()
def forward_flops(model: nn.Module, x: Tensor) -> int:
    """Floating-point operations of one forward pass (matrix products, counted by torch)."""
    # torch's counter knows addmm but not its in-place form addmm_, which FusedLoRALinear uses
    in_place = {torch.ops.aten.addmm_: _addmm_flops}
    with flop_counter.FlopCounterMode(display=False, custom_mapping=in_place) as counter:
        model(x)
    return counter.get_total_flops()


#: A clean timing run shows merged / base inside this band: the two run the same operations
#: (`count_ops`), so a ratio outside it measures the machine's load, not the models.
MERGED_BAND = (0.9, 1.1)


@torch.no_grad()
def time_ratios(models: dict[str, nn.Module], x: Tensor, reference: str = "base", rounds: int = 100,
                warmup: int = 5) -> dict[str, float]:
    """Each model's forward time ÷ `reference`'s: the median over `rounds` interleaved rounds.

    Every round runs each model once (the order rotated from round to round) and divides within the
    round, so load that comes and goes hits both sides of a ratio alike; the median then ignores the
    rounds a burst did hit unevenly. Ratios from one call compare; absolute times do not travel.
    """
    rounds, warmup = check_int("rounds", rounds, low=1), check_int("warmup", warmup, low=0)
    if reference not in models:
        raise ValueError(f"reference must be one of the models {sorted(models)}, got {reference!r}")
    names = list(models)
    for _ in range(warmup):
        for model in models.values():
            model(x)
    ratios = {name: [] for name in names}
    for i in range(rounds):
        seconds = {}
        for name in names[i % len(names):] + names[:i % len(names)]:
            start = time.perf_counter()
            models[name](x)
            seconds[name] = time.perf_counter() - start
        for name in names:
            ratios[name].append(seconds[name] / seconds[reference])
    return {name: statistics.median(r) for name, r in ratios.items()}


@dataclass(frozen=True)
class TimingCheck:
    """Whether a timing run may be shown: `ok`, and a sentence that says so (or why not)."""

    ok: bool
    message: str


def merged_check(ratios: dict[str, dict[str, float]], merged: str = "LoRA, merged",
                 band: tuple[float, float] = MERGED_BAND) -> TimingCheck:
    """Is merged ÷ base inside `band` in every setting? `ratios`: setting -> {model: ratio}."""
    low, high = band
    if not 0 < low < 1 < high:
        raise ValueError(f"band must be (low, high) with 0 < low < 1 < high, got {band!r}")
    if not ratios or any(merged not in row for row in ratios.values()):
        raise ValueError(f"ratios must map each setting to {{model: ratio}} including {merged!r}, "
                         f"got {ratios!r}")
    shown = ", ".join(f"×{row[merged]:.2f} at {s}" for s, row in ratios.items())
    outside = [s for s, row in ratios.items() if not low <= row[merged] <= high]
    if not outside:
        return TimingCheck(True, f"check: merged ÷ base = {shown}, inside ×{low:.2f}–×{high:.2f} "
                                 "as it must be (the same operations): this run can be read.")
    return TimingCheck(False, f"check failed: merged ÷ base = {shown}; outside ×{low:.2f}–×{high:.2f} "
                              f"at {', '.join(outside)}. A merged model runs the base's own operations, "
                              "so this run measured the machine's load, not the models: no figure is "
                              "drawn. Rerun the cell when the machine is quieter; the counts above stand.")


def serving_variants(base: nn.Module, lora: nn.Module, bottleneck: int = 8) -> dict[str, nn.Module]:
    """The five ways to serve a fine-tune of `base`, in eval mode: the base itself, `lora` (an
    unmerged LoRA model of it), a merged copy, and untrained Adapter-L / Adapter-H copies of `base`."""
    from lora_lab.lora.inject import merge_lora

    adapter = {"Adapter-L (mlp)": ["mlp"], "Adapter-H (attn, mlp)": ["attn", "mlp"]}
    models = {"base": base, "LoRA, unmerged": lora, "LoRA, merged": merge_lora(copy.deepcopy(lora))}
    models |= {k: add_bottleneck_adapters(copy.deepcopy(base), t, bottleneck) for k, t in adapter.items()}
    return {k: m.eval() for k, m in models.items()}


def serving_costs(models: dict[str, nn.Module], x: Tensor) -> dict[str, dict[str, int]]:
    """Name -> {"ops", "flops", "params"} of one forward pass on `x`: the stable side of Table 1."""
    if not models:
        raise ValueError("models must name at least one model, got {}")
    return {name: {"ops": count_ops(m, x), "flops": forward_flops(m, x),
                   "params": sum(p.numel() for p in m.parameters())} for name, m in models.items()}

"""Checkers for the exercises of `06_experiments`: LoRA's trainable count, Adam's memory, and a
training loop of the learner's own on a tiny model built here (seconds on a CPU). Each checker's
`hidden=True` adds the cases of its grade cell's hidden tests."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lora_lab.course.exercises import Case, CheckResult, Mistake, raised, report, run_cases
from lora_lab.course.i18n import t
from lora_lab.lora.layer import LoRALinear

# (n_blocks, d_model, n_targets per block, r, n_classes): a ViT-Base-like shape first (with 2 blocks,
# forgetting the blocks and forgetting a factor give the same number), then the course's ViT
_SHAPES = [(12, 768, 2, 8, 2), (2, 128, 2, 4, 5), (2, 128, 4, 2, 5), (2, 128, 1, 64, 10)]


def _trainable(n_blocks, d_model, n_targets, r, n_classes):
    return n_blocks * n_targets * r * (d_model + d_model) + (d_model + 1) * n_classes


def _trainable_cases(shapes) -> list[Case]:
    return [Case(f"n_blocks={b}, d_model={d}, n_targets={t}, r={r}, n_classes={c}", (b, d, t, r, c),
                 _trainable(b, d, t, r, c)) for b, d, t, r, c in shapes]


def check_lora_trainable(fn, hidden: bool = False) -> CheckResult:
    """`fn(n_blocks, d_model, n_targets, r, n_classes)` -> LoRA's A, B on square d_model matrices
    plus the new head (weights and biases)."""
    cases = _trainable_cases(_SHAPES)
    more = _trainable_cases([(24, 1024, 4, 16, 3), (3, 64, 3, 5, 7), (1, 10, 1, 1, 1)]) if hidden else []
    mistakes = [
        Mistake(lambda b, d, t, r, c: b * t * 2 * r * d,
                "the new head trains too: add its d_model · n_classes weights and n_classes biases"),
        Mistake(lambda b, d, t, r, c: b * t * 2 * r * d + d * c,
                "the head has a bias as well: (d_model + 1) · n_classes"),
        Mistake(lambda b, d, t, r, c: b * t * r * d + (d + 1) * c,
                "count both factors: A is (r, d_model) and B is (d_model, r)"),
        Mistake(lambda b, d, t, r, c: t * 2 * r * d + (d + 1) * c, "multiply by the number of blocks"),
    ]
    return run_cases("lora_trainable", fn, cases, mistakes, hidden=more)


def _adam_bytes(n_trainable, bytes_per_value):
    return 2 * n_trainable * bytes_per_value


def _adam_cases(args) -> list[Case]:
    return [Case(f"n_trainable={n:,}, bytes_per_value={b}", (n, b), _adam_bytes(n, b)) for n, b in args]


def check_adam_state_bytes(fn, hidden: bool = False) -> CheckResult:
    """`fn(n_trainable, bytes_per_value)` -> bytes of Adam's state (two moments per parameter)."""
    cases = _adam_cases([(645, 4), (4_741, 4), (268_805, 4), (18_874_368, 2)])
    more = _adam_cases([(66_181, 4), (1, 8), (16_777_216, 2)]) if hidden else []
    mistakes = [
        Mistake(lambda n, b: n * b, "Adam keeps two running averages per parameter (m and v), not one"),
        Mistake(lambda n, b: 3 * n * b, "the gradient is not optimizer state; Adam's state is m and v"),
        Mistake(lambda n, b: 2 * n, "multiply by the bytes per value (4 for float32)"),
    ]
    return run_cases("adam_state_bytes", fn, cases, mistakes, hidden=more)


# --- a training loop on LoRA's parameters only ---------------------------------------------------

def tiny_lora_task(seed: int, d_in: int = 6, width: int = 16, n_classes: int = 3, r: int = 2, n: int = 32):
    """A frozen nn.Linear (d_in -> width) with LoRA (r, α = 2r), tanh, a trainable new head
    (width -> n_classes), and n random points with labels; seeded without touching the global RNG.
    Returns (model, x (n, d_in), y (n,))."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = nn.Sequential(LoRALinear(nn.Linear(d_in, width), r=r, alpha=2.0 * r), nn.Tanh(),
                              nn.Linear(width, n_classes))
        x, y = torch.randn(n, d_in), torch.randint(n_classes, (n,))
    return model, x, y


def reference_train(model, x, y, steps: int, lr: float, zero_grad: bool = True) -> list[float]:
    """SGD on the parameters that require a gradient; the loss of each step, before its update."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _on_task(train, spec, unfreeze: bool = False, **kwargs):
    seed, d_in, width, n_classes, r, steps, lr = spec
    model, x, y = tiny_lora_task(seed, d_in, width, n_classes, r)
    if unfreeze:
        model.requires_grad_(True)
    return _as_floats(train(model, x, y, steps, lr, **kwargs))


def _as_floats(losses) -> list[float]:
    try:
        return [float(v) for v in losses]
    except (TypeError, ValueError, RuntimeError):
        got = type(losses).__name__
        raise TypeError(t("return a list of floats (loss.item() of each step), got {kind}",
                          kind=got)) from None


def _train_cases(specs) -> list[Case]:
    return [Case(t("tiny model seed={seed} (d_in={d_in}, width={width}, classes={classes}, r={r}), "
                   "steps={steps}, lr={lr}", seed=s[0], d_in=s[1], width=s[2], classes=s[3], r=s[4],
                   steps=s[5], lr=s[6]), (s,), _on_task(reference_train, s)) for s in specs]


TRAIN_MISTAKES = [
    Mistake(lambda s: _on_task(reference_train, s, zero_grad=False),
            "the gradients add up from step to step: call optimizer.zero_grad() once per step"),
    Mistake(lambda s: _on_task(reference_train, s, unfreeze=True),
            "you trained every weight: build the optimizer on the parameters with requires_grad only, "
            "and leave them as they are"),
]


def _base_problem(fn, spec) -> str | None:
    """None when training left the frozen base bit-identical and the loss fell."""
    seed, d_in, width, n_classes, r, steps, lr = spec
    model, x, y = tiny_lora_task(seed, d_in, width, n_classes, r)
    base = {n: p.detach().clone() for n, p in model[0].base.named_parameters()}
    losses = fn(model, x, y, steps, lr)
    if any(not torch.equal(p, base[n]) or p.requires_grad for n, p in model[0].base.named_parameters()):
        return t("right losses, but a base weight changed or was unfrozen: train A, B and the head only")
    if not losses[-1] < losses[0]:
        return t("the loss did not fall ({first:.4f} -> {last:.4f})", first=losses[0], last=losses[-1])
    return None


def check_train_lora(fn, hidden: bool = False, show: bool = True) -> CheckResult:
    """`fn(model, x, y, steps, lr)` must run `steps` full-batch steps of torch.optim.SGD(lr) on the
    parameters that require a gradient (cross-entropy; zero_grad, backward, step) and return the
    `steps` losses as floats, each computed before its update; the frozen base stays bit-identical."""
    cases = _train_cases([(0, 6, 16, 3, 2, 8, 0.5), (1, 4, 8, 2, 1, 5, 1.0), (2, 10, 12, 4, 4, 6, 0.3)])
    more = _train_cases([(3, 7, 20, 5, 3, 7, 0.4), (4, 5, 6, 3, 2, 4, 2.0)]) if hidden else []
    learner = (lambda spec: _on_task(fn, spec)) if callable(fn) else fn
    result = run_cases("train_lora", learner, cases, TRAIN_MISTAKES, show=False, hidden=more)
    if result.passed:
        try:
            problem = _base_problem(fn, cases[0].args[0])
        except Exception as exc:  # the learner's code ran once already; never let it escape
            problem = raised(exc)
        if problem is not None:
            return report("train_lora", False, 0, result.total, problem, show, result.hidden)
    if show:
        print(result.message)
    return result

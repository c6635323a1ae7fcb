"""A planted low-rank task: a frozen W0 and a hidden update ΔW* of rank r*, learned with LoRA.

With whitened inputs (XᵀX = N·I) the mean squared error of any update ΔW is exactly
‖ΔW − ΔW*‖_F² / d_out, so the best a rank-r LoRA can reach is the Eckart–Young tail
Σ_{i>r} σ_i² / d_out of ΔW*'s singular values: zero once r ≥ r*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lora_lab._checks import check_int, check_positive
from lora_lab.lab.train import torch_threads
from lora_lab.lora.layer import LoRALinear


@dataclass(frozen=True)
class PlantedTask:
    """W0 (d, d), the planted ΔW* (d, d) of rank r*, its singular values, inputs X (n, d), targets Y."""

    W0: Tensor
    delta: Tensor
    sigma: Tensor
    X: Tensor
    Y: Tensor


def planted_task(d: int = 32, r_true: int = 4, n: int = 256, seed: int = 0) -> PlantedTask:
    """Y = X (W0 + ΔW*)ᵀ with ΔW* = U diag(σ) Vᵀ, σ from 2 down to 0.5, and XᵀX = n·I.

    Shapes: W0, delta (d, d); sigma (r_true,); X, Y (n, d).
    """
    d, n = check_int("d", d, 2), check_int("n", n, d)
    r_true = check_int("r_true", r_true, 1, d)
    g = torch.Generator().manual_seed(check_int("seed", seed, 0))
    W0 = torch.randn(d, d, generator=g) / math.sqrt(d)
    U, _ = torch.linalg.qr(torch.randn(d, r_true, generator=g))  # (d, r_true), orthonormal columns
    V, _ = torch.linalg.qr(torch.randn(d, r_true, generator=g))  # (d, r_true)
    sigma = torch.linspace(2.0, 0.5, r_true)
    delta = U @ torch.diag(sigma) @ V.t()  # (d, d), rank r_true
    Q, _ = torch.linalg.qr(torch.randn(n, d, generator=g))  # (n, d), QᵀQ = I
    X = Q * math.sqrt(n)  # whitened: XᵀX = n·I
    return PlantedTask(W0, delta, sigma, X, X @ (W0 + delta).t())


def eckart_young_floor(task: PlantedTask, r: int) -> float:
    """The lowest mean squared error any rank-r update can reach: Σ_{i>r} σ_i² / d_out."""
    r = check_int("r", r, 0)
    return float(task.sigma[r:].square().sum()) / task.delta.shape[0]


def _lora_on(task: PlantedTask, r: int, alpha: float, rslora: bool, seed: int) -> LoRALinear:
    torch.manual_seed(seed)
    d_out, d_in = task.W0.shape
    base = nn.Linear(d_in, d_out, bias=False)
    with torch.no_grad():
        base.weight.copy_(task.W0)
    return LoRALinear(base, r=r, alpha=alpha, rslora=rslora)


def fit_lora(task: PlantedTask, r: int, alpha: float = 8.0, steps: int = 200, lr: float = 0.05,
             rslora: bool = False, seed: int = 0) -> tuple[LoRALinear, list[float]]:
    """Train a rank-r LoRA on the task with full-batch `torch.optim.Adam`; return it and the loss per step."""
    check_int("steps", steps, 1)
    check_positive("lr", lr)
    with torch_threads(1):  # tiny matrices: a second thread only adds synchronisation
        layer = _lora_on(task, r, alpha, rslora, seed)
        opt = torch.optim.Adam([layer.lora_A, layer.lora_B], lr=lr)
        losses = []
        for _ in range(steps):
            loss = (layer(task.X) - task.Y).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return layer, losses


def rank_sweep(task: PlantedTask, ranks, **fit_kwargs) -> dict[int, float]:
    """Rank -> mean squared error after training a LoRA of that rank (see `fit_lora`)."""
    out = {}
    with torch_threads(1):  # tiny matrices: a second thread only adds synchronisation
        for r in ranks:
            layer, _ = fit_lora(task, r, **fit_kwargs)
            with torch.no_grad():
                out[int(r)] = float((layer(task.X) - task.Y).square().mean())
    return out


SCALING_RULES = {"α/r (LoRA)": (None, False), "α/√r (rsLoRA)": (None, True), "none (scaling 1)": ("r", False)}


def update_size(task: PlantedTask, ranks, rule: str, alpha: float = 8.0, steps: int = 10,
                lr: float = 1e-3, seed: int = 0) -> dict[int, float]:
    """Rank -> ‖ΔW‖_F after `steps` Adam steps from B = 0, under one of SCALING_RULES."""
    if rule not in SCALING_RULES:
        raise ValueError(f"rule must be one of {list(SCALING_RULES)}, got {rule!r}")
    alpha_is_r, rslora = SCALING_RULES[rule]
    out = {}
    with torch_threads(1):  # tiny matrices: a second thread only adds synchronisation
        for r in ranks:
            a = float(r) if alpha_is_r else alpha  # alpha = r makes alpha / r = 1: no scaling
            layer, _ = fit_lora(task, r, alpha=a, steps=steps, lr=lr, rslora=rslora, seed=seed)
            out[int(r)] = float(layer.delta_weight().detach().norm())
    return out

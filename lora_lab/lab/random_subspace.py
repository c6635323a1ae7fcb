"""Adapt a pretrained model inside a random subspace of its weights (intrinsic dimension, Aghajanyan
et al. 2020; Li et al. 2018). `lora_lab.lab.intrinsic` trains a small MLP from scratch; this wraps the
pretrained ViT.

Every pretrained weight moves only along d fixed random directions: θ = θ0 + P z with z ∈ R^d
trained and P (D, d) a random projection. If accuracy close to full fine-tuning is reached at a
d far below D, the adaptation has a low intrinsic dimension, the observation LoRA builds on.

P is a sparse random projection (Li et al. §2 use dense, sparse and Fastfood ones): each weight
reads `nnz` random entries of z with random signs, scaled by 1/√nnz, so P never needs D·d floats.
The new task head is not part of the subspace: it is trained as usual, so d = 0 is "head only".
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

from lora_lab._checks import check_int


class SubspaceModel(nn.Module):
    """Wrap `model`: every parameter not under `trainable_prefix` becomes θ0 + P z.

    Shapes: z (d,); the projection's index and sign tables are (D, nnz); the forward pass is the
    wrapped model's.
    """

    def __init__(self, model: nn.Module, d: int, seed: int = 0, nnz: int = 4,
                 trainable_prefix: str = "head."):
        super().__init__()
        self.d, self.nnz = check_int("d", d, low=1), check_int("nnz", nnz, low=1)
        self.model = model
        self.names = [n for n, _ in model.named_parameters() if not n.startswith(trainable_prefix)]
        params = dict(model.named_parameters())
        for n in self.names:
            params[n].requires_grad_(False)
        self.shapes = [params[n].shape for n in self.names]
        theta0 = torch.cat([params[n].detach().reshape(-1) for n in self.names])  # (D,)
        gen = torch.Generator().manual_seed(check_int("seed", seed, low=0))
        self.register_buffer("theta0", theta0)
        self.register_buffer("index", torch.randint(self.d, (theta0.numel(), self.nnz), generator=gen))
        signs = torch.randint(0, 2, (theta0.numel(), self.nnz), generator=gen) * 2 - 1
        self.register_buffer("signs", signs.to(theta0.dtype) / self.nnz ** 0.5)
        self.z = nn.Parameter(torch.zeros(self.d, dtype=theta0.dtype))

    @property
    def n_total(self) -> int:
        """D: how many pretrained weights the subspace moves."""
        return self.theta0.numel()

    def offset(self) -> Tensor:
        """P z, the move of every pretrained weight.  Shape: (D,)."""
        return (self.z[self.index] * self.signs).sum(dim=1)  # (D, nnz) -> (D,)

    def weights(self) -> dict[str, Tensor]:
        """θ0 + P z, split back into the wrapped model's named parameters."""
        flat = self.theta0 + self.offset()  # (D,)
        chunks = flat.split([s.numel() for s in self.shapes])
        return {n: c.view(s) for n, c, s in zip(self.names, chunks, self.shapes, strict=True)}

    def forward(self, x: Tensor) -> Tensor:
        return functional_call(self.model, self.weights(), (x,), strict=False)

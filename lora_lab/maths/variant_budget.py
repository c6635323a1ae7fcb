"""Trainable parameters of LoRA's variants from `maths.budget`'s shapes (QLoRA's memory: `maths.scale`).

Per adapted matrix W0 (d_out, d_in), as each paper defines its trained tensors:
- LoRA, rsLoRA, PiSSA, QLoRA: B (d_out, r) and A (r, d_in): r·(d_out + d_in).
- DoRA: the same plus the magnitude m (d_out,).
- VeRA (arXiv 2310.11454): A and B are frozen random matrices shared by all layers (regenerated
  from a seed, not stored); each matrix trains two vectors, b (d_out,) and d (r,): d_out + r.
- AdaLoRA (arXiv 2303.10512): ΔW = P Λ Q with P (d_out, r), Λ (r,), Q (r, d_in): r·(d_out + d_in + 1)
  at the starting rank; training then zeroes the least important entries of Λ until the whole
  model keeps a target budget (on average `target_r` per matrix).
"""

from __future__ import annotations

from lora_lab._checks import check_choice, check_int
from lora_lab.maths.budget import check_rank, check_shape, lora_param_count, matrix_shapes

COUNTED = ("lora", "rslora", "pissa", "qlora", "dora", "vera", "adalora")


def variant_param_count(shape, variant: str, r: int, targets=("q", "v")) -> int:
    """Trainable parameters of `variant` at rank r on `targets` of every layer of `shape`."""
    shape = check_shape(shape)
    check_choice("variant", variant, COUNTED)
    shapes = matrix_shapes(shape, targets).values()
    if variant == "vera":  # VeRA's r can exceed the matrix sizes: its A, B are shared, not trained
        r = check_int("r", r, low=1)
        return shape.n_layers * sum(d_out + r for d_out, _ in shapes)
    lora = lora_param_count(shape, r, targets)
    if variant == "dora":
        return lora + shape.n_layers * sum(d_out for d_out, _ in shapes)
    if variant == "adalora":
        return lora + shape.n_layers * len(shapes) * check_rank(shape, r, targets)
    return lora


def vera_frozen_shared(shape, r: int, targets=("q", "v")) -> int:
    """Numbers in VeRA's shared frozen A (r, max d_in) and B (max d_out, r); stored as a seed."""
    r = check_int("r", r, low=1)
    shapes = list(matrix_shapes(check_shape(shape), targets).values())
    return r * (max(o for o, _ in shapes) + max(i for _, i in shapes))


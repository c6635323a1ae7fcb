"""Checkers for the exercises of `06_experiments`."""

from __future__ import annotations

from lora_lab.course.exercises import Case, CheckResult, Mistake, run_cases

# (n_blocks, d_model, n_targets per block, r, n_classes): a ViT-Base-like shape first (with 2 blocks,
# forgetting the blocks and forgetting a factor give the same number), then the course's ViT
_SHAPES = [(12, 768, 2, 8, 2), (2, 128, 2, 4, 5), (2, 128, 4, 2, 5), (2, 128, 1, 64, 10)]


def _trainable(n_blocks, d_model, n_targets, r, n_classes):
    return n_blocks * n_targets * r * (d_model + d_model) + (d_model + 1) * n_classes


def check_lora_trainable(fn) -> CheckResult:
    """`fn(n_blocks, d_model, n_targets, r, n_classes)` -> LoRA's A, B on square d_model matrices
    plus the new head (weights and biases)."""
    cases = [Case(f"n_blocks={b}, d_model={d}, n_targets={t}, r={r}, n_classes={c}", (b, d, t, r, c),
                  _trainable(b, d, t, r, c)) for b, d, t, r, c in _SHAPES]
    mistakes = [
        Mistake(lambda b, d, t, r, c: b * t * 2 * r * d,
                "the new head trains too: add its d_model · n_classes weights and n_classes biases"),
        Mistake(lambda b, d, t, r, c: b * t * 2 * r * d + d * c,
                "the head has a bias as well: (d_model + 1) · n_classes"),
        Mistake(lambda b, d, t, r, c: b * t * r * d + (d + 1) * c,
                "count both factors: A is (r, d_model) and B is (d_model, r)"),
        Mistake(lambda b, d, t, r, c: t * 2 * r * d + (d + 1) * c, "multiply by the number of blocks"),
    ]
    return run_cases("lora_trainable", fn, cases, mistakes)


def _adam_bytes(n_trainable, bytes_per_value):
    return 2 * n_trainable * bytes_per_value


def check_adam_state_bytes(fn) -> CheckResult:
    """`fn(n_trainable, bytes_per_value)` -> bytes of Adam's state (two moments per parameter)."""
    args = [(645, 4), (4_741, 4), (268_805, 4), (18_874_368, 2)]
    cases = [Case(f"n_trainable={n:,}, bytes_per_value={b}", (n, b), _adam_bytes(n, b)) for n, b in args]
    mistakes = [
        Mistake(lambda n, b: n * b, "Adam keeps two running averages per parameter (m and v), not one"),
        Mistake(lambda n, b: 3 * n * b, "the gradient is not optimizer state; Adam's state is m and v"),
        Mistake(lambda n, b: 2 * n, "multiply by the bytes per value (4 for float32)"),
    ]
    return run_cases("adam_state_bytes", fn, cases, mistakes)

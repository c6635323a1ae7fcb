"""Checkers for `09_capstone_real_llm`: perplexity from token losses, LoRA's size on a GQA model."""

from __future__ import annotations

import math

import torch

from lora_lab.course.exercises import Case, CheckResult, Mistake, run_cases
from lora_lab.course.i18n import t


def _perplexity_reference(token_losses) -> float:
    return math.exp(float(torch.as_tensor(token_losses, dtype=torch.float64).mean()))


def _hidden_loss_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(1)
    lists = [[0.0, 0.0], [10.0, 0.1, 0.1, 0.1], torch.rand(1000, generator=gen, dtype=torch.float64) * 2 + 1]
    labels = [t("two certain tokens"), t("one bad token among four"), t("1000 random losses in [1, 3)")]
    return [Case(label, (losses,), _perplexity_reference(losses))
            for label, losses in zip(labels, lists, strict=True)]


def _loss_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)
    lists = [[math.log(8.0)] * 5, [0.5, 1.0, 4.0], torch.rand(127, generator=gen, dtype=torch.float64) * 6,
             [3.79]]
    labels = [t("five tokens at ln 8"), "[0.5, 1.0, 4.0]", t("127 random losses in [0, 6)"),
              t("one token at 3.79")]
    return [Case(label, (losses,), _perplexity_reference(losses))
            for label, losses in zip(labels, lists, strict=True)]


def _as64(losses) -> torch.Tensor:
    return torch.as_tensor(losses, dtype=torch.float64)


def check_perplexity(fn, hidden: bool = False) -> CheckResult:
    """`fn(token_losses)`: the perplexity of per-token losses in nats, exp(mean loss).
    `hidden=True` adds the grade cell's hidden cases (zero losses, one outlier, a long list)."""
    mistakes = [
        Mistake(lambda ls: float(_as64(ls).exp().mean()), "that averages exp(loss) per token; "
                "perplexity is exp of the MEAN loss (the geometric mean of 1/p), which is smaller"),
        Mistake(lambda ls: float(2 ** _as64(ls).mean()), "the losses are in nats (natural log): use "
                "e, not 2 (2 ** loss is for losses in bits)"),
        Mistake(lambda ls: float(_as64(ls).sum().exp()), "exp of the SUM is the inverse probability of "
                "the whole sequence; divide by the number of tokens first"),
        Mistake(lambda ls: float(_as64(ls).mean()), "that is the mean loss itself; perplexity is its exp"),
    ]
    return run_cases("perplexity", fn, _loss_cases(), mistakes, rtol=1e-6,
                     hidden=_hidden_loss_cases() if hidden else ())


def _qv_reference(n_layers: int, d_model: int, d_kv: int, r: int) -> int:
    return n_layers * r * ((d_model + d_model) + (d_model + d_kv))


def _qv_cases(settings) -> list[Case]:
    return [Case(f"n_layers={n}, d_model={d}, d_kv={k}, r={r}", (n, d, k, r), _qv_reference(n, d, k, r))
            for n, d, k, r in settings]


def check_lora_qv_params(fn, hidden: bool = False) -> CheckResult:
    """`fn(n_layers, d_model, d_kv, r)`: trainable parameters of LoRA on W_q (d_model -> d_model)
    and W_v (d_model -> d_kv) in every layer. SmolLM2-135M: d_kv = 3 heads × 64 = 192.
    `hidden=True` adds hidden cases (other GQA models, r = 1, one layer)."""
    cases = _qv_cases([(30, 576, 192, 8), (12, 768, 768, 4), (2, 16, 8, 2), (96, 12288, 12288, 4)])
    more = _qv_cases([(32, 4096, 1024, 16), (1, 10, 3, 1), (24, 2048, 256, 64)]) if hidden else []
    mistakes = [
        Mistake(lambda n, d, k, r: 2 * (2 * n) * d * r, "2·L̂·d·r (§5.1) assumes square matrices; with "
                "grouped-query attention W_v is (d_kv, d_model): count A (r, d_in) and B (d_out, r)"),
        Mistake(lambda n, d, k, r: r * (2 * d + d + k), "that is one layer; every layer has its own q and v"),
        Mistake(lambda n, d, k, r: n * r * (d + d), "that counts W_q only; W_v is adapted too"),
        Mistake(lambda n, d, k, r: n * r * (d + k), "that counts A's d_in once per layer; q and v each "
                "have their own A (r, d_model) and B (d_out, r)"),
        Mistake(lambda n, d, k, r: n * (d * d + d * k), "that is the size of the full W_q and W_v, "
                "what full fine-tuning would train"),
    ]
    return run_cases("lora_qv_params", fn, cases, mistakes, hidden=more)

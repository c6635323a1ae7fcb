"""Checkers for the exercises of `11_scale_out`: the bytes DDP all-reduces per step for a model
(with and without a compression hook), ring all-reduce traffic per rank, and ZeRO's memory per
rank by stage. Each takes `hidden=True` for its grade cell's hidden cases."""

from __future__ import annotations

import torch
from torch import nn

from lora_lab.course.exercises import Case, CheckResult, Mistake, run_cases
from lora_lab.course.i18n import t
from lora_lab.lora.layer import LoRALinear

# --- the payload of a model ----------------------------------------------------------------------


def _payload(model, wire_dtype=None):
    """Reference: each trainable parameter's gradient once, in its own dtype or in `wire_dtype`."""
    return sum(p.numel() * (p.element_size() if wire_dtype is None else wire_dtype.itemsize)
               for p in model.parameters() if p.requires_grad)


def _lora(d_in: int, d_out: int, r: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return LoRALinear(nn.Linear(d_in, d_out), r=r, alpha=2.0 * r)  # frozen base, trainable A, B


def _mixed() -> nn.Module:
    """A bf16 trainable layer beside an fp32 one (each gradient has its parameter's dtype)."""
    torch.manual_seed(2)
    return nn.Sequential(nn.Linear(6, 3).to(torch.bfloat16), nn.Linear(3, 5))


def _tied() -> nn.Module:
    """An embedding and an output layer that share one weight (weight tying, as in GPT-2): one
    parameter, one gradient, sent once."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Embedding(10, 4), nn.LayerNorm(4), nn.Linear(4, 4), nn.Linear(4, 10, bias=False))
    model[3].weight = model[0].weight  # (10, 4) both
    model[1].requires_grad_(False)
    return model


def _frozen_rest() -> nn.Module:
    """An fp64 model whose embedding is frozen and whose norm and head train."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Embedding(10, 6), nn.LayerNorm(6), nn.Linear(6, 3, bias=False)).double()
    model[0].requires_grad_(False)
    return model


def _payload_case(label: str, model: nn.Module, wire=None) -> Case:
    return Case(t("{label}, wire_dtype={wire}", label=label, wire=wire), (model, wire), _payload(model, wire))


def _all_parameters(model, wire):  # frozen ones too
    return sum(p.numel() * (p.element_size() if wire is None else wire.itemsize) for p in model.parameters())


def _modules_sum(model, wire):  # a shared layer counted once per place it is registered
    return sum(p.numel() * (p.element_size() if wire is None else wire.itemsize)
               for m in model.modules() for p in m.parameters(recurse=False) if p.requires_grad)


def _payload_mistakes() -> list[Mistake]:
    return [
        Mistake(_all_parameters, "frozen weights have no gradient: DDP sends only the parameters "
                "with requires_grad=True"),
        Mistake(lambda m, w: sum(p.numel() for p in m.parameters() if p.requires_grad),
                "that is a parameter count: multiply each by its bytes per element"),
        Mistake(lambda m, w: _payload(m, None), "a compression hook casts every bucket to wire_dtype "
                "before it is sent: each gradient then takes wire_dtype.itemsize bytes"),
        Mistake(lambda m, w: 4 * sum(p.numel() for p in m.parameters() if p.requires_grad),
                "not every gradient has 4 bytes: use each parameter's p.element_size() (bf16: 2, fp64: 8), "
                "or wire_dtype.itemsize when a hook compresses"),
        Mistake(lambda m, w: 8 * _payload(m, w), "that counts bits: element_size() is already in bytes"),
        Mistake(lambda m, w: 2 * _payload(m, w), "the payload holds each gradient once; the 2(N−1)/N of "
                "a ring all-reduce is the traffic per rank (a later exercise), not the payload"),
        Mistake(_modules_sum, "a parameter shared by two modules has one gradient, sent once: "
                "model.parameters() lists it once, a loop over the modules finds it twice"),
    ]


def check_payload_bytes(fn, hidden: bool = False) -> CheckResult:
    """`fn(model, wire_dtype=None)` -> bytes DDP all-reduces per step: every trainable parameter's
    gradient once, at its own element size, or at `wire_dtype`'s when a compression hook casts."""
    lora16, lora12 = "LoRALinear(nn.Linear(16, 8), r=2)", "LoRALinear(nn.Linear(12, 20), r=3)"
    cases = [_payload_case(t("nn.Linear(8, 4), all trainable"), nn.Linear(8, 4)),
             _payload_case(lora16, _lora(16, 8, 2, 0)),
             _payload_case(t("bf16 Linear(6, 3) then fp32 Linear(3, 5)"), _mixed()),
             _payload_case(lora16, _lora(16, 8, 2, 0), torch.float16)]
    frozen_rest = t("fp64: frozen Embedding, LayerNorm, Linear")
    more = [_payload_case(t("tied embedding and output weight, frozen norm"), _tied()),
            _payload_case(frozen_rest, _frozen_rest()),
            _payload_case(frozen_rest, _frozen_rest(), torch.float16),
            _payload_case(lora12, _lora(12, 20, 3, 5), torch.bfloat16),
            _payload_case(t("everything frozen"), nn.Linear(5, 5).requires_grad_(False)),
            _payload_case(t("bf16 then fp32"), _mixed(), torch.float16)] if hidden else []
    return run_cases("payload_bytes", fn, cases, _payload_mistakes(), hidden=more)


# --- ring all-reduce ------------------------------------------------------------------------------

def _ring(payload, n):
    return 2 * (n - 1) / n * payload


def check_ring_traffic(fn, hidden: bool = False) -> CheckResult:
    """`fn(payload_bytes, world_size)` -> bytes each rank sends in a ring all-reduce."""
    args = [(10**9, 8), (1_075_220, 4), (18_964, 2), (6_000, 3), (100, 1)]
    more = [(12_345, 5), (7, 7), (0, 16), (2 * 10**12, 1024), (37_748_736, 6), (999.5, 3)] if hidden else []
    cases = [Case(f"payload_bytes={p:,}, world_size={n}", (p, n), _ring(p, n)) for p, n in args]
    hidden_cases = [Case(f"payload_bytes={p:,}, world_size={n}", (p, n), _ring(p, n)) for p, n in more]
    mistakes = [
        Mistake(lambda p, n: 2 * p, "each rank keeps its own 1/N chunk: a phase sends (N−1)/N of the "
                "payload, so one rank alone (N=1) sends nothing"),
        Mistake(lambda p, n: (n - 1) / n * p, "that is one phase; a ring all-reduce has two, a "
                "reduce-scatter and then an all-gather"),
        Mistake(lambda p, n: (n - 1) * p, "that sends the whole payload to every other rank; a ring "
                "passes chunks of payload/N to one neighbour at a time"),
        Mistake(lambda p, n: 2 * (n - 1) * p, "each message is a chunk of payload/N, not the whole payload"),
    ]
    return run_cases("ring_traffic", fn, cases, mistakes, hidden=hidden_cases)


# --- ZeRO memory per rank -------------------------------------------------------------------------

def _zero(n_frozen, n_trainable, n, stage, opt=12, frozen_weights=True, cumulative=True):
    """Bytes per rank: bf16 weights (2) and gradients (2), `opt` bytes of optimizer state per trained
    parameter; stage 1 shards the states, 2 also the gradients, 3 also the weights."""
    shard = (lambda s: stage >= s) if cumulative else (lambda s: stage == s)
    frozen = n_frozen / (n if shard(3) and frozen_weights else 1)
    weights = 2 * (frozen + n_trainable / (n if shard(3) else 1))
    grads = 2 * n_trainable / (n if shard(2) else 1)
    return weights + grads + opt * n_trainable / (n if shard(1) else 1)


def _zero_mistakes() -> list[Mistake]:
    return [
        Mistake(lambda f, t, n, s: _zero(0, f + t, n, s), "a frozen weight has no gradient and no "
                "optimizer state: it costs its 2 bf16 bytes only"),
        Mistake(lambda f, t, n, s: _zero(f, t, n, s, cumulative=False), "the stages add up: stage 2 "
                "shards the optimizer states and the gradients, stage 3 the weights as well"),
        Mistake(lambda f, t, n, s: _zero(f, t, n, s, opt=8), "12 bytes of optimizer state per trained "
                "parameter: Adam's m and v and the fp32 master copy of the weight (4 + 4 + 4)"),
        Mistake(lambda f, t, n, s: _zero(f, t, n, s, frozen_weights=False), "stage 3 shards every weight, "
                "the frozen ones too: that is what lets a base too big for one GPU fit"),
        Mistake(lambda f, t, n, s: _zero(f, t, n, 0), "with stage > 0 something is split over the "
                "world_size ranks: each holds 1/N of it"),
        Mistake(lambda f, t, n, s: _zero(f, t, n, s) / 1e9, "the answer is in bytes, not GB"),
    ]


def _zero_cases(args) -> list[Case]:
    return [Case(f"n_frozen={f:,}, n_trainable={t:,}, world_size={n}, stage={s}", (f, t, n, s),
                 _zero(f, t, n, s)) for f, t, n, s in args]


def check_zero_memory(fn, hidden: bool = False) -> CheckResult:
    """`fn(n_frozen, n_trainable, world_size, stage)` -> training bytes per rank under ZeRO stage
    0 (plain DDP), 1, 2 or 3 (= FSDP), mixed precision with Adam, activations not counted."""
    cases = _zero_cases([(0, 1000, 4, s) for s in range(4)] + [(9000, 1000, 4, 3), (1_000_000, 10_000, 8, 1)])
    more = [(500, 300, 1, 3), (6_000, 600, 3, 2), (6_738_415_616, 8_388_608, 8, 3), (7_000, 0, 5, 3),
            (123_456, 7_890, 16, 2), (0, 6_738_415_616, 64, 1)] if hidden else []
    return run_cases("zero_memory", fn, cases, _zero_mistakes(), hidden=_zero_cases(more))

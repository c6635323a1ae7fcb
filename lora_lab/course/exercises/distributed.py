"""Checkers for the exercises of `11_scale_out`: gradient bytes per step, ring all-reduce traffic."""

from __future__ import annotations

from lora_lab.course.exercises import Case, CheckResult, Mistake, run_cases


def check_grad_bytes(fn) -> CheckResult:
    """`fn(n_trainable, bytes_per_element)` -> bytes DDP all-reduces per step (each gradient once)."""
    # LoRA and full fine-tuning of the course's ViT in fp32 (measured in 11), GPT-3 r=4 on Wq, Wv
    # and LLaMA-2 7B r=16 on Wq, Wv in bf16
    args = [(4741, 4), (268_805, 4), (18_874_368, 2), (8_388_608, 2)]
    cases = [Case(f"n_trainable={n:,}, bytes_per_element={b}", (n, b), n * b) for n, b in args]
    mistakes = [
        Mistake(lambda n, b: n, "that is a parameter count: multiply by the bytes per element"),
        Mistake(lambda n, b: 8 * n * b, "that counts bits: bytes_per_element is already in bytes"),
        Mistake(lambda n, b: 2 * n * b, "the payload holds each gradient once; the 2(N−1)/N of a ring "
                "all-reduce is the traffic per rank (the next exercise), not the payload"),
        Mistake(lambda n, b: n * b / 1e6, "the answer is in bytes, not MB"),
    ]
    return run_cases("grad_bytes", fn, cases, mistakes)


def _ring(payload, n):
    return 2 * (n - 1) / n * payload


def check_ring_traffic(fn) -> CheckResult:
    """`fn(payload_bytes, world_size)` -> bytes each rank sends in a ring all-reduce."""
    args = [(10**9, 8), (1_075_220, 4), (18_964, 2), (6_000, 3), (100, 1)]
    cases = [Case(f"payload_bytes={p:,}, world_size={n}", (p, n), _ring(p, n)) for p, n in args]
    mistakes = [
        Mistake(lambda p, n: 2 * p, "each rank keeps its own 1/N chunk: a phase sends (N−1)/N of the "
                "payload, so one rank alone (N=1) sends nothing"),
        Mistake(lambda p, n: (n - 1) / n * p, "that is one phase; a ring all-reduce has two, a "
                "reduce-scatter and then an all-gather"),
        Mistake(lambda p, n: (n - 1) * p, "that sends the whole payload to every other rank; a ring "
                "passes chunks of payload/N to one neighbour at a time"),
        Mistake(lambda p, n: 2 * (n - 1) * p, "each message is a chunk of payload/N, not the whole payload"),
    ]
    return run_cases("ring_traffic", fn, cases, mistakes)

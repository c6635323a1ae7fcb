"""The arithmetic of scale: traffic formulas against the ZeRO paper's volumes, memory, QLoRA."""

import pytest

from lora_lab.maths.budget import LLAMA2_7B, full_param_count, lora_param_count
from lora_lab.maths.scale import (
    ALL_LINEAR,
    DOUBLE_QUANT_BITS,
    LLAMA_65B,
    grad_bytes_per_step,
    memory_per_rank,
    qlora_memory,
    ring_allreduce_bytes,
    traffic_per_rank,
)


def test_grad_bytes_is_count_times_width():
    assert grad_bytes_per_step(4741) == 4741 * 4  # what notebook 11 measures for LoRA
    assert grad_bytes_per_step(18_874_368, "fp16") == 37_748_736  # GPT-3 r=4 q,v (§4.2's 35 MB)
    assert grad_bytes_per_step(10, 1) == 10 and grad_bytes_per_step(0) == 0


@pytest.mark.parametrize(("n", "factor"), [(1, 0.0), (2, 1.0), (4, 1.5), (8, 1.75)])
def test_ring_allreduce_sends_two_n_minus_one_over_n(n, factor):
    assert ring_allreduce_bytes(1000, n) == pytest.approx(1000 * factor)


def test_ring_allreduce_tends_to_twice_the_payload():
    assert 1.99 * 1e6 < ring_allreduce_bytes(1e6, 1000) < 2 * 1e6


def test_traffic_full_fine_tuning_matches_zero_paper():
    """ZeRO §7: DDP moves 2Ψ per rank, ZeRO-3 (FSDP) 3Ψ, for large N; here N=1000, Ψ=1e9."""
    psi, n = 10**9, 1000
    ddp = traffic_per_rank(0, psi, n, "ddp", dtype=1)
    fsdp = traffic_per_rank(0, psi, n, "fsdp", dtype=1)
    assert ddp == pytest.approx(2 * psi, rel=1e-3) and fsdp == pytest.approx(3 * psi, rel=1e-3)


def test_lora_ddp_traffic_ignores_frozen_weights_but_fsdp_gathers_them():
    frozen, trainable = full_param_count(LLAMA2_7B), lora_param_count(LLAMA2_7B, 16, ("q", "v"))
    ddp = traffic_per_rank(frozen, trainable, 8, "ddp")
    assert ddp == traffic_per_rank(0, trainable, 8, "ddp") == ring_allreduce_bytes(2 * trainable, 8)
    fsdp = traffic_per_rank(frozen, trainable, 8, "fsdp")
    assert fsdp > 500 * ddp  # the all-gathers of the frozen base dominate


def test_one_rank_sends_nothing():
    assert traffic_per_rank(100, 10, 1, "fsdp") == 0.0


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_memory_stages_match_zero_formulas(stage):
    """ZeRO Figure 1 (K=12): (2+2+K)Ψ, 4Ψ+KΨ/N, 2Ψ+(2+K)Ψ/N, (2+2+K)Ψ/N."""
    psi, n = 1000, 4
    expected = [16 * psi, 4 * psi + 12 * psi / n, 2 * psi + 14 * psi / n, 16 * psi / n][stage]
    assert memory_per_rank(0, psi, n, stage)["total"] == pytest.approx(expected)


def test_lora_memory_is_dominated_by_frozen_weights_until_stage_three():
    frozen, trainable = 7_000, 10
    by_stage = [memory_per_rank(frozen, trainable, 8, s)["total"] for s in range(4)]
    assert by_stage[0] - by_stage[2] < 0.01 * by_stage[0]  # sharding states and grads barely helps
    assert by_stage[3] == pytest.approx(by_stage[0] / 8, rel=0.02)


def test_llama_65b_size_and_qlora_fits_48_gb():
    total = full_param_count(LLAMA_65B)
    assert 65.0e9 < total < 65.5e9  # LLaMA paper: 65.2B
    assert 12 * total > 780e9  # QLoRA §1: 16-bit fine-tuning needs "more than 780 GB"
    mem = qlora_memory()
    assert mem["total"] < 48e9 and mem["nf4 weights"] == pytest.approx(total / 2, rel=0.02)  # 4 bits
    assert mem["adapter parameters"] == lora_param_count(LLAMA_65B, 64, ALL_LINEAR)


def test_double_quantization_constants():
    assert DOUBLE_QUANT_BITS == pytest.approx(0.127, abs=5e-4)  # QLoRA §3
    plain, double = qlora_memory(double_quant=False), qlora_memory()
    ratio = plain["quantization constants"] / double["quantization constants"]
    assert ratio == pytest.approx(0.5 / 0.127, rel=0.01)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: ring_allreduce_bytes(-1, 2), ValueError, "payload_bytes must be a finite number >= 0, got -1"),
    (lambda: ring_allreduce_bytes("1", 2), TypeError, "payload_bytes must be a number"),
    (lambda: ring_allreduce_bytes(1, 0), ValueError, r"world_size must be an integer in \[1, inf\]"),
    (lambda: traffic_per_rank(1, 1, 2, "zero"), ValueError, r"strategy must be one of \['ddp', 'fsdp'\]"),
    (lambda: traffic_per_rank(-1, 1, 2), ValueError, "n_frozen must be"),
    (lambda: memory_per_rank(1, 1, 2, stage=4), ValueError, r"stage must be an integer in \[0, 3\]"),
    (lambda: grad_bytes_per_step(10, "fp8"), ValueError, "dtype must be a number > 0 or one of"),
    (lambda: grad_bytes_per_step(-1), ValueError, "n_trainable must be"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()

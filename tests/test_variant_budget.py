"""Variant parameter counts follow each paper's trained tensors; NF4 storage agrees with `maths.scale`."""

import pytest

from lora_lab.maths import nf4, scale
from lora_lab.maths.budget import GPT3_175B, LLAMA2_7B, lora_param_count, matrix_shapes
from lora_lab.maths.variant_budget import variant_param_count, vera_frozen_shared


def test_lora_like_variants_count_as_lora():
    lora = lora_param_count(GPT3_175B, 4, ("q", "v"))
    assert lora == 18_874_368  # FACTS.md, §4.2
    for v in ("lora", "rslora", "pissa", "qlora"):
        assert variant_param_count(GPT3_175B, v, 4, ("q", "v")) == lora


def test_dora_adds_one_magnitude_per_output_row():
    extra = variant_param_count(LLAMA2_7B, "dora", 8, ("q", "v")) - lora_param_count(LLAMA2_7B, 8, ("q", "v"))
    assert extra == 32 * (4096 + 4096)


def test_vera_trains_two_vectors_per_matrix_and_allows_large_r():
    assert variant_param_count(LLAMA2_7B, "vera", 256, ("q", "v")) == 32 * 2 * (4096 + 256)
    assert variant_param_count(LLAMA2_7B, "vera", 8192, ("q",)) == 32 * (4096 + 8192)  # r > d is fine
    assert vera_frozen_shared(LLAMA2_7B, 256, ("q", "v", "up")) == 256 * (11008 + 4096)


def test_adalora_adds_lambda():
    shapes = matrix_shapes(LLAMA2_7B, ("q", "k", "v"))
    expected = 32 * sum(12 * (o + i + 1) for o, i in shapes.values())
    assert variant_param_count(LLAMA2_7B, "adalora", 12, ("q", "k", "v")) == expected



def test_nf4_storage_agrees_with_the_scale_module():
    double = scale.NF4_BITS + scale.DOUBLE_QUANT_BITS
    assert nf4.bits_per_param(64, double_quant=True) == pytest.approx(double)
    assert nf4.bits_per_param(64) == scale.NF4_BITS + 32 / 64

def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="variant must be one of"):
        variant_param_count(LLAMA2_7B, "lokr", 8)
    with pytest.raises(ValueError, match="r must be an integer"):
        variant_param_count(LLAMA2_7B, "dora", 0)
    with pytest.raises(ValueError, match="r must be an integer"):
        variant_param_count(LLAMA2_7B, "vera", 0)
    with pytest.raises(TypeError, match="shape must be a ModelShape"):
        variant_param_count("GPT-5", "lora", 8)

"""Budget arithmetic: the paper's GPT-3 counts exactly, the formulas equal counting real modules
(hand-built, LoRA-wrapped, and Hugging Face models built from the presets' configs)."""

import numpy as np
import pytest
import torch
from torch import nn

from lora_lab.lora.layer import LoRALinear
from lora_lab.maths import budget
from lora_lab.maths.budget import (
    GPT2_MEDIUM,
    GPT3_175B,
    LLAMA2_7B,
    LLAMA2_70B,
    PRESETS,
    ROBERTA_BASE,
    SMOLLM2_135M,
    ModelShape,
    adapter_bytes,
    checkpoint_storage,
    full_param_count,
    lora_param_count,
    matrix_shapes,
    training_memory,
)

QV, ALL4 = ("q", "v"), ("q", "k", "v", "o")


# --- the paper's numbers (FACTS.md) ---------------------------------------------------------------
@pytest.mark.parametrize(("r", "targets", "expected"), [
    (1, QV, 4_718_592), (2, QV, 9_437_184), (4, QV, 18_874_368), (8, QV, 37_748_736),
    (2, ALL4, 18_874_368),  # §7.1 / Table 5: the same budget as Wq, Wv at r=4
])
def test_gpt3_lora_counts_match_the_paper(r, targets, expected):
    assert lora_param_count(GPT3_175B, r, targets) == expected


def test_gpt3_square_formula_and_attention_total():
    # §5.1: |Θ| = 2 · L̂_LoRA · d_model · r, with L̂_LoRA = 96 layers × 2 matrices
    assert lora_param_count(GPT3_175B, 4) == 2 * (96 * 2) * 12288 * 4
    assert full_param_count(GPT3_175B, ALL4) == 4 * 96 * 12288**2 == 57_982_058_496


def test_gpt3_adapter_and_checkpoints():
    n = lora_param_count(GPT3_175B, 4)
    assert adapter_bytes(n) == 37_748_736  # 37.7 MB; the paper's §4.2 rounds to "35MB"
    store = checkpoint_storage(GPT3_175B, 100)
    assert 34.5e12 < store["full"] < 35.5e12  # §4.2: ≈ 35 TB
    assert 350e9 < store["lora"] < 356e9  # §4.2: ≈ 354 GB
    assert store["lora"] == store["full"] // 100 + 100 * store["adapter"]


@pytest.mark.parametrize("shape", [s for s in PRESETS.values() if s.reported_params])
def test_computed_totals_are_near_the_printed_ones(shape):
    assert abs(full_param_count(shape) / shape.reported_params - 1) < 0.01


# --- the formulas against real modules ----------------------------------------------------------
def _random_shape(seed: int) -> ModelShape:
    rng = np.random.default_rng(seed)
    n_kv = int(rng.choice([1, 2]))
    n_heads = n_kv * int(rng.integers(1, 4))
    return ModelShape(f"random {seed}", n_layers=int(rng.integers(1, 4)), d_model=int(rng.integers(4, 24)),
                      n_heads=n_heads, n_kv_heads=n_kv, head_dim=int(rng.integers(2, 9)),
                      d_ff=int(rng.integers(4, 40)), vocab_size=11, gated_mlp=bool(rng.integers(2)))


def _block(d: int, q: int, kv: int, ff: int, gated: bool) -> nn.ModuleDict:
    """One layer's linear maps, built from the raw sizes (not from budget.matrix_shapes)."""
    layers = {"q": nn.Linear(d, q), "k": nn.Linear(d, kv), "v": nn.Linear(d, kv), "o": nn.Linear(q, d),
              "up": nn.Linear(d, ff), "down": nn.Linear(ff, d)}
    if gated:
        layers["gate"] = nn.Linear(d, ff)
    return nn.ModuleDict(layers)


def _lora_model(shape: ModelShape, r: int, targets) -> nn.Module:
    q, kv = shape.n_heads * shape.head_dim, shape.n_kv_heads * shape.head_dim
    model = nn.ModuleList(_block(shape.d_model, q, kv, shape.d_ff, shape.gated_mlp)
                          for _ in range(shape.n_layers))
    model.requires_grad_(False)
    for block in model:
        for t in targets:
            block[t] = LoRALinear(block[t], r=r)
    return model


@pytest.mark.parametrize("seed", range(12))
def test_formula_equals_counting_a_real_module(seed):
    shape = _random_shape(seed)
    rng = np.random.default_rng(100 + seed)
    names = list(budget.TARGETS if shape.gated_mlp else ("q", "k", "v", "o", "up", "down"))
    targets = tuple(rng.choice(names, size=int(rng.integers(1, len(names) + 1)), replace=False))
    r = int(rng.integers(1, min(min(s) for s in matrix_shapes(shape, targets).values()) + 1))
    model = _lora_model(shape, r, targets)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == lora_param_count(shape, r, targets)
    frozen_weights = sum(m.base.weight.numel() for m in model.modules() if isinstance(m, LoRALinear))
    assert frozen_weights == full_param_count(shape, targets)


def test_random_shapes_include_non_square_matrices():
    non_square = [t for seed in range(12)
                  for t, (o, i) in matrix_shapes(_random_shape(seed)).items() if o != i]
    assert {"q", "k", "v", "o", "up", "down"} <= set(non_square)


def test_non_square_kv_with_grouped_query_attention():
    shapes = matrix_shapes(LLAMA2_70B, ("q", "k", "v", "o", "down"))
    assert shapes == {"q": (8192, 8192), "k": (1024, 8192), "v": (1024, 8192), "o": (8192, 8192),
                      "down": (8192, 28672)}
    assert lora_param_count(SMOLLM2_135M, 8, ("k",)) == 30 * 8 * (3 * 64 + 576)


transformers = pytest.importorskip("transformers")


def _hf_on_meta(cls, config, **kwargs) -> nn.Module:
    with torch.device("meta"):  # no memory: only the parameters' shapes exist
        return cls(config, **kwargs)


def _llama_config(shape: ModelShape, **extra):
    return transformers.LlamaConfig(
        vocab_size=shape.vocab_size, hidden_size=shape.d_model, intermediate_size=shape.d_ff,
        num_hidden_layers=shape.n_layers, num_attention_heads=shape.n_heads,
        num_key_value_heads=shape.n_kv_heads or shape.n_heads, head_dim=shape.head_size,
        tie_word_embeddings=shape.tied_embeddings, **extra)


def _gpt2_config(shape: ModelShape):
    return transformers.GPT2Config(vocab_size=shape.vocab_size, n_positions=shape.n_positions,
                                   n_embd=shape.d_model, n_layer=shape.n_layers, n_head=shape.n_heads)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # shared (tied) tensors are counted once


@pytest.mark.parametrize("shape", [GPT3_175B, GPT2_MEDIUM, budget.GPT2_LARGE, budget.GPT3_SMALL])
def test_total_equals_a_hugging_face_gpt2_of_that_shape(shape):
    assert _count(_hf_on_meta(transformers.GPT2LMHeadModel, _gpt2_config(shape))) == full_param_count(shape)


@pytest.mark.parametrize("shape", [LLAMA2_7B, budget.LLAMA2_13B, LLAMA2_70B, SMOLLM2_135M])
def test_total_equals_a_hugging_face_llama_of_that_shape(shape):
    assert _count(_hf_on_meta(transformers.LlamaForCausalLM, _llama_config(shape))) == full_param_count(shape)


@pytest.mark.parametrize("shape", [ROBERTA_BASE, budget.ROBERTA_LARGE])
def test_total_equals_a_hugging_face_roberta_without_pooler(shape):
    config = transformers.RobertaConfig(
        vocab_size=shape.vocab_size, hidden_size=shape.d_model, num_hidden_layers=shape.n_layers,
        num_attention_heads=shape.n_heads, intermediate_size=shape.d_ff,
        max_position_embeddings=shape.n_positions, type_vocab_size=shape.n_token_types)
    model = _hf_on_meta(transformers.RobertaModel, config, add_pooling_layer=False)
    assert _count(model) == full_param_count(shape)


@pytest.mark.parametrize(("targets", "r"), [(("q", "v"), 2), (("k", "o", "gate", "down"), 3),
                                            (budget.TARGETS, 1)])
def test_inject_count_parameters_on_a_tiny_gqa_llama(targets, r):
    inject = pytest.importorskip("lora_lab.lora.inject")
    shape = ModelShape("tiny GQA", n_layers=2, d_model=24, n_heads=6, n_kv_heads=2, d_ff=40,
                       vocab_size=50, gated_mlp=True, bias=False, norm="rmsnorm", tied_embeddings=False)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(_llama_config(shape))
    assert _count(model) == full_param_count(shape)
    inject.add_lora(model, [f"{t}_proj" for t in targets], r=r)
    trainable, total = inject.count_parameters(model)
    assert trainable == lora_param_count(shape, r, targets)
    assert total == full_param_count(shape) + trainable


# --- memory, bytes, summaries --------------------------------------------------------------------
def test_training_memory_full_vs_lora():
    full = training_memory(GPT3_175B, "full")
    lora = training_memory(GPT3_175B, "lora", r=4, targets=QV)
    n = full_param_count(GPT3_175B)
    assert full.total == 8 * n and full.weights == 2 * n  # fp16 weights, grads, Adam m and v
    assert lora.weights == 2 * (n + 18_874_368) and lora.gradients == 2 * 18_874_368
    assert 3.9 < full.total / lora.total < 4.1  # the paper: 1.2 TB -> 350 GB (§4.2)
    assert "Adam" in full.assumptions and "activations" in lora.assumptions
    mixed = training_memory(GPT3_175B, "full", precision="mixed")
    assert mixed.total == 16 * n


@pytest.mark.parametrize(("bpp", "expected"), [("fp32", 400), ("fp16", 200), ("bf16", 200),
                                               ("int8", 100), (2, 200), (0.5, 50)])
def test_adapter_bytes_by_dtype(bpp, expected):
    assert adapter_bytes(100, bpp) == expected


def test_budget_summary_tracks_its_inputs():
    small = budget.budget_summary(GPT3_175B, 4, QV)
    big = budget.budget_summary(GPT3_175B, 8, ALL4)
    assert small["trainable"] == 18_874_368 and big["trainable"] == 4 * small["trainable"]
    assert small["percent"] == pytest.approx(100 * 18_874_368 / full_param_count(GPT3_175B))
    assert small["lora"].total < big["lora"].total < big["full"].total


def test_formatting():
    assert budget.format_bytes(37_748_736) == "37.7 MB"
    assert budget.format_bytes(3.5e11) == "350.0 GB" and budget.format_bytes(12) == "12 B"
    assert budget.format_count(18_874_368) == "18.87M" and budget.format_count(999) == "999"


def test_table1_overheads_match_the_printed_percentages():
    computed = budget.latency_overhead()
    for name, printed in budget.TABLE1_PRINTED_OVERHEAD.items():
        assert np.allclose(computed[name], printed, atol=0.06), name


# --- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"r": 0}, ValueError, r"r must be an integer in \[1, 12288\], got 0"),
    ({"r": -3}, ValueError, "r must be an integer"),
    ({"r": 12289}, ValueError, r"\[1, 12288\]"),
    ({"r": 1.5}, TypeError, "r must be an integer"),
    ({"r": 4, "targets": ("q", "x")}, ValueError, r"targets must be names from .* got \['x'\]"),
    ({"r": 4, "targets": ("gate",)}, ValueError, "for GPT-3 175B, got"),
    ({"r": 4, "targets": ()}, ValueError, "targets must name at least one matrix"),
    ({"r": 4, "targets": ("q", "q")}, ValueError, "must not repeat"),
    ({"r": 4, "targets": 7}, TypeError, "targets must be a tuple"),
])
def test_lora_param_count_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        lora_param_count(GPT3_175B, **kwargs)


@pytest.mark.parametrize(("field", "value", "error", "match"), [
    ("d_model", -8, ValueError, r"d_model must be an integer in \[1, inf\], got -8"),
    ("n_layers", 0, ValueError, "n_layers must be an integer"),
    ("d_ff", 2.5, TypeError, "d_ff must be an integer"),
    ("n_positions", -1, ValueError, "n_positions must be an integer in \\[0, inf\\]"),
    ("n_kv_heads", 3, ValueError, "n_kv_heads must divide n_heads=4"),
    ("n_heads", 5, ValueError, "must be divisible by n_heads=5"),
    ("norm", "batchnorm", ValueError, "norm must be one of"),
    ("name", "", TypeError, "name must be a non-empty string"),
])
def test_model_shape_rejects_bad_sizes(field, value, error, match):
    sizes = dict(name="toy", n_layers=2, d_model=16, n_heads=4, d_ff=32, vocab_size=10)
    sizes[field] = value
    with pytest.raises(error, match=match):
        ModelShape(**sizes)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: adapter_bytes(-1), ValueError, r"n_params must be an integer in \[0, inf\], got -1"),
    (lambda: adapter_bytes(10, 0), ValueError, "bytes_per_param must be a number > 0"),
    (lambda: adapter_bytes(10, "fp8"), ValueError, r"bytes_per_param .* got 'fp8'"),
    (lambda: adapter_bytes(10, None), TypeError, "bytes_per_param must be"),
    (lambda: training_memory(GPT3_175B, "prefix"), ValueError, "method must be 'full' or 'lora'"),
    (lambda: training_memory(GPT3_175B, precision="fp64"), ValueError, "precision must be one of"),
    (lambda: checkpoint_storage(GPT3_175B, 0), ValueError, "n_tasks must be an integer in"),
    (lambda: full_param_count("GPT-5"), TypeError, "shape must be a ModelShape or one of"),
    (lambda: budget.latency_overhead(base="none"), ValueError, "base must be one of"),
])
def test_other_functions_reject_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()

"""The shapes of real Transformers, enough to count their parameters (used by `lora_lab.maths.budget`).

Each preset cites where its numbers come from. `reported_params` is the count a paper printed,
where one did; the budget module computes its own count from the shape, and the tests compare
the two (and compare the computed count with Hugging Face models built from the same config).
"""

from __future__ import annotations

from dataclasses import dataclass

from lora_lab._checks import check_choice, check_int

NORMS = ("layernorm", "rmsnorm")


@dataclass(frozen=True)
class ModelShape:
    """A Transformer's sizes. W_q is (n_heads·head_dim, d_model); W_k, W_v are
    (n_kv_heads·head_dim, d_model) (fewer rows with grouped-query attention); W_o is
    (d_model, n_heads·head_dim); the MLP's up (and gate) are (d_ff, d_model), down is (d_model, d_ff)."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    d_ff: int
    vocab_size: int
    n_kv_heads: int | None = None  # None: as many as n_heads (no grouped-query attention)
    head_dim: int | None = None  # None: d_model // n_heads
    n_positions: int = 0  # learned position embeddings (0: rotary, nothing stored)
    n_token_types: int = 0  # BERT-style segment embeddings
    gated_mlp: bool = False  # SwiGLU: gate, up and down matrices instead of up and down
    bias: bool = True
    norm: str = "layernorm"  # "layernorm" (weight and bias) or "rmsnorm" (weight only)
    tied_embeddings: bool = True  # the LM head reuses the token embedding
    reported_params: int | None = None
    source: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string, got {self.name!r}")
        for field in ("n_layers", "d_model", "n_heads", "d_ff", "vocab_size"):
            check_int(field, getattr(self, field), low=1)
        for field in ("n_positions", "n_token_types"):
            check_int(field, getattr(self, field), low=0)
        check_choice("norm", self.norm, NORMS)
        if self.head_dim is None and self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads} "
                             "(or give head_dim)")
        if self.head_dim is not None:
            check_int("head_dim", self.head_dim, low=1)
        if self.n_kv_heads is not None:
            check_int("n_kv_heads", self.n_kv_heads, low=1, high=self.n_heads)
            if self.n_heads % self.n_kv_heads:
                raise ValueError(f"n_kv_heads must divide n_heads={self.n_heads}, got {self.n_kv_heads}")

    @property
    def head_size(self) -> int:
        return self.head_dim or self.d_model // self.n_heads

    @property
    def q_dim(self) -> int:
        """Rows of W_q (and columns of W_o)."""
        return self.n_heads * self.head_size

    @property
    def kv_dim(self) -> int:
        """Rows of W_k and W_v."""
        return (self.n_kv_heads or self.n_heads) * self.head_size


_GPT = dict(vocab_size=50257, n_positions=2048)
_BROWN = "Brown et al. 2020, Table 2.1; d_ff = 4·d_model, vocabulary 50,257, context 2,048"
GPT3_175B = ModelShape("GPT-3 175B", 96, 12288, 96, 4 * 12288, **_GPT,
                       reported_params=175_255_800_000,
                       source=_BROWN + "; 175,255.8M trainable parameters in LoRA Table 4")
GPT3_6_7B = ModelShape("GPT-3 6.7B", 32, 4096, 32, 4 * 4096, **_GPT,
                       reported_params=6_700_000_000, source=_BROWN)
GPT3_SMALL = ModelShape("GPT-3 Small (125M)", 12, 768, 12, 4 * 768, **_GPT,
                        reported_params=125_000_000, source=_BROWN)
_GPT2 = dict(vocab_size=50257, n_positions=1024)
GPT2_MEDIUM = ModelShape("GPT-2 medium", 24, 1024, 16, 4096, **_GPT2, reported_params=354_920_000,
                         source="Hugging Face config gpt2-medium; 354.92M in LoRA Table 3")
GPT2_LARGE = ModelShape("GPT-2 large", 36, 1280, 20, 5120, **_GPT2, reported_params=774_030_000,
                        source="Hugging Face config gpt2-large; 774.03M in LoRA Table 3")
_ROB = dict(vocab_size=50265, n_positions=514, n_token_types=1)
_ROB_NOTE = "; the count here leaves out the pooler and the task head"
ROBERTA_BASE = ModelShape("RoBERTa base", 12, 768, 12, 3072, **_ROB, reported_params=125_000_000,
                          source="Hugging Face config roberta-base; 125.0M in LoRA Table 2" + _ROB_NOTE)
ROBERTA_LARGE = ModelShape("RoBERTa large", 24, 1024, 16, 4096, **_ROB, reported_params=355_000_000,
                           source="Hugging Face config roberta-large; 355.0M in LoRA Table 2" + _ROB_NOTE)
_LLAMA = dict(vocab_size=32000, gated_mlp=True, bias=False, norm="rmsnorm", tied_embeddings=False)
LLAMA2_7B = ModelShape("LLaMA-2 7B", 32, 4096, 32, 11008, **_LLAMA,
                       source="Touvron et al. 2023; Hugging Face config Llama-2-7b-hf")
LLAMA2_13B = ModelShape("LLaMA-2 13B", 40, 5120, 40, 13824, **_LLAMA,
                        source="Touvron et al. 2023; Hugging Face config Llama-2-13b-hf")
LLAMA2_70B = ModelShape("LLaMA-2 70B", 80, 8192, 64, 28672, n_kv_heads=8, **_LLAMA,
                        source="Touvron et al. 2023 (grouped-query attention, 8 K/V heads); "
                               "Hugging Face config Llama-2-70b-hf")
SMOLLM2_135M = ModelShape("SmolLM2-135M", 30, 576, 9, 1536, vocab_size=49152, n_kv_heads=3,
                          gated_mlp=True, bias=False, norm="rmsnorm", tied_embeddings=True,
                          source="Hugging Face config SmolLM2-135M (LLaMA architecture, 3 K/V heads)")

#: Name -> shape, for menus and sliders, smallest first.
PRESETS = {s.name: s for s in (SMOLLM2_135M, GPT3_SMALL, ROBERTA_BASE, GPT2_MEDIUM, ROBERTA_LARGE,
                               GPT2_LARGE, GPT3_6_7B, LLAMA2_7B, LLAMA2_13B, LLAMA2_70B, GPT3_175B)}

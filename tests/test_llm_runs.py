"""`llm_runs.cached_train_lm`: train once, read back bit for bit, keyed on everything the result
depends on; a corrupt entry is a miss. On a tiny random Llama in a temporary cache."""

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from lora_lab.lab import llm, llm_runs  # noqa: E402
from lora_lab.lora.inject import add_lora  # noqa: E402

VOCAB = 24


def _model(seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, head_dim=4, max_position_embeddings=64,
        tie_word_embeddings=True, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    model = transformers.LlamaForCausalLM(config)
    torch.manual_seed(seed + 100)
    return add_lora(model, ["q_proj", "v_proj"], r=2, alpha=4)


BLOCKS = torch.randint(2, VOCAB, (8, 6), generator=torch.Generator().manual_seed(0))
SETTINGS = {"steps": 3, "batch_size": 2, "lr": 1e-2, "seed": 0}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_LAB_CACHE", str(tmp_path))
    return tmp_path / "runs"


def _trained(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_a_hit_gives_back_the_losses_and_the_weights_of_training(cache):
    trained = _model()
    losses = llm.train_lm(trained, BLOCKS, **SETTINGS)
    first, first_seconds = llm_runs.cached_train_lm(_model(), BLOCKS, **SETTINGS)
    assert first == losses and len(list(cache.glob("lm-v*.safetensors"))) == 1
    loaded = _model()
    again, seconds = llm_runs.cached_train_lm(loaded, BLOCKS, **SETTINGS)
    assert again == losses and seconds == first_seconds
    for name, value in _trained(trained).items():
        assert torch.equal(dict(loaded.named_parameters())[name], value), name


@pytest.mark.parametrize("change", ["base", "start", "blocks", "lr", "steps"])
def test_anything_the_result_depends_on_changes_the_key(change):
    model, blocks, settings = _model(), BLOCKS, dict(SETTINGS)
    key = llm_runs.run_key(model, blocks, **settings)
    if change == "base":
        with torch.no_grad():
            model.model.embed_tokens.weight[0, 0] += 1e-6
    elif change == "start":
        with torch.no_grad():
            next(p for n, p in model.named_parameters() if "lora_A" in n)[0, 0] += 1e-6
    elif change == "blocks":
        blocks = blocks.clone()
        blocks[0, 0] = (blocks[0, 0] + 1) % VOCAB
    else:
        settings[change] = settings[change] * 2
    assert llm_runs.run_key(model, blocks, **settings) != key


def test_a_corrupt_entry_is_a_miss_that_is_trained_again(cache):
    losses, _ = llm_runs.cached_train_lm(_model(), BLOCKS, **SETTINGS)
    (entry,) = cache.glob("lm-v*.safetensors")
    entry.write_bytes(entry.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable cached LM run"):
        again, _ = llm_runs.cached_train_lm(_model(), BLOCKS, **SETTINGS)
    assert again == losses
    from safetensors import safe_open

    with safe_open(str(entry), framework="pt") as f:  # rewritten whole
        assert json.loads(f.metadata()["losses"]) == losses


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="blocks must be a torch.Tensor"):
        llm_runs.cached_train_lm(_model(), BLOCKS.tolist(), **SETTINGS)
    with pytest.raises(ValueError, match="steps"):
        llm_runs.cached_train_lm(_model(), BLOCKS, **{**SETTINGS, "steps": 0})
    frozen = _model().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        llm_runs.cached_train_lm(frozen, BLOCKS, **SETTINGS)

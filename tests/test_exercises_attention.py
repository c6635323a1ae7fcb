"""The checkers of 04_lora_attention accept the reference and reject known mistakes with a hint."""

import pytest
import torch
from torch import nn

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.attention import (
    check_lora_param_count,
    check_matches,
    check_seed_trainable,
    check_split_heads,
    check_split_qkv,
    lora_param_count,
    matches,
    seed_attention_trainable,
)
from lora_lab.lora.attention import TransformerBlock, split_qkv
from lora_lab.lora.inject import _matches, add_lora, count_parameters

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def _stub(*args):
    raise NotImplementedError()


def _heads(x, n_heads):
    B, T, d = x.shape
    return x.view(B, T, n_heads, d // n_heads).transpose(1, 2)


def test_split_heads_accepts_reference(lang, capsys):
    assert check_split_heads(_heads).passed
    assert lang.en(capsys.readouterr().out).strip() == "✓ split_heads: 4/4 cases"


@pytest.mark.parametrize(("fn", "hint"), [
    (lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1), "mixes tokens into heads"),
    (lambda x, h: x.reshape(*x.shape[:2], -1, h).permute(0, 3, 1, 2), "owns the columns"),
    (lambda x, h: x.reshape(*x.shape[:2], h, -1), "expected shape (2, 2, 5, 4), got (2, 5, 2, 4)"),
    (_stub, NOT_DONE),
])
def test_split_heads_rejects(lang, fn, hint):
    result = check_split_heads(fn, show=False)
    assert not result.passed and hint in lang.en(result.message)


def test_seed_trainable_reference_equals_a_transcription():
    """The formula counts what a LoRAAttention built as in the notes really leaves trainable."""
    d, r = 64, 4
    layers = [nn.Linear(d, d) for _ in range(4)]  # W_Q, W_K, W_V, W_O
    for layer in layers[:3]:  # the notes freeze these three only
        layer.requires_grad_(False)
    lora = [torch.zeros(r, d).requires_grad_(), torch.zeros(d, r).requires_grad_()] * 3
    trainable = sum(p.numel() for m in layers for p in m.parameters() if p.requires_grad)
    assert trainable + sum(t.numel() for t in lora) == seed_attention_trainable(d, r) == 5696


@pytest.mark.parametrize(("fn", "passed", "hint"), [
    (seed_attention_trainable, True, "3/3 cases"),
    (lambda d, r: 6 * r * d, False, "W_O is never frozen"),
    (lambda d, r: 6 * r * d + d * d, False, "bias"),
    (lambda d, r: 3 * r * d + d * d + d, False, "two factors"),
    (lambda d, r: 4 * r * d + d * d + d, False, "three (A, B) pairs"),
    (_stub, False, NOT_DONE),
    (lambda d, r: 7000, False, "expected 5696, got 7000"),
])
def test_seed_trainable_checker(lang, fn, passed, hint):
    result = check_seed_trainable(fn, show=False)
    assert result.passed is passed and hint in lang.en(result.message)


@pytest.mark.parametrize("targets", [("q_proj", "v_proj"), ("fc1",), ("q_proj", "k_proj", "o_proj", "fc2")])
def test_param_count_reference_equals_add_lora(targets):
    model = nn.Sequential(*[TransformerBlock(8, 2, d_ff=20) for _ in range(3)])
    add_lora(model, list(targets), r=2)
    assert count_parameters(model)[0] == lora_param_count(8, 20, 3, targets, 2)


def test_param_count_gpt3_matches_the_paper():
    assert lora_param_count(12288, 49152, 96, ("q_proj", "v_proj"), 4) == 18_874_368  # FACTS, §5.1
    assert lora_param_count(12288, 49152, 96, ("q_proj", "k_proj", "v_proj", "o_proj"), 2) == 18_874_368


def test_param_count_checker(lang):
    assert check_lora_param_count(lora_param_count, show=False).passed
    wrong = {
        "2·r·d_model holds for the square": lambda d, f, n, t, r: n * len(t) * 2 * r * d,
        "multiply by n_layers": lambda d, f, n, t, r: len(t) * 2 * r * d if "fc1" not in t else 0,
        "count both factors": lambda d, f, n, t, r: lora_param_count(d, f, n, t, r) // 2,
        "size of r full matrices": lambda d, f, n, t, r: n * len(t) * r * d * d,
    }
    for hint, fn in wrong.items():
        result = check_lora_param_count(fn, show=False)
        assert not result.passed and hint in lang.en(result.message), (hint, lang.en(result.message))
    assert NOT_DONE in lang.en(check_lora_param_count(_stub, show=False).message)


def test_matches_reference_agrees_with_add_lora_matching():
    from lora_lab.course.exercises.attention import MATCH_CASES

    for name, target, ok in MATCH_CASES:
        assert matches(name, target) == _matches(name, target) == ok


def test_matches_checker(lang):
    assert check_matches(matches, show=False).passed
    assert check_matches(lambda n, t: bool(_matches(n, t)), show=False).passed
    for fn, hint in [(lambda n, t: n.endswith(t), "require a dot"), (lambda n, t: t in n, "anywhere inside"),
                     (lambda n, t: n.split(".")[-1] == t, "several parts"), (_stub, NOT_DONE),
                     (lambda n, t: None, "return True or False, got NoneType")]:
        result = check_matches(fn, show=False)
        assert not result.passed and hint in lang.en(result.message), (hint, lang.en(result.message))


def test_split_qkv_checker(lang):
    assert check_split_qkv(split_qkv, show=False).passed
    assert check_split_qkv(lambda W: list(W.chunk(3)), show=False).passed
    for fn, hint in [
        (lambda W: W.reshape(W.shape[0] // 3, 3, -1).unbind(1), "not interleaved"),
        (lambda W: W.chunk(3)[::-1], "the order is q, k, v"),
        (lambda W: W.chunk(3, dim=1), "stacks W_q, W_k, W_v along its rows"),
        (lambda W: W, "return three tensors"),
        (_stub, NOT_DONE),
    ]:
        result = check_split_qkv(fn, show=False)
        assert not result.passed and hint in lang.en(result.message), (hint, lang.en(result.message))


def test_split_qkv_checker_cannot_be_fooled_by_in_place_edits():
    def zeroing(W):
        q, k, v = W.chunk(3)
        W.zero_()  # the checker passes a copy, so the expected values stay intact
        return q, k, v

    assert not check_split_qkv(zeroing, show=False).passed


# --- the grade cells' hidden cases -------------------------------------------------------------

@pytest.mark.parametrize(("check", "ref", "hidden"), [
    (check_split_heads, _heads, 2), (check_seed_trainable, seed_attention_trainable, 2),
    (check_lora_param_count, lora_param_count, 2), (check_matches, matches, 5),
    (check_split_qkv, split_qkv, 2),
])
def test_hidden_cases_accept_the_reference(check, ref, hidden):
    visible, more = check(ref, show=False), check(ref, show=False, hidden=True)
    assert visible.passed and more.passed and more.total == visible.total + hidden and more.hidden == hidden


def test_hidden_cases_catch_answers_that_only_fit_the_visible_ones():
    def seen_sizes(d, r):
        return seed_attention_trainable(d, r) if (d, r) in {(64, 4), (16, 2), (768, 8)} else 0

    assert check_seed_trainable(seen_sizes, show=False).passed
    assert not check_seed_trainable(seen_sizes, show=False, hidden=True).passed
    from lora_lab.course.exercises.attention import MATCH_CASES

    seen = {(n, t): ok for n, t, ok in MATCH_CASES}
    assert not check_matches(lambda n, t: seen.get((n, t), False), show=False, hidden=True).passed

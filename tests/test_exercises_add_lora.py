"""The module checkers of 04_lora_attention (the learner's add_lora, note 004's LoRAAttention fixed)
accept the reference and reject known-wrong answers with a message that teaches."""

import pytest
import torch
from torch import nn

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.add_lora import Unseen, check_add_lora, check_attention_fix
from lora_lab.lora.inject import add_lora, lora_layers
from lora_lab.lora.layer import LoRALinear

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def replace(model, chosen, r, alpha, freeze=True):
    if freeze:
        model.requires_grad_(False)
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), r=r, alpha=alpha))
    return model


def linears(model, rule):
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and rule(n)]


def reference(model, targets, r, alpha):
    chosen = linears(model, lambda n: any(n == t or n.endswith("." + t) for t in targets))
    return replace(model, chosen, r, alpha)


def bare_endswith(model, targets, r, alpha):
    return replace(model, linears(model, lambda n: any(n.endswith(t) for t in targets)), r, alpha)


def unfrozen(model, targets, r, alpha):
    chosen = linears(model, lambda n: any(n == t or n.endswith("." + t) for t in targets))
    return replace(model, chosen, r, alpha, freeze=False)


def no_return(model, targets, r, alpha):
    reference(model, targets, r, alpha)


def in_name(model, targets, r, alpha):
    return replace(model, linears(model, lambda n: any(t in n for t in targets)), r, alpha)


def nothing_replaced(model, targets, r, alpha):
    return model.requires_grad_(False)


def stub(*args):
    raise NotImplementedError()


def test_add_lora_accepts_the_reference_and_the_package(lang, capsys):
    assert check_add_lora(reference).passed
    assert lang.en(capsys.readouterr().out).strip() == "✓ add_lora: 8/8 cases"
    result = check_add_lora(reference, hidden=True, show=False)
    assert result.passed and result.total == 16 and result.hidden == 8
    package = check_add_lora(lambda m, t, r, a: add_lora(m, t, r=r, alpha=a), hidden=True, show=False)
    assert package.passed


def test_the_unseen_model_is_not_the_notebooks_and_the_package_agrees_on_it():
    model = add_lora(Unseen(trap=True), ["query"], r=2)
    assert set(lora_layers(model)) == {"layers.0.query", "layers.1.query"}  # not 'subquery'


@pytest.mark.parametrize(("fn", "hidden", "message"), [
    (bare_endswith, True, "a bare endswith also takes 'subquery'"),
    (unfrozen, False, "everything but A and B must be frozen"),
    (no_return, False, "return the model"),
    (in_name, True, "end with '.' + target"),
    (nothing_replaced, False, "setattr(parent, child_name"),
    (stub, False, NOT_DONE),
    (lambda m, t, r, a: 0.0, False, "got float"),
])
def test_add_lora_rejects_known_mistakes(lang, fn, hidden, message):
    result = check_add_lora(fn, hidden=hidden, show=False)
    assert not result.passed and message in lang.en(result.message), lang.en(result.message)
    assert result.cases < result.total


def test_the_hidden_cases_catch_a_bare_endswith_the_visible_ones_miss():
    assert check_add_lora(bare_endswith, show=False).passed
    assert not check_add_lora(bare_endswith, hidden=True, show=False).passed


# --- note 004's LoRAAttention, fixed -----------------------------------------------------------

class Notes(nn.Module):
    """The notes' layer in short: W_O trainable, no α/r."""

    def __init__(self, embed_dim, r, alpha):
        super().__init__()
        self.embed_dim, self.scaling = embed_dim, 1.0
        for n in ("W_Q", "W_K", "W_V", "W_O"):
            setattr(self, n, nn.Linear(embed_dim, embed_dim))
        for n in ("W_Q", "W_K", "W_V"):
            getattr(self, n).requires_grad_(False)
        for p in "QKV":
            setattr(self, f"A_{p}", nn.Parameter(nn.init.normal_(torch.empty(r, embed_dim), std=0.02)))
            setattr(self, f"B_{p}", nn.Parameter(torch.zeros(embed_dim, r)))

    def forward(self, query, key, value):
        s = self.scaling
        Q = self.W_Q(query) + s * (query @ self.A_Q.t()) @ self.B_Q.t()
        K = self.W_K(key) + s * (key @ self.A_K.t()) @ self.B_K.t()
        V = self.W_V(value) + s * (value @ self.A_V.t()) @ self.B_V.t()
        weights = torch.softmax(Q @ K.transpose(-2, -1) / self.embed_dim ** 0.5, dim=-1)
        return self.W_O(weights @ V)


class Fixed(Notes):
    def __init__(self, embed_dim, r, alpha):
        super().__init__(embed_dim, r, alpha)
        self.W_O.requires_grad_(False)
        self.scaling = alpha / r


class FrozenButUnscaled(Notes):
    def __init__(self, embed_dim, r, alpha):
        super().__init__(embed_dim, r, alpha)
        self.W_O.requires_grad_(False)


class RandomB(Fixed):
    def __init__(self, embed_dim, r, alpha):
        super().__init__(embed_dim, r, alpha)
        nn.init.normal_(self.B_Q)


class AttentionStub(nn.Module):
    def __init__(self, embed_dim, r, alpha):
        super().__init__()
        raise NotImplementedError()


def test_attention_fix_accepts_the_fix(lang, capsys):
    assert check_attention_fix(Fixed).passed
    assert lang.en(capsys.readouterr().out).strip() == "✓ attention_fix: 4/4 cases"
    result = check_attention_fix(Fixed, hidden=True, show=False)
    assert result.passed and result.total == 12 and result.hidden == 8


@pytest.mark.parametrize(("cls", "message"), [
    (Notes, "W_O is still trainable"),
    (FrozenButUnscaled, "multiply (x Aᵀ)Bᵀ by α/r (= 2 here)"),
    (RandomB, "B starts at zero"),
    (AttentionStub, NOT_DONE),
])
def test_attention_fix_rejects_the_notes_bugs(lang, cls, message):
    result = check_attention_fix(cls, show=False)
    assert not result.passed and message in lang.en(result.message), lang.en(result.message)

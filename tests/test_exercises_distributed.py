"""Scale-out checkers accept the reference answers, reject known mistakes with teaching hints, catch
answers that special-case the visible cases with their hidden ones, and never crash."""

import math

import pytest
import torch

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.distributed import check_payload_bytes, check_ring_traffic, check_zero_memory
from lora_lab.maths.scale import memory_per_rank, ring_allreduce_bytes

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def _todo(*args):
    raise NotImplementedError()


def payload_bytes(model, wire_dtype=None):
    """The notebook's solution."""
    total = 0
    for p in model.parameters():
        if p.requires_grad:
            width = p.element_size() if wire_dtype is None else wire_dtype.itemsize
            total += p.numel() * width
    return total


def zero_memory(n_frozen, n_trainable, world_size, stage):
    """The notebook's solution."""
    weights = 2 * (n_frozen + n_trainable) / (world_size if stage >= 3 else 1)
    grads = 2 * n_trainable / (world_size if stage >= 2 else 1)
    states = 12 * n_trainable / (world_size if stage >= 1 else 1)
    return weights + grads + states


REFERENCES = {
    check_payload_bytes: payload_bytes,
    check_ring_traffic: lambda p, n: 2 * (n - 1) / n * p,
    check_zero_memory: zero_memory,
}
CHECKERS = list(REFERENCES)


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_reference_passes(lang, checker, hidden, capsys):
    result = checker(REFERENCES[checker], hidden=hidden)
    assert result.passed and result.cases == result.total
    assert (result.hidden > 0) == hidden
    assert lang.en(capsys.readouterr().out).startswith("✓")


def test_package_functions_pass_the_checkers():
    """The notebook's answers and lora_lab.maths.scale agree."""
    assert check_ring_traffic(ring_allreduce_bytes, hidden=True).passed
    assert check_zero_memory(lambda f, t, n, s: memory_per_rank(f, t, n, s)["total"], hidden=True).passed


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_unfinished_exercise_says_not_done(lang, checker):
    result = checker(_todo, hidden=True)
    assert not result.passed and NOT_DONE in lang.en(result.message) and result.cases == 0


def _grads(model, width_of):
    return sum(p.numel() * width_of(p) for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize(("wrong", "hint"), [
    (lambda m, w=None: sum(p.numel() * p.element_size() for p in m.parameters()), "requires_grad=True"),
    (lambda m, w=None: sum(p.numel() for p in m.parameters() if p.requires_grad), "parameter count"),
    (lambda m, w=None: _grads(m, lambda p: p.element_size()), "wire_dtype.itemsize"),
    (lambda m, w=None: _grads(m, lambda p: 4), "not every gradient has 4 bytes"),
    (lambda m, w=None: 8 * payload_bytes(m, w), "counts bits"),
    (lambda m, w=None: 2 * payload_bytes(m, w), "each gradient once"),
])
def test_payload_mistakes_get_their_hint(lang, wrong, hint, capsys):
    result = check_payload_bytes(wrong)
    assert not result.passed and hint in lang.en(result.message)
    assert lang.en(capsys.readouterr().out).startswith("✗")


def test_payload_counts_a_tied_weight_once(lang):
    """A loop over the modules finds a shared weight twice; only the hidden cases hold one."""
    def per_module(model, wire_dtype=None):
        width = (lambda p: p.element_size()) if wire_dtype is None else (lambda p: wire_dtype.itemsize)
        return sum(p.numel() * width(p) for m in model.modules() for p in m.parameters(recurse=False)
                   if p.requires_grad)

    assert check_payload_bytes(per_module).passed  # the visible cases share no weight
    result = check_payload_bytes(per_module, hidden=True)
    assert not result.passed and "shared by two modules" in lang.en(result.message)


def one_stage_each(n_frozen, n_trainable, world_size, stage):
    """Stage 2 shards only the gradients, stage 3 only the weights: the stages taken one at a time."""
    weights = 2 * (n_frozen + n_trainable) / (world_size if stage == 3 else 1)
    grads = 2 * n_trainable / (world_size if stage == 2 else 1)
    return weights + grads + 12 * n_trainable / (world_size if stage == 1 else 1)


@pytest.mark.parametrize(("checker", "wrong", "hint"), [
    (check_ring_traffic, lambda p, n: 2 * p, "keeps its own 1/N chunk"),
    (check_ring_traffic, lambda p, n: (n - 1) / n * p, "that is one phase"),
    (check_ring_traffic, lambda p, n: (n - 1) * p, "whole payload to every other rank"),
    (check_ring_traffic, lambda p, n: 2 * (n - 1) * p, "chunk of payload/N"),
    (check_zero_memory, lambda f, t, n, s: zero_memory(0, f + t, n, s), "no optimizer state"),
    (check_zero_memory, one_stage_each, "the stages add up"),
    (check_zero_memory, lambda f, t, n, s: zero_memory(f, t, n, s) - 4 * t / (n if s >= 1 else 1),
     "12 bytes"),
    (check_zero_memory, lambda f, t, n, s: zero_memory(f, t, n, s) + (2 * f - 2 * f / n) * (s >= 3),
     "the frozen ones too"),
    (check_zero_memory, lambda f, t, n, s: zero_memory(f, t, n, 0), "1/N"),
    (check_zero_memory, lambda f, t, n, s: zero_memory(f, t, n, s) / 1e9, "in bytes, not GB"),
])
def test_known_mistakes_get_their_hint(lang, checker, wrong, hint, capsys):
    result = checker(wrong, hidden=True)
    assert not result.passed and hint in lang.en(result.message)
    assert lang.en(capsys.readouterr().out).startswith("✗")


def _visible_only(checker):
    """An answer that looks the visible cases up and returns -1 for anything else."""
    seen = {}

    def spy(*args):
        key = tuple(id(a) if isinstance(a, torch.nn.Module) else a for a in args)
        seen.setdefault(key, REFERENCES[checker](*args))
        return seen[key]

    checker(spy)  # learn the visible cases' answers

    def special_cased(*args):
        key = tuple(id(a) if isinstance(a, torch.nn.Module) else a for a in args)
        return seen.get(key, -1)

    return special_cased


@pytest.mark.parametrize("checker", [check_ring_traffic, check_zero_memory], ids=lambda c: c.__name__)
def test_hidden_cases_catch_special_cased_answers(checker):
    cheat = _visible_only(checker)
    assert checker(cheat).passed
    result = checker(cheat, hidden=True)
    assert not result.passed and result.cases == result.total - result.hidden


def test_hidden_payload_cases_catch_a_lookup_of_the_visible_answers():
    answers = iter([36 * 4, 48 * 4, 18 * 2 + 20 * 4, 48 * 2])  # the visible cases, in order
    result = check_payload_bytes(lambda m, w=None: next(answers, 0), hidden=True)
    assert not result.passed and result.cases == 4 and result.total == 10


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("answer", "says"), [
    (lambda *args: 1 / 0, "ZeroDivisionError"),
    (lambda *args: math.nan, "NaN"),
    (lambda *args: "lots", "expected a number"),
    (lambda *args: None, "forget `return`"),
    (lambda *args: [1, 2], "expected shape"),
])
def test_a_learners_mistake_becomes_a_message(lang, checker, answer, says):
    result = checker(answer, hidden=True)
    assert not result.passed and says in lang.en(result.message)


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_not_a_function(lang, checker):
    result = checker(42)
    assert not result.passed and "expected a function" in lang.en(result.message)

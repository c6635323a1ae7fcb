"""The 09_capstone_real_llm checkers accept the reference and teach on known-wrong answers."""

import math

import pytest
import torch

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.llm import check_lora_qv_params, check_perplexity

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def _not_done(*args):
    raise NotImplementedError()


def test_perplexity_accepts_the_reference(lang, capsys):
    result = check_perplexity(lambda ls: float(torch.as_tensor(ls, dtype=torch.float64).mean().exp()))
    assert result.passed and result.cases == result.total == 4
    assert lang.en(capsys.readouterr().out).strip() == "✓ perplexity: 4/4 cases"


def test_perplexity_accepts_plain_python():
    assert check_perplexity(lambda ls: math.exp(sum(float(x) for x in ls) / len(ls))).passed


@pytest.mark.parametrize(("fn", "hint"), [
    (lambda ls: float(torch.as_tensor(ls, dtype=torch.float64).exp().mean()), "exp of the MEAN loss"),
    (lambda ls: float(2 ** torch.as_tensor(ls, dtype=torch.float64).mean()), "use e, not 2"),
    (lambda ls: float(torch.as_tensor(ls, dtype=torch.float64).sum().exp()), "divide by the number"),
    (lambda ls: float(torch.as_tensor(ls, dtype=torch.float64).mean()), "perplexity is its exp"),
    (lambda ls: "high", "expected a number"),
    (_not_done, NOT_DONE),
])
def test_perplexity_teaches(lang, fn, hint):
    result = check_perplexity(fn)
    assert not result.passed and hint in lang.en(result.message)


def test_lora_qv_params_accepts_the_reference(lang, capsys):
    result = check_lora_qv_params(lambda n, d, k, r: n * r * (2 * d + d + k))
    assert result.passed and result.cases == result.total == 4
    assert lang.en(capsys.readouterr().out).strip() == "✓ lora_qv_params: 4/4 cases"


@pytest.mark.parametrize(("fn", "hint"), [
    (lambda n, d, k, r: 4 * n * d * r, "assumes square matrices"),
    (lambda n, d, k, r: r * (3 * d + k), "that is one layer"),
    (lambda n, d, k, r: n * r * 2 * d, "counts W_q only"),
    (lambda n, d, k, r: n * r * (d + k), "have their own A"),
    (lambda n, d, k, r: n * (d * d + d * k), "what full fine-tuning would train"),
    (lambda n, d, k, r: 1 / 0, "ZeroDivisionError"),
    (_not_done, NOT_DONE),
])
def test_lora_qv_params_teaches(lang, fn, hint):
    result = check_lora_qv_params(fn)
    assert not result.passed and hint in lang.en(result.message)


def test_smollm2_case_comes_first_so_the_square_formula_is_caught(lang):
    result = check_lora_qv_params(lambda n, d, k, r: 4 * n * d * r)
    assert "n_layers=30, d_model=576, d_kv=192" in lang.en(result.message) and "552960" in lang.en(
        result.message)


def test_hidden_cases_accept_the_reference(lang):
    result = check_perplexity(lambda ls: float(torch.as_tensor(ls, dtype=torch.float64).mean().exp()),
                              hidden=True)
    assert result.passed and result.cases == result.total == 7 and result.hidden == 3
    result = check_lora_qv_params(lambda n, d, k, r: n * r * (2 * d + d + k), hidden=True)
    assert result.passed and result.cases == result.total == 7 and "(3 hidden)" in lang.en(result.message)


def test_hidden_cases_catch_answers_special_cased_to_the_visible_ones(lang):
    visible = [(30, 576, 192, 8), (12, 768, 768, 4), (2, 16, 8, 2), (96, 12288, 12288, 4)]
    known = {a: a[0] * a[3] * (3 * a[1] + a[2]) for a in visible}  # a lookup table of the visible cases
    assert check_lora_qv_params(lambda *a: known.get(a, 0)).passed
    result = check_lora_qv_params(lambda *a: known.get(a, 0), hidden=True)
    assert not result.passed and "hidden case n_layers=32" in lang.en(result.message) and result.cases == 4

    def mean_of_first_three(ls):  # passes the visible lists, none of which has an outlier after 3
        values = [float(x) for x in ls]
        return math.exp(sum(values[:3]) / len(values[:3])) if len(values) < 10 else \
            math.exp(sum(values) / len(values))
    assert check_perplexity(mean_of_first_three).passed
    result = check_perplexity(mean_of_first_three, hidden=True)
    assert not result.passed and "hidden case one bad token among four" in lang.en(result.message)

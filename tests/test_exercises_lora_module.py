"""The module checkers of 03_lora_linear (the learner's LoRALinear, note 004's layer fixed) accept
the reference and reject known-wrong layers with a message that teaches."""

import math

import pytest
import torch
from torch import nn

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.lora_module import check_lora_linear
from lora_lab.course.exercises.notes_fix import check_notes_fix

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


class Good(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.lora_A = nn.Parameter(nn.init.kaiming_uniform_(torch.empty(r, base.in_features), a=math.sqrt(5)))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        self.scaling = alpha / r
        self.merged = False

    def lora(self, x):
        return self.scaling * (x @ self.lora_A.T) @ self.lora_B.T

    def forward(self, x):
        return self.base(x) if self.merged else self.base(x) + self.lora(x)

    def delta(self):
        return self.scaling * self.lora_B @ self.lora_A

    def merge(self):
        if self.merged:
            raise RuntimeError("already merged")
        with torch.no_grad():
            self.base.weight += self.delta()
        self.merged = True

    def unmerge(self):
        if not self.merged:
            raise RuntimeError("not merged")
        with torch.no_grad():
            self.base.weight -= self.delta()
        self.merged = False


class NoOpMerge(Good):
    def merge(self):  # a second merge is a no-op: also right
        if not self.merged:
            super().merge()


class RandomB(Good):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        nn.init.normal_(self.lora_B)


class GaussianA(Good):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        nn.init.normal_(self.lora_A, std=0.02)


class TrainableBase(Good):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        base.requires_grad_(True)


class NoScaling(Good):
    def lora(self, x):
        return (x @ self.lora_A.T) @ self.lora_B.T


class FormsBA(Good):
    def lora(self, x):
        return x @ self.delta().T


class MergedStillAdds(Good):
    def forward(self, x):
        return self.base(x) + self.lora(x)


class MergesTwice(Good):
    def merge(self):
        with torch.no_grad():
            self.base.weight += self.delta()
        self.merged = True


class UnmergeForgets(Good):
    def unmerge(self):
        self.merged = False


class Swapped(Good):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        self.lora_A = nn.Parameter(torch.zeros(base.out_features, r))


class Stub(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        raise NotImplementedError()


class WrongConstant(nn.Module):
    def __init__(self, base, r, alpha):  # what a stub turned into `return 0.0` does
        super().__init__()
        return 0.0


class NaNForward(Good):
    def forward(self, x):
        return torch.full((*x.shape[:-1], self.base.out_features), float("nan"))


def test_accepts_the_reference_visible_and_hidden(lang, capsys):
    result = check_lora_linear(Good)
    assert result.passed and result.cases == result.total == 7
    assert lang.en(capsys.readouterr().out).strip() == "✓ lora_linear: 7/7 cases"
    hidden = check_lora_linear(Good, hidden=True, show=False)
    assert hidden.passed and hidden.total == 21 and hidden.hidden == 14 and "(14 hidden)" in lang.en(
        hidden.message)
    assert check_lora_linear(NoOpMerge, hidden=True, show=False).passed


@pytest.mark.parametrize(("cls", "message"), [
    (RandomB, "B must start at zero"),
    (GaussianA, "Kaiming uniform"),
    (TrainableBase, "the base layer must be frozen"),
    (NoScaling, "the LoRA path is 0.5× the reference's — is the scaling α/r (= 2) missing"),
    (FormsBA, "builds a (8, 16) tensor"),
    (MergedStillAdds, "not add the LoRA path a second time"),
    (MergesTwice, "merging twice added ΔW twice"),
    (UnmergeForgets, "after unmerge(), base.weight must be W0 again"),
    (Swapped, "did you swap A and B?"),
    (Stub, NOT_DONE),
    (WrongConstant, "raised TypeError"),
    (NaNForward, "NaN or inf"),
])
def test_rejects_known_mistakes_with_a_hint(lang, cls, message, capsys):
    result = check_lora_linear(cls, hidden=True)
    assert not result.passed and message in lang.en(result.message), lang.en(result.message)
    assert lang.en(capsys.readouterr().out).startswith("✗ lora_linear:")
    assert result.cases < result.total


def test_partial_credit_counts_the_properties_that_held():
    late = check_lora_linear(UnmergeForgets, show=False)  # everything but the round trip
    early = check_lora_linear(RandomB, show=False)
    assert late.cases > early.cases and 0 < late.fraction < 1
    assert check_lora_linear(Stub, show=False).fraction == 0


# --- note 004's layer, fixed ------------------------------------------------------------------------

class Notes(nn.Module):
    def __init__(self, in_features, out_features, r, alpha):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features), requires_grad=False)
        self.A = nn.Parameter(nn.init.normal_(torch.empty(r, in_features), std=0.02))
        self.B = nn.Parameter(torch.zeros(out_features, r))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scaling = alpha / r

    def forward(self, x):
        return nn.functional.linear(x, self.weight, self.bias) + self.scaling * (x @ self.A.T) @ self.B.T


class NotesAsGiven(Notes):  # the notes' forward (stray dot fixed): B @ A every step, no α/r
    def forward(self, x):
        delta_W = torch.matmul(self.B, self.A)
        return nn.functional.linear(x, self.weight, self.bias) + nn.functional.linear(x, delta_W)


class NotesNoScaling(Notes):
    def forward(self, x):
        return nn.functional.linear(x, self.weight, self.bias) + (x @ self.A.T) @ self.B.T


class NotesTrainableWeight(Notes):
    def __init__(self, *args):
        super().__init__(*args)
        self.weight.requires_grad_(True)


class NotesStub(nn.Module):
    def __init__(self, in_features, out_features, r, alpha):
        super().__init__()
        raise NotImplementedError()


class NotesWithoutAlpha(nn.Module):
    def __init__(self, in_features, out_features, r):
        super().__init__()


def test_notes_fix_accepts_the_fixed_layer(lang, capsys):
    assert check_notes_fix(Notes).passed
    assert lang.en(capsys.readouterr().out).strip() == "✓ notes_fix: 6/6 cases"
    result = check_notes_fix(Notes, hidden=True, show=False)
    assert result.passed and result.total == 18 and result.hidden == 12


@pytest.mark.parametrize(("cls", "message"), [
    (NotesAsGiven, "is the scaling α/r (= 2) missing"),
    (NotesNoScaling, "is the scaling α/r (= 2) missing"),
    (NotesTrainableWeight, "frozen `weight`"),
    (NotesWithoutAlpha, "raised TypeError"),
    (NotesStub, NOT_DONE),
])
def test_notes_fix_rejects_the_notes_bugs(lang, cls, message):
    result = check_notes_fix(cls, show=False)
    assert not result.passed and message in lang.en(result.message), lang.en(result.message)
    assert result.total == 6


def test_notes_fix_catches_b_at_a_even_with_the_scaling(lang):
    class ScaledButFormsBA(Notes):
        def forward(self, x):
            delta_W = self.scaling * self.B @ self.A
            return nn.functional.linear(x, self.weight, self.bias) + nn.functional.linear(x, delta_W)

    result = check_notes_fix(ScaledButFormsBA, show=False)
    assert not result.passed and "builds a (8, 16) tensor" in lang.en(result.message)


def test_checks_leave_the_notebooks_random_stream_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    check_lora_linear(Good, hidden=True, show=False)
    check_notes_fix(Notes, show=False)
    assert torch.equal(torch.rand(3), expected)

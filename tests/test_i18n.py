"""The checkers' two languages: the Chinese catalogue covers exactly the package's message templates,
keeps their placeholders, translates every one; every template is reached by the exercise tests in
both languages; a Chinese run reads as Chinese; grading does not depend on the language."""

import ast
import inspect
import json
import os
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest
from i18n_checks import CJK, SENTENCE, exercise_templates_here, skeleton, untranslated

from lora_lab.course import i18n
from lora_lab.course.exercises import LINE, NOT_DONE, grading
from lora_lab.course.exercises.start import check_factor_params
from lora_lab.course.notebook import setup_notebook

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "lora_lab" / "course" / "exercises"
#: argument checks that speak to a course author calling the framework, not to a learner
AUTHOR_FACING = {"_check_cases", "combine", "points_in"}


def _marked(call: ast.Call) -> list[ast.AST]:
    """The arguments of a call that hold templates: t(…)/N_(…)'s first, a Mistake's hint."""
    f = call.func
    name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
    if name in ("t", "N_"):
        return call.args[:1]
    if name == "Mistake":
        return call.args[1:2] + [k.value for k in call.keywords if k.arg == "hint"]
    return []


def _strings(node) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def scan() -> tuple[set[str], list[str]]:
    """(every template the exercises mark, every string outside them with an English word run)."""
    templates, bare = set(), []
    for path in sorted(EXERCISES.glob("*.py")):
        tree, skip = ast.parse(path.read_text()), set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for arg in _marked(node):
                    templates.update(_strings(arg))
                    skip.update(id(sub) for sub in ast.walk(arg))
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module)):
                if node.body and isinstance(node.body[0], ast.Expr):
                    skip.add(id(node.body[0].value))  # a docstring
                if getattr(node, "name", None) in AUTHOR_FACING:
                    skip.update(id(sub) for sub in ast.walk(node))
        bare += [f"{path.name}:{n.lineno}: {n.value!r}" for n in ast.walk(tree)
                 if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip
                 and SENTENCE.search(n.value)]
    return templates, bare


def fields(template: str) -> list[tuple]:
    """The placeholders of a template, with their conversion and format spec, and the literal braces."""
    parsed = list(string.Formatter().parse(template))
    braces = (template.count("{{"), template.count("}}"))
    return sorted((f, c or "", s or "") for _, f, s, c in parsed if f is not None) + [braces]


def test_every_template_in_the_package_has_a_chinese_entry():
    templates, _ = scan()
    assert len(templates) > 300
    assert sorted(templates - set(i18n.catalogue())) == []


def test_no_catalogue_entry_is_unused():
    assert sorted(set(i18n.catalogue()) - scan()[0]) == []


def test_no_learner_message_bypasses_the_catalogue():
    """Every string in the checkers with three English words in a row is a template, a docstring,
    or an author-facing argument check: so every message a learner reads goes through `t`."""
    assert scan()[1] == []


@pytest.mark.parametrize("en", sorted(i18n.catalogue()))
def test_chinese_entry_keeps_the_placeholders_and_translates(en):
    zh = i18n.catalogue()[en]
    assert fields(zh) == fields(en)
    assert zh != en
    blank = re.sub(r"\{[^{}]*\}", "∅", en.replace("{{", "").replace("}}", ""))
    if re.search(r"(?<![\w.])[A-Za-z]{2,}(?![\w.(=])", blank):  # a word (not code) outside the placeholders
        assert CJK.search(zh), zh
    assert untranslated(re.sub(r"\{[^{}]*\}", "∅", zh)) == []


def _sample(spec: str):
    return 1.5 if spec[-1:] in ("g", "f", "e") else "x"


@pytest.mark.parametrize("en", sorted(i18n.catalogue()))
def test_chinese_entry_renders_with_sample_values(en):
    values = {f: _sample(s) for f, _, s in fields(en)[:-1]}
    i18n.set_language("zh")
    try:
        msg = i18n.t(en, **values)
    finally:
        i18n.set_language("en")
    assert str(msg) == i18n.catalogue()[en].format(**values) and msg.en == en.format(**values)


def test_english_is_exactly_the_template_formatted():
    template = "off by a factor {ratio:.4g} — is a scaling (such as α/r) missing or applied twice?"
    msg = i18n.t(template, ratio=2.0)
    assert type(msg) is i18n.Msg and msg == msg.en == template.format(ratio=2.0)
    assert msg.startswith("off by a factor 2 — ")


def test_a_chinese_message_nests_and_keeps_its_english_twin():
    i18n.set_language("zh")
    try:
        inner = i18n.t("expected shape {want}, got {got}", want=(8, 4), got=(4, 8))
        line = i18n.t(LINE, mark="✗", name="merge", detail=inner)
    finally:
        i18n.set_language("en")
    assert line == "✗ merge：形状应为 (8, 4)，得到的是 (4, 8)"
    assert line.en == "✗ merge: expected shape (8, 4), got (4, 8)"
    assert skeleton(line) == "∅ ∅：形状应为 ∅，得到的是 ∅"


def test_the_untranslated_check_finds_english_and_spares_code():
    assert untranslated("形状应为 ∅——did you swap A and B?") == ["did you swap"]
    assert untranslated("把 `raise NotImplementedError()` 换成 nn.Linear 的 requires_grad=False") == []
    assert SENTENCE.search("最大差 ∅（in two groups）")


def test_strict_mode_raises_and_records_otherwise_english_stays():
    i18n.set_language("zh")
    try:
        assert i18n.t("a caller's own {x}", x=1) == "a caller's own 1"  # not catalogued: as written
        i18n.set_strict(True)
        i18n.missing.clear()
        with pytest.raises(KeyError, match="no Chinese entry"):
            i18n.t("a caller's own {x}", x=1)
        assert i18n.missing == ["a caller's own {x}"]
    finally:
        i18n.set_strict(False)
        i18n.set_language("en")
        i18n.missing.clear()


def test_setup_notebook_sets_the_language_and_checks_it(capsys):
    try:
        setup_notebook(quiet=True, lang="zh")
        assert i18n.language() == "zh"
        assert check_factor_params(lambda *a: (_ for _ in ()).throw(NotImplementedError())).message == \
            f"✗ factor_params：{i18n.catalogue()[NOT_DONE]}"
        setup_notebook(quiet=True)
        assert i18n.language() == "en"
        with pytest.raises(ValueError, match=r"lang must be one of \['en', 'zh'\], got 'fr'"):
            setup_notebook(quiet=True, lang="fr")
        with pytest.raises(TypeError, match="lang must be a str, one of .*, got NoneType"):
            setup_notebook(quiet=True, lang=None)
        assert i18n.language() == "en"
    finally:
        i18n.set_language("en")


def _in(lang: str, fn):
    i18n.set_language(lang)
    try:
        return fn()
    finally:
        i18n.set_language("en")


def test_grading_is_the_same_in_both_languages(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    half = lambda o, i, r: (o * i, r * (o + i)) if o == i else (o * i, 0)  # noqa: E731 (right on squares)
    results = {lang: _in(lang, lambda: check_factor_params(half, hidden=True)) for lang in ("en", "zh")}
    en, zh = results["en"], results["zh"]
    assert (en.passed, en.cases, en.total, en.hidden) == (zh.passed, zh.cases, zh.total, zh.hidden) == \
        (False, 3, 7, 3)
    assert en.fraction == zh.fraction
    source = "# points: 3\ncheck_factor_params(factor_params, hidden=True)"
    assert grading.score(en.passed, en.cases, en.total, source) == \
        grading.score(zh.passed, zh.cases, zh.total, source) == 1.28
    assert en._ipython_display_ is None and zh._ipython_display_ is None  # nbgrader shows the score
    assert zh.message.startswith("✗ factor_params") and zh.message.en == en.message


def _checkers():
    import importlib
    names = [p.stem for p in sorted(EXERCISES.glob("*.py")) if p.stem not in ("__init__", "grading")]
    for name in names:
        module = importlib.import_module(f"lora_lab.course.exercises.{name}")
        for attr in sorted(dir(module)):
            fn = getattr(module, attr)
            if attr.startswith("check_") and getattr(fn, "__module__", "") == module.__name__:
                yield attr, fn


@pytest.mark.parametrize(("name", "check"), list(_checkers()), ids=lambda v: v if isinstance(v, str) else "")
def test_a_chinese_run_reads_as_chinese(name, check, capsys):
    """Every checker, given an untouched exercise (a stub that raises NotImplementedError), prints
    one line that starts with ✗ and its name and is Chinese, with no English sentence in it."""
    def stub(*args, **kwargs):
        raise NotImplementedError()

    result = _in("zh", lambda: check(stub))
    out = capsys.readouterr().out.strip()
    assert out == result.message and out.startswith(f"✗ {name[len('check_'):]}")
    assert CJK.search(out) and untranslated(out) == []


def test_every_template_is_reached_by_the_exercise_tests_in_both_languages(tmp_path):
    """Which templates the exercise tests (both languages) rendered: every catalogue entry must be
    rendered in English and in Chinese (so every message path is tested in both), and nothing
    outside the catalogue may be rendered. Read from this process when they all ran and passed
    here before this test (make test: one worker runs every file but the grading); else the
    exercise tests run again in a subprocess."""
    tests = sorted((ROOT / "tests").glob("test_exercises*.py"))
    got = exercise_templates_here({p.name for p in tests})  # make test: they ran in this process
    if got is None:  # some ran elsewhere (another worker), or not at all, or failed: run them apart
        reached = tmp_path / "reached.json"
        env = dict(os.environ, LORA_LAB_I18N_REACHED=str(reached), OMP_WAIT_POLICY="PASSIVE")
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                              *map(str, tests)], cwd=ROOT, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stdout[-3000:]
        got = {"en": set(), "zh": set()}
        for part in tmp_path.glob("reached.json.*"):
            for lang, templates in json.loads(part.read_text(encoding="utf-8")).items():
                got[lang] |= set(templates)
    catalogue = set(i18n.catalogue())
    for lang in ("en", "zh"):
        assert sorted(catalogue - got[lang]) == [], f"not reached in {lang}"
        assert sorted(got[lang] - catalogue) == [], f"rendered in {lang} but not catalogued"


#: English term (outside code) -> the glossary's Chinese (notebook 00, §0.5) that its entry must use
GLOSSARY = {r"gradients?": "梯度", r"frozen|freeze": "冻结", r"learning rates?|rates?": "学习率",
            r"singular values?": "奇异值", r"singular vectors?": "奇异向量", r"merg(?:e|ing|ed)": "合并",
            r"scaling": "缩放因子", r"perplexity": "困惑度", r"adapters?": "适配器", r"tokens?": "词元",
            r"subspace": "子空间", r"Frobenius norm": "Frobenius 范数", r"full fine-tuning": "全量微调",
            r"optimizer": "优化器", r"latency": "推理延迟", r"grouped-query attention": "分组查询注意力",
            r"all-reduce": "全归约", r"bias(?:es)?": "偏置", r"loss(?:es)?": "损失", r"shape": "形状"}


def _prose(template: str) -> str:
    """A template without placeholders, code spans and code-like tokens (x.y, a_b, f(…))."""
    text = re.sub(r"`[^`]*`|\{[^{}]*\}", " ", template)
    return " ".join(w for w in text.split() if not re.search(r"[._(=]", w))


@pytest.mark.parametrize("en", sorted(i18n.catalogue()))
def test_chinese_entry_uses_the_glossary_terms(en):
    zh = i18n.catalogue()[en]
    wanted = [term for pattern, term in GLOSSARY.items()
              if re.search(rf"\b(?:{pattern})\b", _prose(en), re.IGNORECASE) and term not in zh]
    assert wanted == [], f"{zh!r} lacks {wanted}"


def _raises(*args, **kwargs):
    raise ValueError("bad")


@pytest.mark.parametrize(("name", "check"), list(_checkers()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_checker_scores_the_same_in_both_languages(name, check):
    """A few wrong answers (one that raises, one that returns None, one of the wrong kind), each
    checked in both languages: the same pass, cases, total and hidden count, and the same English."""
    extra = {"hidden": True} if "hidden" in inspect.signature(check).parameters else {}
    for fn in (_raises, lambda *a, **k: None, lambda *a, **k: "x"):
        en, zh = (_in(lang, lambda fn=fn: check(fn, **extra)) for lang in ("en", "zh"))
        assert (en.passed, en.cases, en.total, en.hidden) == (zh.passed, zh.cases, zh.total, zh.hidden)
        assert zh.message.en == en.message and zh.fraction == en.fraction

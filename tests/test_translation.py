"""The Chinese edition cannot drift from the English masters: every master has its Chinese notebook,
every Markdown cell a current translation that keeps the English's spans, numbers, headings, tables
and glossary terms, the code, outputs and nbgrader metadata are the master's, and the committed
notebooks are byte for byte what `python -m lora_lab zh` writes. Unit tests on tiny in-memory
notebooks prove each check can fail."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from lora_lab.course import zh_edition as ze
from lora_lab.course.assignments import student_version
from lora_lab.course.cli import main
from lora_lab.course.translation import Entry, accuracy_problems, cell_hash, parse_store, render_store
from lora_lab.course.zh_glossary import course_glossary, glossary_rows, term_problems

REPO = Path(__file__).resolve().parents[1]
MASTERS = ze.masters()
NAMES = [m.stem for m in MASTERS]


def copy_differences(master, zh) -> list[str]:
    """Where the Chinese notebook `zh` is not the master's copy: cell ids or types, code (the
    set-up call apart), outputs, execution counts, cell metadata (nbgrader's included)."""
    if [(c.id, c.cell_type) for c in master.cells] != [(c.id, c.cell_type) for c in zh.cells]:
        return ["the cells (ids, types, order) differ"]
    found, first_code = [], True
    for m, z in zip(master.cells, zh.cells, strict=True):
        if m.metadata != z.metadata:
            found.append(f"{m.id}: metadata")
        if m.cell_type != "code":
            continue
        if z.source != (ze.with_lang(m.source) if first_code else m.source):
            found.append(f"{m.id}: code")
        first_code = False
        if (m.outputs, m.execution_count) != (z.outputs, z.execution_count):
            found.append(f"{m.id}: outputs")
    return found


# --- the edition itself (fails until every translator's store has landed) ---------------------

@pytest.mark.parametrize("master", MASTERS, ids=NAMES)
def test_every_master_has_a_complete_current_translation(master):
    text, problems = ze.generate(master)
    assert problems == [], "\n".join(map(str, problems))
    assert ze.zh_path(master).exists(), f"{ze.zh_path(master)} is missing: run `python -m lora_lab zh`"
    assert ze.zh_path(master).read_text(encoding="utf-8") == text, "run `python -m lora_lab zh`"


@pytest.mark.parametrize("master", MASTERS, ids=NAMES)
def test_each_translated_cell_keeps_spans_numbers_headings_tables_and_terms(master):
    if not ze.store_path(master).exists():
        pytest.fail(f"no store {ze.store_path(master)}")
    problems = ze.accuracy(master)
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.parametrize("master", MASTERS, ids=NAMES)
def test_the_chinese_notebook_is_the_masters_code_outputs_and_metadata(master):
    path = ze.zh_path(master)
    assert path.exists(), f"{path} is missing"
    en, zh = nbformat.read(master, as_version=4), nbformat.read(path, as_version=4)
    assert copy_differences(en, zh) == []
    assert zh.metadata["lora_lab"]["language"] == "zh"
    assert 'lang="zh"' in next(c for c in zh.cells if c.cell_type == "code").source


@pytest.fixture(scope="module")
def zh_students(tmp_path_factory) -> Path:
    """student/zh/ as `make student` writes it (`python -m lora_lab student … --source notebooks/zh`)."""
    out = tmp_path_factory.mktemp("student") / "zh"
    assert main(["student", str(out), "--source", str(REPO / "notebooks" / "zh")]) == 0
    return out


@pytest.mark.parametrize("master", MASTERS, ids=NAMES)
def test_a_chinese_student_copy_grades_like_the_english_one(master, zh_students):
    en = student_version(nbformat.read(master, as_version=4))
    zh = nbformat.read(zh_students / master.name, as_version=4)
    assert copy_differences(en, zh) == []
    assert [c.metadata.get("nbgrader") for c in en.cells] == [c.metadata.get("nbgrader") for c in zh.cells]


def test_no_store_or_notebook_without_a_master():
    stems = set(NAMES)
    extra = [p.name for p in (REPO / "notebooks" / "zh").glob("*.*") if p.stem not in stems]
    assert extra == [], f"notebooks/zh holds files for no master: {extra}"


def _readme_rows(text: str) -> list[tuple[str, str]]:
    """(notebook, run time) of each row of a README's notebook table."""
    return re.findall(r"^\| \[`(\d\d_\w+)`\]\([^)]*\) \|.*\| ([^|]+?) \|$", text, re.MULTILINE)


def test_readme_zh_lists_the_same_notebooks_and_run_times_as_readme():
    en = _readme_rows((REPO / "README.md").read_text(encoding="utf-8"))
    zh = _readme_rows((REPO / "README.zh.md").read_text(encoding="utf-8"))
    assert len(en) == len(MASTERS)
    assert zh == en
    assert "README.zh.md" in (REPO / "README.md").read_text(encoding="utf-8").splitlines()[2]


# --- tiny notebooks: each check can fail ----------------------------------------------------

EN = ["## 1.2 The frozen base\n\nLoRA keeps $W_0$ frozen and trains `A`, `B` (see "
      "[the paper](https://arxiv.org/abs/2106.09685)): 1,024 × 4 values.",
      "| term | value |\n| --- | --- |\n| $x$ | 2 |"]
ZH = ["## 1.2 冻结的基座\n\nLoRA 让 $W_0$ 保持冻结，只训练 `A`、`B`（见"
      "[论文](https://arxiv.org/abs/2106.09685)）：1,024 × 4 个值。",
      "| 术语 | 值 |\n| --- | --- |\n| $x$ | 2 |"]


def tiny_master():
    setup = "from lora_lab import setup_notebook\n\nv = setup_notebook(seed=0)"
    nb = new_notebook(cells=[new_markdown_cell(EN[0]), new_code_cell(setup),
                             new_markdown_cell(EN[1]), new_code_cell("print(1)")])
    for i, cell in enumerate(nb.cells):
        cell.id = f"99-{i:03d}"
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[3].execution_count = 2
    nb.cells[3].metadata["nbgrader"] = {"grade": True, "grade_id": "99-cell-003", "points": 1}
    return nb


def tiny_store(nb, texts=ZH):
    md = [c for c in nb.cells if c.cell_type == "markdown"]
    return [Entry(c.id, cell_hash(c.source), t) for c, t in zip(md, texts, strict=True)]


def _whats(problems) -> list[tuple[str | None, str]]:
    return [(p.cell_id, p.what.split(":")[0]) for p in problems]


def test_a_complete_store_builds_the_masters_copy_in_chinese():
    nb = tiny_master()
    zh = ze.build(nb, tiny_store(nb))
    assert [c.source for c in zh.cells if c.cell_type == "markdown"] == ZH
    assert zh.cells[1].source.endswith('setup_notebook(seed=0, lang="zh")')
    assert copy_differences(nb, zh) == []
    assert nb.cells[0].source == EN[0], "build must not touch the master"
    assert ze.render(zh) == ze.render(ze.build(nb, tiny_store(nb)))


@pytest.mark.parametrize(("change", "what"), [
    (lambda s: s[1:], "missing"),
    (lambda s: [Entry(s[0].cell_id, "0" * 12, s[0].zh), s[1]], "stale"),
    (lambda s: [*s, Entry("99-009", "0" * 12, "多余")], "orphan"),
    (lambda s: [*s, Entry("99-001", "0" * 12, "代码")], "orphan"),
    (lambda s: [Entry(s[0].cell_id, s[0].en_hash, EN[0]), s[1]], "untranslated"),
    (lambda s: [Entry(s[0].cell_id, s[0].en_hash, f"{ze.TODO} -->\n{ZH[0]}"), s[1]], "unfinished"),
])
def test_each_store_problem_is_named_and_nothing_is_built(change, what):
    nb = tiny_master()
    store = change(tiny_store(nb))
    problems = ze.store_problems(nb, store, "99_tiny")
    assert [w for _, w in _whats(problems)] == [what]
    assert str(problems[0]).startswith("99_tiny cell 99-00")
    with pytest.raises(ValueError, match=what):
        ze.build(nb, store, "99_tiny")


def test_a_cell_with_no_words_needs_no_chinese():
    nb = tiny_master()
    nb.cells[2].source = "$$h = W_0 x$$"
    assert ze.store_problems(nb, tiny_store(nb, [ZH[0], "$$h = W_0 x$$"]), "99_tiny") == []


def test_the_setup_call_gains_lang_or_the_master_is_refused():
    assert ze.with_lang("x = setup_notebook()") == 'x = setup_notebook(lang="zh")'
    assert ze.with_lang("setup_notebook(seed=3)") == 'setup_notebook(seed=3, lang="zh")'
    with pytest.raises(ValueError, match="must call setup_notebook"):
        ze.with_lang("import torch")
    with pytest.raises(ValueError, match="lang="):
        ze.with_lang('setup_notebook(seed=0, lang="en")')
    nb = tiny_master()
    nb.cells[1].source = "import torch"
    with pytest.raises(ValueError, match="99_tiny.*must call setup_notebook"):
        ze.build(nb, tiny_store(nb), "99_tiny")


@pytest.mark.parametrize("change", [
    lambda nb: setattr(nb.cells[3], "source", "print(2)"),
    lambda nb: setattr(nb.cells[1], "source", "setup_notebook(seed=0)"),
    lambda nb: nb.cells[3].outputs[0].__setitem__("text", "2\n"),
    lambda nb: setattr(nb.cells[3], "execution_count", 3),
    lambda nb: nb.cells[3].metadata["nbgrader"].__setitem__("points", 2),
    lambda nb: nb.cells.pop(3),
])
def test_the_copy_check_sees_changed_code_outputs_and_metadata(change):
    nb = tiny_master()
    zh = ze.build(nb, tiny_store(nb))
    change(zh)
    assert copy_differences(nb, zh) != []


@pytest.mark.parametrize(("chinese", "lost"), [
    (ZH[0].replace("$W_0$", "W0"), "math span"),
    (ZH[0].replace("`B`", "B"), "code span"),
    (ZH[0].replace("1,024", "一千"), "number"),
    (ZH[0].replace("https://arxiv.org/abs/2106.09685", "https://arxiv.org"), "link URL"),
    (ZH[0].replace("## 1.2", "### 1.2"), "headings"),
    (ZH[0].replace("## 1.2", "## 1.3"), "headings"),
    (ZH[0].replace("冻结的", "冻结"), None),
])
def test_accuracy_sees_each_lost_span_number_and_heading(chinese, lost):
    found = accuracy_problems(EN[0], chinese)
    assert (found == []) if lost is None else any(p.startswith(lost) for p in found), found


def test_accuracy_sees_comments_markers_display_math_and_table_columns():
    english = "<!-- keep me -->\n### BEGIN SOLUTION\n$$a = b$$ is it.\n### END SOLUTION\n| a | b |\n| - | - |"
    assert accuracy_problems(english, english) == []
    assert accuracy_problems(english, english.replace("<!-- keep me -->", "")) == \
        ["HTML comment '<!-- keep me -->' is missing"]
    dropped = accuracy_problems(english, english.replace("### END SOLUTION\n", ""))
    assert dropped[0].startswith("nbgrader marker")
    assert accuracy_problems(english, english.replace("$$a = b$$", "a = b"))[0].startswith("math span")
    assert accuracy_problems(english, english.replace("| a | b |", "| a b |")) == \
        ["table column counts [2, 2] became [1, 2]"]


def test_the_glossary_is_read_from_notebook_00():
    glossary = course_glossary()
    assert glossary["singular value"] == "奇异值" and glossary["grouped-query attention"] == "分组查询注意力"
    assert glossary["ablation study"] == "消融" and glossary["data parallelism"] == "数据并行"
    rows = glossary_rows("| English | 中文 | gloss |\n| --- | --- | --- |\n"
                         "| loss / cross-entropy | 损失 / 交叉熵 | x |")
    assert rows == {"loss / cross-entropy": "损失 / 交叉熵", "loss": "损失", "cross-entropy": "交叉熵"}


def test_a_cell_that_uses_a_term_must_use_its_chinese_term():
    glossary = course_glossary()
    english = "The frozen base gets no gradients; the learning rate is small (`frozen` is code)."
    assert term_problems(english, "冻结的基座没有梯度；学习率很小。", glossary) == []
    assert term_problems(english, "固定的基座没有梯度；学习率很小。", glossary) == \
        ["glossary: 'frozen' must be '冻结'"]
    assert term_problems("`frozen`", "无", glossary) == []


def _tiny_folder(tmp_path, texts=ZH):
    nb = tiny_master()
    nbformat.write(nb, tmp_path / "99_tiny.ipynb")
    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "99_tiny.md").write_text(render_store(tiny_store(nb, texts)), encoding="utf-8")
    return tmp_path


def test_write_edition_is_byte_stable_and_check_writes_nothing(tmp_path):
    folder = _tiny_folder(tmp_path)
    target = folder / "zh" / "99_tiny.ipynb"
    assert ze.write_edition(folder, check=True) == ([], [ze.Problem(
        "99_tiny", None, f"{target} is missing: run `{ze.REGENERATE}`")])
    assert not target.exists()
    assert ze.write_edition(folder) == ([target], [])
    first = target.read_bytes()
    assert ze.write_edition(folder) == ([target], []) and target.read_bytes() == first
    assert ze.write_edition(folder, check=True) == ([], [])
    target.write_text(first.decode().replace("冻结的基座", "冻结"), encoding="utf-8")
    assert "is not what the generator writes" in str(ze.write_edition(folder, check=True)[1])


def test_the_cli_checks_and_prints_skeletons(tmp_path, monkeypatch, capsys):
    folder = _tiny_folder(tmp_path, [ZH[0], EN[1]])
    monkeypatch.setattr(ze, "MASTERS", folder)
    assert main(["zh", "--check"]) == 1
    assert main(["zh"]) == 1 and not (folder / "zh" / "99_tiny.ipynb").exists()
    assert "99_tiny cell 99-002: untranslated" in capsys.readouterr().err
    assert main(["zh", "--skeleton", "42"]) == 2
    nb = nbformat.read(folder / "99_tiny.ipynb", as_version=4)
    nb.cells[2].source += "\n| c | 3 |"
    nbformat.write(nb, folder / "99_tiny.ipynb")
    capsys.readouterr()
    assert main(["zh", "--skeleton", "99"]) == 0
    entries = parse_store(capsys.readouterr().out)
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    assert [e.en_hash for e in entries] == [cell_hash(c.source) for c in markdown]
    assert entries[0].zh == ZH[0]
    assert ze.TODO in entries[1].zh and "| c | 3 |" in entries[1].zh and entries[1].zh.count(EN[1]) == 2

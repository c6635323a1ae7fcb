"""Checks on rendered Chinese messages, shared by tests/conftest.py's `lang` fixture and
tests/test_i18n.py (a module of its own: `conftest` names two files here, this one and
tests/browser/conftest.py, so neither can be imported by that name)."""

from __future__ import annotations

import re

from lora_lab.course import i18n

CJK = re.compile(r"[\u4e00-\u9fff]")
#: three or more English words in a row (code such as `nn.Linear` or requires_grad=False is no word run)
SENTENCE = re.compile(r"(?<![\w.])[A-Za-z]{2,}(?: +[A-Za-z]{2,}){2,}(?![\w(])")


def skeleton(msg: i18n.Msg) -> str:
    """A Chinese message with every plain value blanked out and nested messages in their skeletons."""
    values = {k: skeleton(v) if isinstance(v, i18n.Msg) else _Blank() for k, v in msg.values.items()}
    return i18n.catalogue()[msg.template].format(**values)


class _Blank:
    def __format__(self, spec: str) -> str:
        return "∅"

    def __repr__(self) -> str:
        return "∅"


def untranslated(text: str) -> list[str]:
    """English word runs left in `text`, once code spans in backticks are taken out."""
    return SENTENCE.findall(re.sub(r"`[^`]*`", "", text))


# ---- what the exercise tests reached in this process (filled by tests/conftest.py's hooks) ----------

EXERCISE_FILE = re.compile(r"(?:^|/)test_exercises[^/]*\.py(?:::|$)")
#: per test file, the templates each language rendered under the `lang` fixture
REACHED_BY_FILE: dict[str, dict[str, set[str]]] = {}
#: the exercise tests collected here, those that passed and failed here, and whether any was deselected
EXERCISE_RUN: dict = {"collected": set(), "passed": set(), "failed": set(), "deselected": False}


def exercise_templates_here(exercise_files: set[str]) -> dict[str, set[str]] | None:
    """The templates the exercise tests rendered in this process, by language, when every one of
    `exercise_files` (file names) was collected whole and every exercise test passed here before
    now; else None (a subset ran, another worker ran some, or one failed: run them again apart)."""
    run = EXERCISE_RUN
    files = {nodeid.split("::")[0].rsplit("/", 1)[-1] for nodeid in run["collected"]}
    if run["deselected"] or run["failed"] or files != exercise_files or not run["collected"] <= run["passed"]:
        return None
    got = {"en": set(), "zh": set()}
    for name in exercise_files:
        for lang, templates in REACHED_BY_FILE.get(name, {}).items():
            got[lang] |= templates
    return got

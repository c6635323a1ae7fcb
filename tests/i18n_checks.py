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

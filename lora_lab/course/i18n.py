"""The language of every message a learner reads: English, or Chinese for the Chinese edition.

A message is written once, in English, as a `str.format` template, and rendered with `t`:

    t("expected shape {want}, got {got}", want=(8, 4), got=(4, 8))

In English `t` gives exactly `template.format(**values)`; in Chinese it formats the template's
entry in the catalogue (`i18n_zh.json`, English template -> Chinese template with the same
placeholders). Values (numbers, shapes, names, exception texts) are never translated. The result
is a `Msg`: a `str` in the current language that also remembers its template and values, so that
its English twin (`Msg.en`) can be rebuilt and tests can compare the two editions.

`N_` marks a template that is rendered later (a hint kept in a list); `setup_notebook(lang=...)`
calls `set_language`. A template missing from the catalogue falls back to English, unless
`strict` is on (the tests turn it on), which raises instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

LANGUAGES = ("en", "zh")
CATALOGUE = Path(__file__).with_name("i18n_zh.json")

_state = {"lang": "en", "strict": False}
#: in strict mode, every template that had no Chinese entry (a checker may turn the KeyError into
#: a learner's message, so the tests look here too)
missing: list[str] = []
#: called with every Msg that `t` renders (the tests record which templates they reached)
observers: list[Callable[[Msg], None]] = []


def set_language(lang: str) -> None:
    """Set the language of every learner-visible message: "en" (the default) or "zh"."""
    if not isinstance(lang, str):
        raise TypeError(f"lang must be a str, one of {list(LANGUAGES)}, got {type(lang).__name__}")
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {list(LANGUAGES)}, got {lang!r}")
    _state["lang"] = lang


def language() -> str:
    """The current language, "en" or "zh"."""
    return _state["lang"]


def set_strict(on: bool) -> None:
    """When on, rendering a template that has no Chinese entry raises KeyError (for the tests)."""
    _state["strict"] = bool(on)


@cache
def catalogue() -> dict[str, str]:
    """English template -> Chinese template, read once from the package's data file."""
    return json.loads(CATALOGUE.read_text(encoding="utf-8"))


def N_(template: str) -> str:
    """Mark `template` for the catalogue without rendering it now (it is rendered by `t` later)."""
    return template


def _template(template: str, lang: str) -> str:
    if lang == "en":
        return template
    found = catalogue().get(template)
    if found is None:
        if _state["strict"]:
            missing.append(template)
            raise KeyError(f"no Chinese entry for the message template {template!r}")
        return template
    return found


class Msg(str):
    """A rendered message: the text in `lang`, plus the `template` and `values` it came from."""

    def __new__(cls, template: str, values: dict, lang: str):
        text = _template(template, lang).format(**values)
        self = super().__new__(cls, text)
        self.template, self.values, self.lang = template, values, lang
        return self

    def __reduce__(self):
        """Copies and pickles are the plain text (the values need not be picklable)."""
        return (str, (str(self),))

    @property
    def en(self) -> str:
        """The same message in English (nested messages too); values stay as they are."""
        if self.lang == "en":
            return str(self)
        plain = {k: v.en if isinstance(v, Msg) else v for k, v in self.values.items()}
        return self.template.format(**plain)


def t(template: str, **values) -> Msg:
    """`template` (English, `str.format` placeholders) rendered in the current language."""
    msg = Msg(template, values, _state["lang"])
    for observe in observers:
        observe(msg)
    return msg


def known(text: str) -> Msg | str:
    """`text` rendered when it is a template of the catalogue; otherwise as it is (a caller's own)."""
    return t(text) if text in catalogue() else text


def as_msg(text) -> Msg:
    """A Msg as it is; a template (plain str) rendered now, without values."""
    return text if isinstance(text, Msg) else t(text)

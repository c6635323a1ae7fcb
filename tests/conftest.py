"""The `lang` fixture: the exercise tests run once in English and once in Chinese.

In Chinese the catalogue is strict (a template without a Chinese entry raises), and after each
test every message it rendered is checked: each checker line holds CJK text, and no message has
an English sentence left outside its values (`untranslated`). `lang.en(text)` gives a message's
English twin, so a test's English assertions hold in both languages.

The templates each language reached are kept for the session, per test file; when every exercise
test ran and passed in this process, `test_i18n` reads them from here (`i18n_checks`). Otherwise
it runs the exercise tests again apart, with `LORA_LAB_I18N_REACHED` set to a path: they are then
written beside it as JSON at the end, one file per process, and merged.
"""

from __future__ import annotations

import json
import os

import pytest

# tests/ is on sys.path
from i18n_checks import CJK, EXERCISE_FILE, EXERCISE_RUN, REACHED_BY_FILE, skeleton, untranslated

from lora_lab.course import i18n
from lora_lab.course.exercises import LINE

REACHED: dict[str, set[str]] = {"en": set(), "zh": set()}


class Lang:
    """What a test sees of the current language: its `code` and each message's English twin."""

    def __init__(self, code: str, file: str = ""):
        self.code, self.seen, self.file = code, [], file

    def record(self, msg: i18n.Msg) -> None:
        self.seen.append(msg)
        REACHED[msg.lang].add(msg.template)
        REACHED_BY_FILE.setdefault(self.file, {"en": set(), "zh": set()})[msg.lang].add(msg.template)

    def en(self, text: str) -> str:
        """The English of a message, or of printed lines (each found among the messages rendered)."""
        if isinstance(text, i18n.Msg) or self.code == "en":
            return text.en if isinstance(text, i18n.Msg) else text
        by_text = {str(m): m for m in self.seen}
        lines = [by_text[line].en if line in by_text else line for line in text.split("\n")]
        return "\n".join(lines)

    def check(self) -> None:
        """In Chinese: every checker line has CJK text, and no message an English sentence."""
        if self.code != "zh":
            return
        assert not i18n.missing, f"templates without a Chinese entry: {i18n.missing}"
        for msg in self.seen:
            if msg.template == LINE:
                assert CJK.search(msg), f"a checker line without Chinese: {msg!r}"
            left = untranslated(skeleton(msg))
            assert not left, f"English left in the Chinese of {msg.template!r}: {left}"


@pytest.fixture(params=["en", "zh"])
def lang(request):
    """Run the test in English and in Chinese (strict catalogue); reset to English afterwards."""
    state = Lang(request.param, request.node.path.name)
    i18n.set_language(request.param)
    i18n.set_strict(True)
    i18n.missing.clear()
    i18n.observers.append(state.record)
    try:
        yield state
        state.check()
    finally:
        i18n.observers.remove(state.record)
        i18n.set_language("en")
        i18n.set_strict(False)


def pytest_sessionfinish(session):
    path = os.environ.get("LORA_LAB_I18N_REACHED")
    if path:  # one file per process (pytest-xdist workers too): PATH.main, PATH.gw0, …
        with open(f"{path}.{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", "w", encoding="utf-8") as f:
            json.dump({k: sorted(v) for k, v in REACHED.items()}, f, ensure_ascii=False)


def pytest_collection_modifyitems(config, items):
    """tests/test_nbgrader.py first: it is the longest file by far (it autogrades every master), so
    under `make test`'s two workers (`--dist loadfile --no-loadscope-reorder`) it starts at once
    and the other worker runs every other file meanwhile. tests/browser/ last: JupyterLab runs 07
    there, which reads the runs that grading 06 trains (first in its lane); run earlier, on an
    empty runs cache, it trained them a second time beside the lane. The order within a file is kept."""
    items.sort(key=lambda item: (item.path.name != "test_nbgrader.py", item.path.parent.name == "browser"))
    EXERCISE_RUN["collected"] = {item.nodeid for item in items if EXERCISE_FILE.search(item.nodeid)}


def pytest_deselected(items):
    if any(EXERCISE_FILE.search(item.nodeid) for item in items):
        EXERCISE_RUN["deselected"] = True


def pytest_runtest_logreport(report):
    """Which exercise tests passed in this process: tests/test_i18n.py reads the templates they
    reached here instead of running them again, when all of them ran and passed here."""
    if EXERCISE_FILE.search(report.nodeid):
        if report.failed:  # in any phase: the lang fixture's Chinese checks run at teardown
            EXERCISE_RUN["failed"].add(report.nodeid)
        elif report.when == "call" and report.passed:
            EXERCISE_RUN["passed"].add(report.nodeid)

"""The translation store: one plain-text file per notebook beside the Chinese edition,
`notebooks/zh/NN_name.md`, holding the Chinese text of every Markdown cell of the English master.

Each entry starts with a marker line naming the cell it translates and a hash of that English
cell's text:

    <!-- cell 03-004 en:1a2b3c4d5e6f -->
    中文 Markdown……

`cell_hash` is the first 12 hex digits of the SHA-256 of the English cell's source. An entry whose
hash no longer matches its cell is stale: the English changed after it was translated.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

MARKER = re.compile(r"^<!-- cell (\S+) en:([0-9a-f]{12}) -->$", re.MULTILINE)


@dataclass(frozen=True)
class Entry:
    """The Chinese text `zh` of the master's cell `cell_id`, translated from a source hashing to `en_hash`."""

    cell_id: str
    en_hash: str
    zh: str


def cell_hash(source: str) -> str:
    """The 12-hex-digit SHA-256 prefix of an English cell's source, which a translation is keyed to."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a str (a cell's source), got {type(source).__name__}")
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def parse_store(text: str) -> list[Entry]:
    """The entries of a store file, in order. Text before the first marker is not allowed."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str (a store file's content), got {type(text).__name__}")
    marks = list(MARKER.finditer(text))
    if text.strip() and (not marks or text[: marks[0].start()].strip()):
        raise ValueError("text must start with a marker line '<!-- cell ID en:HASH -->', "
                         f"got {text.strip().splitlines()[0][:80]!r}")
    entries = []
    for mark, after in zip(marks, [*marks[1:], None], strict=True):
        body = text[mark.end(): after.start() if after else len(text)]
        entries.append(Entry(mark.group(1), mark.group(2), body.strip("\n")))
    ids = [e.cell_id for e in entries]
    if len(set(ids)) != len(ids):
        raise ValueError(f"text must hold one entry per cell, found repeated ids "
                         f"{sorted({i for i in ids if ids.count(i) > 1})}")
    return entries


def render_store(entries: list[Entry]) -> str:
    """A store file's text for `entries` (what `parse_store` reads back)."""
    return "".join(f"<!-- cell {e.cell_id} en:{e.en_hash} -->\n{e.zh.strip(chr(10))}\n\n"
                   for e in entries).rstrip("\n") + "\n"


def skeleton(nb) -> str:
    """A store file for notebook `nb` with each Markdown cell's English text in place of the
    Chinese: what a translator starts from."""
    return render_store([Entry(c.id, cell_hash(c.source), c.source) for c in nb.cells
                         if c.cell_type == "markdown"])


# --- accuracy checks a machine can make, per cell ------------------------------------------------
# What a translation must carry over unchanged from the English cell: the spans below (verbatim, up
# to whitespace), every digit number, each heading's level and number, each table row's column count.

SPANS = {  # kind -> pattern, in the order they are cut out of the text (code hides its `$`)
    "code block": re.compile(r"^[ \t]*```.*?^[ \t]*```[^\n]*", re.MULTILINE | re.DOTALL),
    "HTML comment": re.compile(r"<!--.*?-->", re.DOTALL),
    "nbgrader marker line": re.compile(r"^[ \t]*### (?:BEGIN|END) (?:SOLUTION|HIDDEN TESTS)[^\n]*",
                                       re.MULTILINE),
    "code span": re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL),
    "math span": re.compile(r"\$\$.+?\$\$|(?<![\\$])\$(?!\s)[^$\n]+?(?<![\s\\])\$", re.DOTALL),
    "link URL": re.compile(r"(?<=\]\()[^)\s]+(?=[^)]*\))"),
}
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.*)$", re.MULTILINE)
HEADING_NUMBER = re.compile(r"\d+(?:\.[0-9A-Z]+)*")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
WORDS = re.compile(r"[A-Za-z]{2,}")


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def spans(text: str) -> tuple[dict[str, list[str]], str]:
    """({kind: [span, …]}, the text with every span cut out) for one cell's Markdown."""
    found = {}
    for kind, pattern in SPANS.items():
        found[kind] = [_squash(m.group(0)) for m in pattern.finditer(text)]
        text = pattern.sub(" ", text) if kind != "link URL" else text
    return found, text


def has_cjk(text: str) -> bool:
    """Whether `text` holds at least one Chinese character."""
    return CJK.search(text) is not None


def needs_translation(english: str) -> bool:
    """Whether an English cell has words to translate once its spans are cut out."""
    return WORDS.search(spans(english)[1]) is not None


def _headings(prose: str) -> list[tuple[int, str]]:
    return [(len(m.group(1)), (HEADING_NUMBER.findall(m.group(2)) or [""])[0])
            for m in HEADING.finditer(prose)]


def _columns(prose: str) -> list[int]:
    return [len(re.split(r"(?<!\\)\|", line.strip().strip("|")))
            for line in prose.splitlines() if line.strip().startswith("|")]


def accuracy_problems(english: str, chinese: str) -> list[str]:
    """What the Chinese text of a cell lost from its English: each missing span or number, a
    heading whose level or number changed, table rows whose column counts differ."""
    en_spans, en_prose = spans(english)
    zh_spans, zh_prose = spans(chinese)
    squashed, problems = _squash(chinese), []
    for kind, found in en_spans.items():
        problems += [f"{kind} {s[:60]!r} is missing" for s in dict.fromkeys(found)
                     if s not in squashed and s not in zh_spans[kind]]
    digits = squashed.replace(",", "")
    problems += [f"number {n} is missing" for n in dict.fromkeys(NUMBER.findall(en_prose))
                 if n not in squashed and n.replace(",", "") not in digits]
    if _headings(en_prose) != _headings(zh_prose):
        problems.append(f"headings (level, number) {_headings(en_prose)} became {_headings(zh_prose)}")
    if _columns(en_prose) != _columns(zh_prose):
        problems.append(f"table column counts {_columns(en_prose)} became {_columns(zh_prose)}")
    return problems

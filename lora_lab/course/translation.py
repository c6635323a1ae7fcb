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
    """The Chinese text `zh` of the master's cell `cell_id`, translated when its source hashed to `en_hash`."""

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

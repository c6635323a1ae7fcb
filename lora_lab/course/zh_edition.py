"""The Chinese edition, generated: `notebooks/zh/NN_name.ipynb` from the English master
`notebooks/NN_name.ipynb` and its translation store `notebooks/zh/NN_name.md` (see `translation`).

Every Markdown cell takes its translation (found by cell id, valid only while the hash matches the
master cell's source); code cells, outputs, execution counts and metadata are the master's; the
set-up call gains `lang="zh"`. A missing, stale, orphan or untranslated entry is a `Problem`, and a
notebook with one is not written: nothing is silently copied from English.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from lora_lab.course.translation import (
    Entry,
    accuracy_problems,
    cell_hash,
    has_cjk,
    needs_translation,
    parse_store,
    render_store,
)

MASTERS = Path(__file__).resolve().parents[2] / "notebooks"
LANG = "zh"
SETUP_CALL = re.compile(r"\bsetup_notebook\(([^()]*)\)")
TODO = "<!-- zh-todo"  # a note `skeleton_for` leaves in an entry; the entry is not done while it is there
REGENERATE = "python -m lora_lab zh"


@dataclass(frozen=True)
class Problem:
    """What is wrong (`what`) with the Chinese edition of `notebook`, at `cell_id` when it is one cell's."""

    notebook: str
    cell_id: str | None
    what: str

    def __str__(self) -> str:
        return f"{self.notebook}" + (f" cell {self.cell_id}" if self.cell_id else "") + f": {self.what}"


def store_path(master: Path) -> Path:
    """`notebooks/zh/NN_name.md` for the master `notebooks/NN_name.ipynb`."""
    return Path(master).parent / LANG / (Path(master).stem + ".md")


def zh_path(master: Path) -> Path:
    """`notebooks/zh/NN_name.ipynb` for the master `notebooks/NN_name.ipynb`."""
    return Path(master).parent / LANG / Path(master).name


def with_lang(source: str, notebook: str = "the master") -> str:
    """The first code cell's source with `lang="zh"` added to its `setup_notebook(...)` call."""
    found = SETUP_CALL.search(source)
    if found is None:
        raise ValueError(f"{notebook}: its first code cell must call setup_notebook(...) (the Chinese "
                         f"edition passes lang={LANG!r} there), got {source[:80]!r}")
    if "lang=" in found.group(1):
        raise ValueError(f"{notebook}: the master's setup_notebook call must not pass lang= already, "
                         f"got {found.group(0)!r}")
    args = found.group(1).strip()
    call = f'setup_notebook({args + ", " if args else ""}lang="{LANG}")'
    return source[:found.start()] + call + source[found.end():]


def store_problems(nb, entries: list[Entry], notebook: str) -> list[Problem]:
    """Every Markdown cell of the master `nb` without a valid translation in `entries`, and every
    entry that translates no Markdown cell of it."""
    by_id, problems = {e.cell_id: e for e in entries}, []
    markdown = {c.id: c for c in nb.cells if c.cell_type == "markdown"}
    for cell_id, cell in markdown.items():
        entry = by_id.get(cell_id)
        if entry is None:
            problems.append(Problem(notebook, cell_id, "missing: no entry in the store"))
        elif entry.en_hash != cell_hash(cell.source):
            problems.append(Problem(notebook, cell_id, f"stale: translated from English {entry.en_hash}, "
                                    f"the master's cell is now {cell_hash(cell.source)}"))
        elif TODO in entry.zh:
            problems.append(Problem(notebook, cell_id, f"unfinished: a {TODO} note is still in the entry"))
        elif needs_translation(cell.source) and not has_cjk(entry.zh):
            problems.append(Problem(notebook, cell_id, "untranslated: the entry has no Chinese character"))
    problems += [Problem(notebook, e.cell_id, "orphan: the master has no Markdown cell with this id")
                 for e in entries if e.cell_id not in markdown]
    return problems


def build(nb, entries: list[Entry], notebook: str = "the master"):
    """The Chinese notebook for master `nb` (a copy; `nb` is untouched). Raises ValueError naming
    every problem when the store is not complete."""
    problems = store_problems(nb, entries, notebook)
    if problems:
        raise ValueError("the store must translate every Markdown cell of the master:\n"
                         + "\n".join(map(str, problems)))
    zh, by_id = copy.deepcopy(nb), {e.cell_id: e for e in entries}
    codes = [c for c in zh.cells if c.cell_type == "code"]
    if not codes:
        raise ValueError(f"{notebook}: the master must have a code cell calling setup_notebook, found none")
    codes[0].source = with_lang(codes[0].source, notebook)
    for cell in zh.cells:
        if cell.cell_type == "markdown":
            cell.source = by_id[cell.id].zh
    zh.metadata["lora_lab"] = {"language": LANG, "master": f"../{notebook}.ipynb",
                               "generated_by": REGENERATE}
    return zh


def render(nb) -> str:
    """The notebook's file text as `nbformat.write` writes it (the same input gives the same bytes)."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def _read(master: Path):
    """(master notebook, its store's entries or None when the store file does not exist)."""
    nb, store = nbformat.read(master, as_version=4), store_path(master)
    return nb, (parse_store(store.read_text(encoding="utf-8")) if store.exists() else None)


def generate(master: Path) -> tuple[str | None, list[Problem]]:
    """(the Chinese notebook's file text, or None when it cannot be built; the problems)."""
    master = Path(master)
    try:
        nb, entries = _read(master)
    except ValueError as error:
        return None, [Problem(master.stem, None, f"the store cannot be read: {error}")]
    if entries is None:
        return None, [Problem(master.stem, None, f"no translation store {_shown(store_path(master))}")]
    problems = store_problems(nb, entries, master.stem)
    return (None if problems else render(build(nb, entries, master.stem))), problems


def accuracy(master: Path) -> list[Problem]:
    """What each translated cell lost from its English cell (`translation.accuracy_problems`) and
    the glossary terms it does not use (`zh_glossary.term_problems`)."""
    from lora_lab.course.zh_glossary import course_glossary, term_problems

    nb, entries = _read(Path(master))
    glossary, by_id, found = course_glossary(), {e.cell_id: e for e in entries or []}, []
    for cell in nb.cells:
        entry = by_id.get(cell.id)
        if cell.cell_type == "markdown" and entry is not None and entry.en_hash == cell_hash(cell.source):
            lost = accuracy_problems(cell.source, entry.zh) + term_problems(cell.source, entry.zh, glossary)
            found += [Problem(Path(master).stem, cell.id, what) for what in lost]
    return found


def _shown(path: Path) -> str:
    """`path` relative to the repository when it lies inside it (for messages)."""
    try:
        return str(Path(path).resolve().relative_to(MASTERS.parent))
    except ValueError:
        return str(path)


def masters(folder: Path | None = None) -> list[Path]:
    """The English masters `NN_name.ipynb` in `folder` (default: `MASTERS`)."""
    return sorted(Path(folder or MASTERS).glob("[0-9][0-9]_*.ipynb"))


def write_edition(folder: Path | None = None, check: bool = False) -> tuple[list[Path], list[Problem]]:
    """Regenerate every Chinese notebook that can be built ([], when `check`: then nothing is
    written, and a committed notebook that differs from the generator's and every accuracy
    problem count too). Returns (paths written, problems)."""
    written, problems = [], []
    for master in masters(folder):
        text, found = generate(master)
        problems += found
        target = zh_path(master)
        if check:
            problems += accuracy(master) if store_path(master).exists() and not found else []
            if text is not None and (not target.exists() or target.read_text(encoding="utf-8") != text):
                state = "is not what the generator writes" if target.exists() else "is missing"
                problems.append(Problem(master.stem, None, f"{_shown(target)} {state}: run `{REGENERATE}`"))
        elif text is not None:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                target.write_text(text, encoding="utf-8")
            written.append(target)
    return written, problems


def skeleton_for(master: Path) -> str:
    """The store for `master` a translator works from: valid entries as they are; a new cell's
    English under a todo note; a stale entry's old translation next to the new English."""
    nb, entries = _read(Path(master))
    by_id, out = {e.cell_id: e for e in entries or []}, []
    for cell in (c for c in nb.cells if c.cell_type == "markdown"):
        old, new_hash = by_id.get(cell.id), cell_hash(cell.source)
        if old is not None and old.en_hash == new_hash:
            out.append(old)
        elif old is None:
            out.append(Entry(cell.id, new_hash, f"{TODO}: new cell, translate the English below -->\n"
                                                f"{cell.source}"))
        else:
            out.append(Entry(cell.id, new_hash, f"{TODO}: the English changed; update the old translation, "
                             f"then delete the new English and these notes -->\n{old.zh}\n\n"
                             f"{TODO}: the new English -->\n{cell.source}"))
    return render_store(out)

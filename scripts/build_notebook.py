"""Authoring tool (not part of the course): build a notebook from a plain-text source, tag its
exercise cells for nbgrader and execute it in place, so it is stored with its outputs.

Source format: cells start with a line `#%% md` or `#%% code`; everything until the next such
line is the cell (Markdown raw, no comment prefixes). Usage:

    .venv/bin/python scripts/build_notebook.py SOURCE.txt notebooks/NN_name.ipynb
    .venv/bin/python scripts/build_notebook.py --execute notebooks/NN_name.ipynb   # re-run only
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from lora_lab.course.assignments import tag_nbgrader


def parse(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    kind, lines = None, []

    def flush():
        if kind is not None:
            src = "\n".join(lines).strip("\n")
            make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
            nb.cells.append(make(src))

    for line in text.splitlines():
        if line.startswith("#%% "):
            flush()
            kind, lines = line[4:].strip(), []
            if kind not in ("md", "code"):
                raise ValueError(f"unknown cell kind {kind!r} in line {line!r}")
        else:
            lines.append(line)
    flush()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, path: Path) -> None:
    os.environ.setdefault("LORA_LAB_OFFLINE", "1")
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()


def main(argv: list[str]) -> None:
    if argv[0] == "--execute":
        path = Path(argv[1])
        nb = nbformat.read(path, as_version=4)
    else:
        path = Path(argv[1])
        nb = parse(Path(argv[0]).read_text())
    for i, cell in enumerate(nb.cells):
        cell.id = f"{path.stem[:2]}-{i:03d}"  # stable ids: small, readable diffs
    tag_nbgrader(nb, prefix=path.stem[:2])
    execute(nb, path)
    nbformat.write(nb, path)
    print(f"wrote {path} ({len(nb.cells)} cells)")


if __name__ == "__main__":
    main(sys.argv[1:])

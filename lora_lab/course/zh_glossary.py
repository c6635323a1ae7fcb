"""The course's one glossary (notebook 00's Markdown table, cell `00-015`: English | 中文 | gloss),
read from the notebook, and the check that a translated cell uses its Chinese terms.

`TERMS` lists the unambiguous terms: each names a glossary row by its English and gives the
pattern of its uses in English prose. A cell whose English uses one must hold the row's Chinese.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import nbformat

from lora_lab.course.translation import spans

GLOSSARY_NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "00_start_here.ipynb"
GLOSSARY_CELL = "00-015"
# (the glossary row's English, its uses in English prose, how many leading characters of the
# Chinese a use needs: None for all of them)
TERMS = (
    ("singular value", r"singular values?", None),
    ("subspace", r"subspaces?", None),
    ("subspace similarity", r"subspace similarit(?:y|ies)", None),
    ("fine-tuning", r"fine-?tun(?:ing|ed|es?)", None),
    ("full fine-tuning", r"full fine-?tuning", None),
    ("gradient", r"gradients?", None),
    ("learning rate", r"learning[- ]rates?", None),
    ("ablation study", r"ablations?", 2),
    ("perplexity", r"perplexit(?:y|ies)", None),
    ("frozen", r"frozen", None),
    # not "Fully Sharded Data Parallel": FSDP's own row, and a title the translations keep in English
    ("data parallelism", r"(?<!sharded )data[- ]parallel(?:ism)?", None),
    ("grouped-query attention", r"grouped[- ]query attention", None),
    ("intrinsic dimension", r"intrinsic dimensions?", None),
    ("amplification factor", r"amplification factors?", None),
    ("checkpoint", r"checkpoints?", None),
    ("orthonormal", r"orthonormal", None),
    ("spectral norm", r"spectral norms?", None),
    ("Frobenius norm", r"Frobenius norms?", None),
    ("cross-entropy", r"cross-?entropy", None),
    ("hyperparameter", r"hyper-?parameters?", None),
    ("overfitting", r"overfit(?:ting|s)?", None),
    ("throughput", r"throughput", None),
    ("weight decay", r"weight decay", None),
    ("self-attention", r"self-attention", None),
    ("multi-head attention", r"multi-head attention", None),
    ("residual connection", r"residual connections?", None),
    ("intruder dimensions", r"intruder dimensions?", None),
    ("quantization", r"quantization", None),
    ("mixed precision", r"mixed[- ]precision", None),
    ("inference latency", r"inference latency", None),
    ("random seed", r"random seeds?", None),
    ("all-reduce", r"all-reduce[sd]?", None),
    ("student copy", r"student cop(?:y|ies)", None),
)


def _english_key(cell: str) -> str:
    """A row's English without math, parentheses, trailing symbols: 'singular value σ' → 'singular value'."""
    cell = re.sub(r"\$[^$]*\$|\([^)]*\)", " ", cell)
    return re.sub(r"(\s+[^\sA-Za-z]+)+$", "", re.sub(r"\s+", " ", cell).strip())


def glossary_rows(source: str) -> dict[str, str]:
    """{English: 中文} for every row of the glossary table in `source`; a row 'a / b | 甲 / 乙'
    also gives a → 甲 and b → 乙."""
    rows = {}
    for line in source.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.strip().startswith("|") or len(cells) < 3 or set(cells[0]) <= set("-: "):
            continue
        english, chinese = _english_key(cells[0]), cells[1]
        rows[english] = chinese
        parts, zh_parts = english.split(" / "), chinese.split(" / ")
        if len(parts) > 1 and len(parts) == len(zh_parts):
            rows.update({_english_key(e): z.strip() for e, z in zip(parts, zh_parts, strict=True)})
    rows.pop("English", None)
    return rows


@cache
def course_glossary(path: Path = GLOSSARY_NOTEBOOK, cell_id: str = GLOSSARY_CELL) -> dict[str, str]:
    """{English: 中文} for the unambiguous `TERMS`, read from the glossary cell of notebook 00."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.get("id") == cell_id]
    if not cells:
        raise ValueError(f"cell_id must name the glossary cell of {Path(path).name}, "
                         f"found no cell {cell_id!r}")
    rows = glossary_rows(cells[0].source)
    missing = [english for english, _, _ in TERMS if english not in rows]
    if missing:
        raise ValueError(f"the glossary in {Path(path).name} cell {cell_id} must have rows for {missing}")
    return {english: rows[english][:keep] for english, _, keep in TERMS}


def term_problems(english: str, chinese: str, glossary: dict[str, str]) -> list[str]:
    """The glossary terms the English prose of a cell uses (spans cut out) whose Chinese term the
    translation does not hold (spaces ignored)."""
    prose, text = spans(english)[1], re.sub(r"\s+", "", chinese)
    return [f"glossary: '{term}' must be {glossary[term]!r}" for term, pattern, _ in TERMS
            if term in glossary and re.search(rf"(?<![\w-]){pattern}(?![\w-])", prose, re.IGNORECASE)
            and re.sub(r"\s+", "", glossary[term]) not in text]

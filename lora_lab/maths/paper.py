"""The paper's reported results as data (Hu et al. 2021, arXiv 2106.09685 v2): cited, not re-run.

Each table is a list of row dicts, one per row the paper prints, with the paper's own labels and
its numbers (means; the ± intervals are left out). Scores are in % except NIST and CIDEr (Table 3).
`*` in a label marks numbers the paper takes from prior work, as the paper does.
"""

from __future__ import annotations

from copy import deepcopy

GLUE_TASKS = ("MNLI", "SST-2", "MRPC", "CoLA", "QNLI", "QQP", "RTE", "STS-B")
E2E_METRICS = ("BLEU", "NIST", "MET", "ROUGE-L", "CIDEr")


def _glue(model: str, method: str, params_m: float, scores: tuple, avg: float) -> dict:
    return {"model": model, "method": method, "params_m": params_m,
            **dict(zip(GLUE_TASKS, scores, strict=True)), "Avg.": avg}


#: Table 2: GLUE (MNLI accuracy, CoLA Matthew's corr., STS-B Pearson corr., accuracy otherwise).
#: The rows run in the paper's "more restricted" Houlsby setup (marked †) are left out.
TABLE2 = [
    _glue("RoBERTa base", "FT*", 125.0, (87.6, 94.8, 90.2, 63.6, 92.8, 91.9, 78.7, 91.2), 86.4),
    _glue("RoBERTa base", "BitFit*", 0.1, (84.7, 93.7, 92.7, 62.0, 91.8, 84.0, 81.5, 90.8), 85.2),
    _glue("RoBERTa base", "Adpt^D*", 0.3, (87.1, 94.2, 88.5, 60.8, 93.1, 90.2, 71.5, 89.7), 84.4),
    _glue("RoBERTa base", "Adpt^D*", 0.9, (87.3, 94.7, 88.4, 62.6, 93.0, 90.6, 75.9, 90.3), 85.4),
    _glue("RoBERTa base", "LoRA", 0.3, (87.5, 95.1, 89.7, 63.4, 93.3, 90.8, 86.6, 91.5), 87.2),
    _glue("RoBERTa large", "FT*", 355.0, (90.2, 96.4, 90.9, 68.0, 94.7, 92.2, 86.6, 92.4), 88.9),
    _glue("RoBERTa large", "LoRA", 0.8, (90.6, 96.2, 90.9, 68.2, 94.9, 91.6, 87.4, 92.6), 89.0),
    _glue("DeBERTa XXL", "FT*", 1500.0, (91.8, 97.2, 92.0, 72.0, 96.0, 92.7, 93.9, 92.9), 91.1),
    _glue("DeBERTa XXL", "LoRA", 4.7, (91.9, 96.9, 92.6, 72.4, 96.0, 92.9, 94.9, 93.0), 91.3),
]


def _e2e(model: str, method: str, params_m: float, scores: tuple) -> dict:
    return {"model": model, "method": method, "params_m": params_m,
            **dict(zip(E2E_METRICS, scores, strict=True))}


#: Table 3: GPT-2 medium (M) and large (L) on the E2E NLG Challenge; higher is better.
TABLE3 = [
    _e2e("GPT-2 M", "FT*", 354.92, (68.2, 8.62, 46.2, 71.0, 2.47)),
    _e2e("GPT-2 M", "Adapter^L*", 0.37, (66.3, 8.41, 45.0, 69.8, 2.40)),
    _e2e("GPT-2 M", "Adapter^L*", 11.09, (68.9, 8.71, 46.1, 71.3, 2.47)),
    _e2e("GPT-2 M", "Adapter^H", 11.09, (67.3, 8.50, 46.0, 70.7, 2.44)),
    _e2e("GPT-2 M", "FT^Top2*", 25.19, (68.1, 8.59, 46.0, 70.8, 2.41)),
    _e2e("GPT-2 M", "PreLayer*", 0.35, (69.7, 8.81, 46.1, 71.4, 2.49)),
    _e2e("GPT-2 M", "LoRA", 0.35, (70.4, 8.85, 46.8, 71.8, 2.53)),
    _e2e("GPT-2 L", "FT*", 774.03, (68.5, 8.78, 46.0, 69.9, 2.45)),
    _e2e("GPT-2 L", "Adapter^L", 0.88, (69.1, 8.68, 46.3, 71.4, 2.49)),
    _e2e("GPT-2 L", "Adapter^L", 23.00, (68.9, 8.70, 46.1, 71.3, 2.45)),
    _e2e("GPT-2 L", "PreLayer*", 0.77, (70.3, 8.85, 46.2, 71.7, 2.47)),
    _e2e("GPT-2 L", "LoRA", 0.77, (70.4, 8.89, 46.8, 72.0, 2.47)),
]


def _gpt3(method: str, params_m: float, wikisql: float, mnli: float, samsum: tuple) -> dict:
    return {"method": method, "params_m": params_m, "WikiSQL": wikisql, "MNLI-m": mnli,
            "SAMSum R1/R2/RL": "/".join(f"{x:.1f}" for x in samsum)}


#: Table 4: GPT-3 175B. WikiSQL ±0.5%, MNLI-m ±0.1%, SAMSum ±0.2/±0.2/±0.1 (the caption).
TABLE4 = [
    _gpt3("FT", 175_255.8, 73.8, 89.5, (52.0, 28.0, 44.5)),
    _gpt3("BitFit", 14.2, 71.3, 91.0, (51.3, 27.4, 43.5)),
    _gpt3("PreEmbed", 3.2, 63.1, 88.6, (48.3, 24.2, 40.5)),
    _gpt3("PreLayer", 20.2, 70.1, 89.5, (50.8, 27.3, 43.5)),
    _gpt3("Adapter^H", 7.1, 71.9, 89.8, (53.0, 28.9, 44.8)),
    _gpt3("Adapter^H", 40.1, 73.2, 91.5, (53.2, 29.0, 45.1)),
    _gpt3("LoRA", 4.7, 73.4, 91.7, (53.8, 29.8, 45.9)),
    _gpt3("LoRA", 37.7, 74.0, 91.6, (53.4, 29.2, 45.1)),
]

#: Table 5: which weights, at a fixed budget of 18M parameters (GPT-3 175B); accuracy in %.
TABLE5 = [
    {"adapted": a, "r": r, "WikiSQL": w, "MultiNLI": m}
    for a, r, w, m in [("Wq", 8, 70.4, 91.0), ("Wk", 8, 70.0, 90.8), ("Wv", 8, 73.0, 91.0),
                       ("Wo", 8, 73.2, 91.3), ("Wq,Wk", 4, 71.4, 91.3), ("Wq,Wv", 4, 73.7, 91.3),
                       ("Wq,Wk,Wv,Wo", 2, 73.7, 91.7)]
]
#: Table 5's caption, word for word.
TABLE5_CAPTION = "Adapting both Wq and Wv gives the best performance overall."

RANKS = (1, 2, 4, 8, 64)
#: Table 6: accuracy (%) at r = 1, 2, 4, 8, 64 (GPT-3 175B), per dataset and adapted weights.
TABLE6 = {
    "WikiSQL": {"Wq": (68.8, 69.6, 70.5, 70.4, 70.0), "Wq,Wv": (73.4, 73.3, 73.7, 73.8, 73.5),
                "Wq,Wk,Wv,Wo": (74.1, 73.7, 74.0, 74.0, 73.9)},
    "MultiNLI": {"Wq": (90.7, 90.9, 91.1, 90.7, 90.7), "Wq,Wv": (91.3, 91.4, 91.3, 91.6, 91.4),
                 "Wq,Wk,Wv,Wo": (91.2, 91.7, 91.7, 91.5, 91.4)},
}
#: Table 6's caption, word for word.
TABLE6_CAPTION = ("To our surprise, a rank as small as one suffices for adapting both Wq and Wv on "
                  "these datasets while training Wq alone needs a larger r.")

#: Table 15 (the data behind Figure 2): GPT-3 175B, accuracy (%) against the number of special
#: tokens l_p + l_i (prefix methods) and trainable parameters (millions, as printed).
TABLE15_PREFIX = [
    {"method": m, "l_p": lp, "l_i": li, "params_m": p, "WikiSQL": w, "MNLI-m": n}
    for m, lp, li, p, w, n in [
        ("PrefixEmbed", 32, 8, 0.4, 55.9, 84.9), ("PrefixEmbed", 64, 8, 0.9, 58.7, 88.1),
        ("PrefixEmbed", 128, 8, 1.7, 60.6, 88.0), ("PrefixEmbed", 256, 8, 3.2, 63.1, 88.6),
        ("PrefixEmbed", 512, 8, 6.4, 55.9, 85.8),
        ("PrefixLayer", 2, 2, 5.1, 68.5, 89.2), ("PrefixLayer", 8, 0, 10.1, 69.8, 88.2),
        ("PrefixLayer", 8, 8, 20.2, 70.1, 89.5), ("PrefixLayer", 32, 4, 44.1, 66.4, 89.6),
        ("PrefixLayer", 64, 0, 76.1, 64.9, 87.9)]
]
#: Table 15's LoRA rows: the adapted weights and their rank, in the paper's notation.
TABLE15_LORA = [
    {"method": "LoRA", "config": c, "params_m": p, "WikiSQL": w, "MNLI-m": n}
    for c, p, w, n in [
        ("r_v=2", 4.7, 73.4, 91.7), ("r_q=r_v=1", 4.7, 73.4, 91.3), ("r_q=r_v=2", 9.4, 73.3, 91.4),
        ("r_q=r_k=r_v=r_o=1", 9.4, 74.1, 91.2), ("r_q=r_v=4", 18.8, 73.7, 91.3),
        ("r_q=r_k=r_v=r_o=2", 18.8, 73.7, 91.7), ("r_q=r_v=8", 37.7, 73.8, 91.6),
        ("r_q=r_k=r_v=r_o=4", 37.7, 74.0, 91.7), ("r_q=r_v=64", 301.9, 73.6, 91.4),
        ("r_q=r_k=r_v=r_o=64", 603.8, 73.9, 91.4)]
]

#: Table 16 (Appendix F.3): MNLI-m validation accuracy (%) with n training examples, GPT-3 175B.
TABLE16 = {"n": (100, 1_000, 10_000, 392_000),
           "Fine-Tune": (60.2, 85.8, 88.9, 89.5), "PrefixEmbed": (37.6, 75.2, 79.5, 88.6),
           "PrefixLayer": (48.3, 82.5, 85.9, 89.6), "LoRA": (63.8, 85.6, 89.2, 91.7)}

_TABLES = {"2": TABLE2, "3": TABLE3, "4": TABLE4, "5": TABLE5, "15-prefix": TABLE15_PREFIX,
           "15-lora": TABLE15_LORA}


def table(name: str) -> list[dict]:
    """A copy of one of the paper's row tables: '2', '3', '4', '5', '15-prefix' or '15-lora'."""
    if name not in _TABLES:
        raise ValueError(f"name must be one of {sorted(_TABLES)}, got {name!r}")
    return deepcopy(_TABLES[name])


def table6_row(dataset: str, adapted: str) -> dict[int, float]:
    """Table 6 as {r: accuracy} for `dataset` ('WikiSQL', 'MultiNLI') and `adapted` weights."""
    if dataset not in TABLE6:
        raise ValueError(f"dataset must be one of {sorted(TABLE6)}, got {dataset!r}")
    if adapted not in TABLE6[dataset]:
        raise ValueError(f"adapted must be one of {sorted(TABLE6[dataset])}, got {adapted!r}")
    return dict(zip(RANKS, TABLE6[dataset][adapted], strict=True))


def peak_then_last(method: str, column: str = "WikiSQL") -> dict:
    """For one method of Table 15's prefix rows (in the paper's order of growing size): its best
    score, the tokens l_p + l_i where it peaks, and its score at the largest size."""
    rows = [r for r in TABLE15_PREFIX if r["method"] == method]
    if not rows:
        raise ValueError(f"method must be 'PrefixEmbed' or 'PrefixLayer', got {method!r}")
    if column not in ("WikiSQL", "MNLI-m"):
        raise ValueError(f"column must be 'WikiSQL' or 'MNLI-m', got {column!r}")
    best = max(rows, key=lambda r: r[column])
    return {"best": best[column], "tokens_at_best": best["l_p"] + best["l_i"],
            "last": rows[-1][column], "tokens_at_last": rows[-1]["l_p"] + rows[-1]["l_i"]}

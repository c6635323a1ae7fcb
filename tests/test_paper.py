"""The paper's tables as data: checked against FACTS.md, against the paper's own arithmetic
(averages, parameter formulas), and against the course's exact counts."""

import pytest

from lora_lab.maths import budget, paper
from lora_lab.maths.budget import GPT3_175B


def test_table5_and_table6_match_facts_md():
    # FACTS.md, "Table 5" and "Table 6" (copied from the paper, arXiv 2106.09685 v2)
    assert [r["WikiSQL"] for r in paper.TABLE5] == [70.4, 70.0, 73.0, 73.2, 71.4, 73.7, 73.7]
    assert [r["MultiNLI"] for r in paper.TABLE5] == [91.0, 90.8, 91.0, 91.3, 91.3, 91.3, 91.7]
    assert [r["r"] for r in paper.TABLE5] == [8, 8, 8, 8, 4, 4, 2]
    assert paper.table6_row("WikiSQL", "Wq") == {1: 68.8, 2: 69.6, 4: 70.5, 8: 70.4, 64: 70.0}
    assert paper.table6_row("MultiNLI", "Wq,Wk,Wv,Wo")[2] == 91.7
    assert paper.table6_row("WikiSQL", "Wq,Wv")[1] == 73.4
    assert paper.table6_row("MultiNLI", "Wq,Wv")[8] == 91.6


def test_table5_budget_is_the_same_for_every_column():
    for row in paper.TABLE5:
        targets = tuple(w[1] for w in row["adapted"].split(","))  # "Wq,Wv" -> ("q", "v")
        assert budget.lora_param_count(GPT3_175B, row["r"], targets) == 18_874_368


def test_table4_parameter_counts_match_the_course_counts():
    rows = {(r["method"], r["params_m"]): r for r in paper.table("4")}
    assert ("FT", GPT3_175B.reported_params / 1e6) in rows  # 175,255.8M (FACTS.md)
    for rank, printed in ((1, 4.7), (8, 37.7)):  # FACTS.md: 4,718,592 and 37,748,736
        exact = budget.lora_param_count(GPT3_175B, rank, ("q", "v"))
        assert round(exact / 1e6, 1) == printed and ("LoRA", printed) in rows
    assert rows[("LoRA", 4.7)]["WikiSQL"] == 73.4 and rows[("FT", 175_255.8)]["MNLI-m"] == 89.5


def test_table2_averages_are_the_mean_of_the_eight_tasks():
    for row in paper.table("2"):
        mean = sum(row[t] for t in paper.GLUE_TASKS) / len(paper.GLUE_TASKS)
        assert abs(mean - row["Avg."]) <= 0.051, row


def test_table15_prefix_embedding_parameters_follow_the_papers_formula():
    # §5.1: PreEmbed trains d_model · (l_p + l_i) parameters
    for row in paper.table("15-prefix"):
        if row["method"] == "PrefixEmbed" and row["l_p"] >= 64:
            assert round(GPT3_175B.d_model * (row["l_p"] + row["l_i"]) / 1e6, 1) == row["params_m"]


def test_figure2_point_prefix_methods_peak_then_fall():
    embed, layer = paper.peak_then_last("PrefixEmbed"), paper.peak_then_last("PrefixLayer")
    assert embed["tokens_at_best"] == 264 and embed["last"] < embed["best"] - 5  # §5.5: > 256 tokens
    assert layer["tokens_at_best"] == 16 and layer["last"] < layer["best"] - 5  # §5.5: > 32 tokens
    lora = [r["WikiSQL"] for r in paper.table("15-lora")]
    assert max(lora) - min(lora) < 1.0  # "LoRA's performance stabilizes" (Table 15's caption)


def test_table_returns_a_copy():
    rows = paper.table("3")
    rows[0]["BLEU"] = 0.0
    assert paper.TABLE3[0]["BLEU"] == 68.2


@pytest.mark.parametrize(("call", "match"), [
    (lambda: paper.table("7"), "name must be one of"),
    (lambda: paper.table6_row("SAMSum", "Wq"), "dataset must be one of"),
    (lambda: paper.table6_row("WikiSQL", "Wk"), "adapted must be one of"),
    (lambda: paper.peak_then_last("LoRA"), "method must be"),
    (lambda: paper.peak_then_last("PrefixEmbed", "BLEU"), "column must be"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()

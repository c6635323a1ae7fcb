"""`python -m lora_lab …`: each subcommand dispatches to the function it names and prints one line
per result; a bad command line is argparse's usage error."""

import subprocess
import sys

import nbformat
import pytest

from lora_lab.__main__ import main
from lora_lab.course.assignments import MASTERS


def test_student_writes_one_copy_per_master(tmp_path, capsys):
    assert main(["student", str(tmp_path / "out")]) == 0
    written = sorted(p.name for p in (tmp_path / "out").glob("*.ipynb"))
    assert written == sorted(p.name for p in MASTERS.glob("*.ipynb"))
    assert capsys.readouterr().out.count("wrote ") == len(written)
    nbformat.validate(nbformat.read(tmp_path / "out" / written[0], as_version=4))


def test_pretrain_finds_and_checks_the_committed_checkpoint(capsys):
    assert main(["pretrain"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("found ") and "(matches the recorded hash)" in line
    assert "test accuracy on digits 0-4: 0.986" in line


def test_prepare_llm_reads_the_cache_named_by_the_environment(tmp_path, monkeypatch, capsys):
    transformers = pytest.importorskip("transformers")
    from lora_lab.lab import llm

    config = transformers.LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1, head_dim=4)
    model = transformers.LlamaForCausalLM(config)
    from tokenizers import Tokenizer, models

    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>")), unk_token="<unk>")
    monkeypatch.setenv("LORA_LAB_CACHE", str(tmp_path))
    folder = tmp_path / "llm" / "smollm2-135m-instruct"
    llm.save_cache(model, tok, folder)
    assert main(["prepare-llm"]) == 0
    n = sum(p.numel() for p in model.parameters())
    assert capsys.readouterr().out == f"found {folder} · SmolLM2-135M-Instruct, {n:,} parameters, float32\n"


def test_a_bad_command_line_is_a_usage_error():
    done = subprocess.run([sys.executable, "-m", "lora_lab", "train"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "invalid choice: 'train'" in done.stderr and "prepare-llm" in done.stderr


def test_course_lays_out_an_nbgrader_course(tmp_path, capsys):
    assert main(["course", str(tmp_path / "course"), "--timeout", "90"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"wrote {tmp_path / 'course' / 'nbgrader_config.py'}"
    assert len(lines) == 1 + len(list(MASTERS.glob("*.ipynb")))
    assert "c.Execute.timeout = 90" in (tmp_path / "course" / "nbgrader_config.py").read_text()


def test_exercise_table_prints_readmes_table(capsys):
    from lora_lab.course.assignments import exercise_table

    assert main(["exercise-table"]) == 0
    assert capsys.readouterr().out == exercise_table()

"""One cache root, one folder per kind, and writes that never leave half a file."""

from pathlib import Path

import pytest

from lora_lab.lab import cache, llm, runs
from lora_lab.lab.cache import atomic_path, cache_dir, cache_root


def test_root_follows_the_environment_then_the_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv("LORA_LAB_CACHE", str(tmp_path))
    assert cache_root() == tmp_path and cache_dir("runs") == tmp_path / "runs"
    assert llm.default_cache_dir() == tmp_path / "llm"
    assert runs.run_path(runs.RunSpec()).parent == tmp_path / "runs"
    monkeypatch.delenv("LORA_LAB_CACHE")
    repo = Path(cache.__file__).resolve().parents[2]
    assert cache_root() == repo / ".cache"  # a source checkout
    assert llm.default_cache_dir() == repo / ".cache" / "llm"  # where `make` runs prepare-llm
    monkeypatch.setattr(cache, "_REPO", tmp_path / "site-packages")  # an installed package
    assert cache_root() == Path.home() / ".cache" / "lora_lab"


def test_kind_is_checked():
    with pytest.raises(ValueError, match="kind must be one of"):
        cache_dir("checkpoints")


def test_atomic_path_replaces_in_one_step_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "entry.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"first")
    assert target.read_bytes() == b"first"

    def killed_mid_write():
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        killed_mid_write()
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["entry.bin"]  # no temporary left

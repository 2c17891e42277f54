"""The LRA efficiency suite: measured (not trained) cells, ratios to full attention from the same
run whatever the model order, oom cells recorded, the scales' lengths and batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench import catalog
from bench.cli import main
from bench.records import read_records
from bench.runner import cell as runner_cell
from suites.data import DataRequest
from suites.lra_efficiency import random_bytes

SMALL_LENGTHS = ["--set", "1k.data.max_len=32", "--set", "2k.data.max_len=64"]


def _run(tmp_path: Path, models: str, run_id: str = "e") -> int:
    argv = ["run", "--suite", "lra_efficiency", "--scale", "tiny", "--models", models]
    argv += ["--tasks", "1k,2k", "--out", str(tmp_path), "--run-id", run_id]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--no-progress", *SMALL_LENGTHS]
    return main(argv)


def test_cells_are_measured_relative_to_full_attention_of_the_same_run(tmp_path, capsys) -> None:
    assert _run(tmp_path, "linformer,full_attention") == 0  # the baseline is listed last
    assert "train steps/s" in capsys.readouterr().out
    records = {(r.task, r.model): r for r in read_records(tmp_path / "e")}
    assert len(records) == 4
    for (task, _model), r in records.items():
        assert r.status == "ok", r.reason
        assert r.data["max_len"] == {"1k": 32, "2k": 64}[task]
        assert "accuracy" not in r.metrics, "efficiency cells do not train"
        assert r.metrics["relative_to"] == "full_attention"
        base = records[(task, "full_attention")].metrics
        for name in ("train_steps_per_s", "memory_peak_train_bytes"):
            assert r.metrics[name] > 0
            assert r.metrics[f"{name}_rel"] == pytest.approx(r.metrics[name] / base[name])
        assert r.metrics["flops_fwd_per_example"] > 0
    assert records[("1k", "full_attention")].metrics["train_steps_per_s_rel"] == 1.0
    # Full attention's FLOPs grow with the square of the length: more than 2x from 32 to 64.
    fa = [records[(t, "full_attention")].metrics["flops_fwd_per_example"] for t in ("1k", "2k")]
    assert fa[1] > 2 * fa[0]


def test_an_out_of_memory_cell_is_recorded_as_oom(tmp_path, monkeypatch) -> None:
    real = runner_cell.measure_model

    def exhaust_full_attention(model, *args, **kwargs):
        if type(model.encoder.blocks[0].mixer).__name__ == "MultiHeadAttention":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return real(model, *args, **kwargs)

    monkeypatch.setattr(runner_cell, "measure_model", exhaust_full_attention)
    assert _run(tmp_path, "full_attention,linformer") == 1
    records = {(r.task, r.model): r for r in read_records(tmp_path / "e")}
    assert records[("1k", "full_attention")].status == "oom"
    assert records[("1k", "full_attention")].metrics == {}
    linformer = records[("1k", "linformer")]
    assert linformer.status == "ok" and "train_steps_per_s_rel" not in linformer.metrics
    assert linformer.metrics["relative_to"] == "none: the full_attention cell is oom"


def test_random_bytes_are_full_length_and_seeded(tmp_path) -> None:
    request = DataRequest(max_len=16, n_train=3, n_dev=2, n_test=2, seed=5, cache_dir=tmp_path)
    data = random_bytes(request)
    (tokens,), (lengths,) = data.train.inputs, data.train.lengths
    assert tokens.shape == (3, 16) and bool((lengths == 16).all())
    assert int(tokens.min()) >= 1 and int(tokens.max()) <= 256  # 0 is padding: none here
    assert torch.equal(random_bytes(request).train.inputs[0], tokens)


def test_scales_follow_the_lra_table_at_paper_scale() -> None:
    suite = catalog.SUITES.get("lra_efficiency")
    assert suite.kind == "efficiency" and suite.tasks == ("1k", "2k", "3k", "4k")
    for scale, batch, lengths in [
        ("paper", 32, [1024, 2048, 3072, 4096]),
        ("small", 8, [512, 1024, 1536, 2048]),
        ("tiny", 4, [256, 512, 768, 1024]),
    ]:
        configs = [suite.scales[scale].resolve(t) for t in suite.tasks]
        assert [c.data.max_len for c in configs] == lengths
        assert {c.train.batch_size for c in configs} == {batch}


def test_ratios_come_from_the_records_in_memory_and_the_suites_reference(
    tmp_path, monkeypatch
) -> None:
    """The records file is read once per run (at the start, for resume), never per cell; the
    reference model is the suite spec's field, not a constant: with linformer as the reference,
    linformer's cells run first and every ratio is to linformer."""
    from bench.records import RecordStore
    from suites.spec import SuiteSpec

    reads = []
    real_read = RecordStore.read
    monkeypatch.setattr(RecordStore, "read", lambda self: reads.append(self) or real_read(self))
    suite = catalog.SUITES.get("lra_efficiency")
    by_linformer = SuiteSpec(**{**suite.__dict__, "reference_model": "linformer"})
    real_get = catalog.SUITES.get
    monkeypatch.setattr(
        catalog.SUITES, "get", lambda name: by_linformer if name == suite.name else real_get(name)
    )
    assert _run(tmp_path, "full_attention,linformer") == 0
    assert len(reads) == 1, "records.jsonl read once, at the start"
    records = {(r.task, r.model): r for r in read_records(tmp_path / "e")}
    for task in ("1k", "2k"):
        fa, lin = records[(task, "full_attention")].metrics, records[(task, "linformer")].metrics
        assert fa["relative_to"] == lin["relative_to"] == "linformer"
        assert lin["train_steps_per_s_rel"] == 1.0
        assert fa["memory_peak_train_bytes_rel"] == pytest.approx(
            fa["memory_peak_train_bytes"] / lin["memory_peak_train_bytes"]
        )

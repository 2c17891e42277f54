"""The LRA efficiency suite: measured (not trained) cells, ratios to full attention from the same
run whatever the model order (computed by the report layer from the records, checked here
against the records' figures divided by hand), oom cells recorded, the scales' lengths and
batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench import registries
from bench.cli import main
from bench.records import read_records
from bench.report.relative import RELATIVE_FIGURES, relative_figures
from bench.runner import cell as runner_cell
from suites.data import DataRequest
from suites.lra_efficiency import random_bytes

SMALL_LENGTHS = ["--set", "1k.data.max_len=32", "--set", "2k.data.max_len=64"]


def _run(tmp_path: Path, models: str, run_id: str = "e") -> int:
    argv = ["run", "--suite", "lra_efficiency", "--scale", "tiny", "--models", models]
    argv += ["--tasks", "1k,2k", "--out", str(tmp_path), "--run-id", run_id]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--no-progress", *SMALL_LENGTHS]
    return main(argv)


def _relative(run_dir: Path, reference: str) -> dict:
    """{(task, model): RelativeFigures} of the run's records against `reference`."""
    return {
        (x.cell.task, x.cell.model): x for x in relative_figures(read_records(run_dir), reference)
    }


def _summary_row(out: str, task: str, model: str) -> list[str]:
    """The cells of the end-of-run summary's row of (task, model)."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()]
    (row,) = [r for r in rows if len(r) > 2 and (r[0], r[2]) == (task, model)]
    return row


def _no_stored_ratio(metrics: dict) -> None:
    stored = {"relative_to", *(f"{n}_rel" for n in RELATIVE_FIGURES)} & metrics.keys()
    assert not stored, f"{stored}: ratios are the report's, not the record's"


def test_cells_are_measured_relative_to_full_attention_of_the_same_run(tmp_path, capsys) -> None:
    assert _run(tmp_path, "linformer,full_attention") == 0  # the baseline is listed last
    out = capsys.readouterr().out
    assert "train steps/s" in out
    records = {(r.task, r.model): r for r in read_records(tmp_path / "e")}
    relative = _relative(tmp_path / "e", "full_attention")
    assert len(records) == 4
    for (task, model), r in records.items():
        assert r.status == "ok", r.reason
        assert r.data["max_len"] == {"1k": 32, "2k": 64}[task]
        assert "accuracy" not in r.metrics, "efficiency cells do not train"
        _no_stored_ratio(r.metrics)
        assert relative[(task, model)].reference == "full_attention"
        assert relative[(task, model)].why == ""
        base = records[(task, "full_attention")].metrics
        row = _summary_row(out, task, model)  # the end-of-run table prints the same ratios
        for name, column in (("train_steps_per_s", 5), ("memory_peak_train_bytes", 8)):
            assert r.metrics[name] > 0
            by_hand = r.metrics[name] / base[name]
            assert relative[(task, model)].ratios[name] == pytest.approx(by_hand)
            assert row[column] == f"{by_hand:.2f}"
        if "train_steps_per_cpu_s" in base:  # measured on CPU
            by_hand = r.metrics["train_steps_per_cpu_s"] / base["train_steps_per_cpu_s"]
            assert relative[(task, model)].ratios["train_steps_per_cpu_s"] == pytest.approx(by_hand)
            assert row[6] == f"{by_hand:.2f}"
        assert r.metrics["flops_fwd_per_example"] > 0
    assert relative[("1k", "full_attention")].ratios["train_steps_per_s"] == 1.0
    # Full attention's FLOPs grow with the square of the length: more than 2x from 32 to 64.
    fa = [records[(t, "full_attention")].metrics["flops_fwd_per_example"] for t in ("1k", "2k")]
    assert fa[1] > 2 * fa[0]


def test_an_out_of_memory_cell_is_recorded_as_oom(tmp_path, monkeypatch, capsys) -> None:
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
    assert linformer.status == "ok"
    _no_stored_ratio(linformer.metrics)
    relative = _relative(tmp_path / "e", "full_attention")[("1k", "linformer")]
    assert relative.ratios == {}
    assert relative.why == "the full_attention cell is oom"
    out = capsys.readouterr().out
    assert _summary_row(out, "1k", "linformer")[5] == "n/a"
    assert "no ratio to full_attention: the full_attention cell is oom" in out


def test_random_bytes_are_full_length_and_seeded(tmp_path) -> None:
    request = DataRequest(max_len=16, n_train=3, n_dev=2, n_test=2, seed=5, cache_dir=tmp_path)
    data = random_bytes(request)
    (tokens,), (lengths,) = data.train.inputs, data.train.lengths
    assert tokens.shape == (3, 16) and bool((lengths == 16).all())
    assert int(tokens.min()) >= 1 and int(tokens.max()) <= 256  # 0 is padding: none here
    assert torch.equal(random_bytes(request).train.inputs[0], tokens)


def test_scales_follow_the_lra_table_at_paper_scale() -> None:
    suite = registries.SUITES.get("lra_efficiency")
    assert suite.kind == "efficiency"
    assert suite.tasks == ("64", "128", "256", "512", "1k", "2k", "3k", "4k")
    for scale, batch, lengths in [
        ("paper", 32, [1024, 2048, 3072, 4096]),
        ("small", 8, [512, 1024, 1536, 2048]),
        ("tiny", 4, [256, 512, 768, 1024]),
    ]:
        assert suite.scales[scale].tasks == ("1k", "2k", "3k", "4k")
        assert suite.scales[scale].models == ()  # every registered model
        configs = [suite.scales[scale].resolve(t) for t in suite.scales[scale].tasks]
        assert [c.data.max_len for c in configs] == lengths
        assert {c.train.batch_size for c in configs} == {batch}


FIGURE_MODELS = ("xmoe", "deepseek_moe", "skywork_moe", "deepseek_v3", "uoe_paper")


def test_uoe_scales_are_the_figures_lengths_and_models() -> None:
    """The UoE README's figure: lengths 64-4096 (the GPU scale), 64-1024 on the CPU, real
    lengths (not shrunk), the LRA model of the UoE release, its five models."""
    suite = registries.SUITES.get("lra_efficiency")
    for scale, batch, lengths in [
        ("uoe", 32, [64, 128, 256, 512, 1024, 2048, 4096]),
        ("uoe_cpu", 4, [64, 128, 256, 512, 1024]),
    ]:
        spec = suite.scales[scale]
        assert spec.models == FIGURE_MODELS
        configs = [spec.resolve(t) for t in spec.tasks]
        assert [c.data.max_len for c in configs] == lengths
        assert {c.train.batch_size for c in configs} == {batch}
        model = configs[0].model
        assert (model.dim, model.depth, model.heads, model.ffn_dim) == (64, 2, 2, 128)


def test_a_scale_runs_its_own_tasks_and_models(monkeypatch, capsys) -> None:
    """Without --models/--tasks a uoe scale plans its own (the registered ones stand in for
    rivals not registered yet); a task outside a scale's list is refused."""
    from dataclasses import replace

    suite = registries.SUITES.get("lra_efficiency")
    present = tuple(m for m in FIGURE_MODELS if m in registries.MODELS.names())
    assert "uoe_paper" in present
    scale = replace(suite.scales["uoe_cpu"], models=(*present, "full_attention"))
    monkeypatch.setitem(suite.scales, "uoe_cpu", scale)
    assert main(["run", "--suite", "lra_efficiency", "--scale", "uoe_cpu", "--dry-run"]) == 0
    cells = [line.split()[1] for line in capsys.readouterr().out.splitlines() if "cell:" in line]
    want = [
        f"lra_efficiency/{task}/{model}/uoe_cpu/seed0"
        for task in ("64", "128", "256", "512", "1k")
        for model in (*present, "full_attention")
    ]
    assert cells == want
    argv = ["run", "--suite", "lra_efficiency", "--scale", "tiny", "--tasks", "64", "--dry-run"]
    assert main(argv) == 2
    assert "scale 'tiny' of lra_efficiency has no task '64'" in capsys.readouterr().err


def test_every_figure_model_is_a_registered_name_once_registered() -> None:
    """The scale names the rivals before they exist; each name registered so far is spelled as
    the registry spells it, and uoe_paper (the released UoE the figure timed) is there."""
    registered = set(registries.MODELS.names())
    assert "uoe_paper" in registered
    for name in FIGURE_MODELS:
        near = [m for m in registered if m.replace("_", "") == name.replace("_", "")]
        assert near in ([], [name]), f"{name!r} is registered as {near}"


def test_ratios_come_from_the_records_in_memory_and_the_suites_reference(
    tmp_path, monkeypatch, capsys
) -> None:
    """The records file is read once per run (at the start, for resume), never per cell; the
    reference model is the suite spec's field, not a constant: with linformer as the reference,
    every ratio `bench run` prints is to linformer."""
    from bench.records import RecordStore
    from suites.spec import SuiteSpec

    reads = []
    real_read = RecordStore.read
    monkeypatch.setattr(RecordStore, "read", lambda self: reads.append(self) or real_read(self))
    suite = registries.SUITES.get("lra_efficiency")
    by_linformer = SuiteSpec(**{**suite.__dict__, "reference_model": "linformer"})
    real_get = registries.SUITES.get
    monkeypatch.setattr(
        registries.SUITES,
        "get",
        lambda name: by_linformer if name == suite.name else real_get(name),
    )
    assert _run(tmp_path, "full_attention,linformer") == 0
    assert len(reads) == 1, "records.jsonl read once, at the start"
    out = capsys.readouterr().out
    assert _summary_row(out, "task", "model")[5:7] == ["x linformer", "x linformer (CPU s)"]
    records = {(r.task, r.model): r for r in read_records(tmp_path / "e")}
    relative = _relative(tmp_path / "e", "linformer")
    for task in ("1k", "2k"):
        fa, lin = records[(task, "full_attention")].metrics, records[(task, "linformer")].metrics
        _no_stored_ratio(fa)
        assert relative[(task, "full_attention")].reference == "linformer"
        assert relative[(task, "linformer")].ratios["train_steps_per_s"] == 1.0
        by_hand = fa["memory_peak_train_bytes"] / lin["memory_peak_train_bytes"]
        assert relative[(task, "full_attention")].ratios["memory_peak_train_bytes"] == (
            pytest.approx(by_hand)
        )
        assert _summary_row(out, task, "full_attention")[8] == f"{by_hand:.2f}"
        assert _summary_row(out, task, "linformer")[5] == "1.00"


def test_a_scale_cannot_list_a_task_its_suite_lacks() -> None:
    from dataclasses import replace

    from suites.spec import SuiteSpec

    suite = registries.SUITES.get("lra_efficiency")
    scale = replace(suite.scales["tiny"], tasks=("1k", "8k"))
    with pytest.raises(ValueError, match=r"scale 'tiny' lists tasks it lacks: \['8k'\]"):
        SuiteSpec("e", "e", suite.tasks, {"tiny": scale}, kind="efficiency")

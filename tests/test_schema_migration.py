"""Runs written by an older uoe-bench read as the current schema, through the one migration
(`bench.schema`): the committed version-3 runs in tests/fixtures/schema3 were made by the code of
commit 371adc5 (a sweep of switch and linformer on smoke/majority, and an lra_efficiency run).
Their records gain the config they ran with (a sweep point's own from the manifest's
`variant_configs`), their efficiency ratios are dropped (the report computes them), and
reports and comparisons of them work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.manifest import read_manifest
from bench.records import Record, read_records
from bench.report.build import build_report
from bench.schema import SCHEMA_VERSION, SchemaError, migrate_record

OLD = Path(__file__).parent / "fixtures" / "schema3"


def _raw(run: str) -> tuple[dict, list[dict]]:
    manifest = json.loads((OLD / run / "manifest.json").read_text())
    records = [json.loads(line) for line in (OLD / run / "records.jsonl").read_text().splitlines()]
    return manifest, records


def test_the_fixtures_are_version_3() -> None:
    manifest, records = _raw("sweep3")
    assert "schema_version" not in manifest and "variant_configs" in manifest
    assert {r["schema_version"] for r in records} == {3}
    assert all("config" not in r for r in records)


def test_an_old_manifest_reads_typed_with_the_measure_section_in_its_configs() -> None:
    manifest = read_manifest(OLD / "sweep3")
    raw, _ = _raw("sweep3")
    assert manifest.schema_version == SCHEMA_VERSION
    assert manifest.plan.sweep == ("model.experts=2,4",) and manifest.plan.tasks == ("majority",)
    assert manifest.configs["majority"]["measure"] == raw["measure"]["majority"]
    assert manifest.configs["majority"]["train"] == raw["configs"]["majority"]["train"]


def test_an_old_record_takes_its_sweep_points_config_from_the_manifest() -> None:
    raw_manifest, _ = _raw("sweep3")
    records = read_records(OLD / "sweep3")
    assert {r.schema_version for r in records} == {SCHEMA_VERSION}
    for record in records:
        point = raw_manifest["variant_configs"][record.variant]["configs"]["majority"]
        assert record.config["model"] == point["model"]
        assert record.config["model"]["experts"] == record.variant_values["model.experts"]
        assert record.config["measure"] == raw_manifest["measure"]["majority"]


def test_old_efficiency_ratios_are_dropped_and_recomputed_by_the_report() -> None:
    _, raw_records = _raw("eff3")
    stored = {r["model"]: r["metrics"] for r in raw_records}
    assert "train_steps_per_s_rel" in stored["linformer"]
    records = {r.model: r for r in read_records(OLD / "eff3")}
    assert not any(k.endswith("_rel") or k == "relative_to" for k in records["linformer"].metrics)
    report = build_report([OLD / "eff3"], "md", plots=False)
    ratio = stored["linformer"]["train_steps_per_s"] / stored["full_attention"]["train_steps_per_s"]
    assert f"({ratio:.2f}×)" in report.text
    assert ratio == pytest.approx(stored["linformer"]["train_steps_per_s_rel"])


def test_old_runs_report_and_compare_with_themselves(capsys) -> None:
    for run in ("sweep3", "eff3"):
        assert main(["report", str(OLD / run)]) == 0
        assert main(["compare", str(OLD / run), str(OLD / run)]) == 0
    assert "not in the metric catalog" not in capsys.readouterr().out


def test_a_record_of_a_newer_schema_is_refused_naming_the_fix() -> None:
    with pytest.raises(SchemaError, match="upgrade uoe-bench"):
        migrate_record({"schema_version": SCHEMA_VERSION + 1}, None)
    with pytest.raises(ValueError, match="needs migrating"):
        Record.from_dict({"schema_version": 3})

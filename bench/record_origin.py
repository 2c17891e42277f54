"""Whether a record read from a run's `records.jsonl` is that run's own result.

Records are matched to cells by their identity (suite, task, model, scale, seed, variant), so a
line pasted from another run (another `run_id`, or the same id run with other settings) would
stand as the cell's finished result: resume would never rerun it and the report would show its
figures under this run's config. `check_origin` compares the record's `run_id` with the
manifest's and its config with the config the manifest gives its cell (the task's shared fields
and the model's own); at a sweep point the swept fields are left out (the manifest keeps no
per-point config; the variant key, part of the identity, names their values), and so are a
model's own fields when the manifest names none for it. A mismatch raises
`ForeignRecord`, which the records scan treats like a garbled line: skipped with a warning
naming the line, quarantined on resume so the cell is rerun. Imports no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ForeignRecord(ValueError):
    """A record whose run_id or config is not its run's (says which, and both values)."""


def check_origin(record: Any, manifest: Mapping[str, Any]) -> None:
    """ForeignRecord unless `record` (a `bench.records.Record`) belongs to the run whose
    migrated manifest dict is `manifest`; nothing is checked without a manifest ({})."""
    if not manifest:
        return
    run_id = manifest.get("run_id")
    if isinstance(run_id, str) and record.run_id != run_id:
        raise ForeignRecord(f"its run_id is {record.run_id!r}, this run's is {run_id!r}")
    expected = expected_config(manifest, record.task, record.model)
    skip = _swept_fields(manifest) if record.variant else set()
    if not _own_fields(manifest, record.task, record.model):
        # The manifest names no own fields of this model: the record's model fields beyond the
        # shared ones cannot be checked (a hand-made manifest, a model added since).
        shared = set(expected.get("model", {}))
        skip |= {("model", name) for name in record.config.get("model", {}) if name not in shared}
    differing = sorted(
        f"{section}.{name}"
        for section in set(expected) | set(record.config)
        for name in set(expected.get(section, {})) | set(record.config.get(section, {}))
        if (section, name) not in skip
        and expected.get(section, {}).get(name, _ABSENT)
        != record.config.get(section, {}).get(name, _ABSENT)
    )
    if differing:
        shown = ", ".join(
            f"{key}={_get(record.config, key)!r} (this run: {_get(expected, key)!r})"
            for key in differing[:3]
        )
        more = f" and {len(differing) - 3} more" if len(differing) > 3 else ""
        raise ForeignRecord(f"its config differs from this run's manifest: {shown}{more}")


_ABSENT = object()


def _get(config: Mapping[str, Any], key: str) -> Any:
    section, name = key.split(".", 1)
    value = config.get(section, {}).get(name, _ABSENT)
    return "absent" if value is _ABSENT else value


def expected_config(manifest: Mapping[str, Any], task: str, model: str) -> dict[str, Any]:
    """The config a record of (task, model) carries in this run (`ResolvedPlan.cell_config`
    as the manifest stored it): the task's shared sections, the model section with the model's
    own fields; {} when the manifest holds no config for the task."""
    shared = manifest.get("configs", {}).get(task)
    if not shared:
        return {}
    config = {section: dict(fields) for section, fields in shared.items()}
    config["model"] = {**config.get("model", {}), **_own_fields(manifest, task, model)}
    return config


def _own_fields(manifest: Mapping[str, Any], task: str, model: str) -> Mapping[str, Any]:
    return manifest.get("model_fields", {}).get(task, {}).get(model, {})


def _swept_fields(manifest: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(section, field) of every `--sweep [task.]section.field=...` of the run's plan."""
    out = set()
    for text in manifest.get("plan", {}).get("sweep", ()):
        parts = text.split("=", 1)[0].strip().split(".")
        if len(parts) >= 2:
            out.add((parts[-2], parts[-1]))
    return out

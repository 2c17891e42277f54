"""The run manifest (`bench.manifest.Manifest`) written when a run starts: the plan, each task's
resolved config (the fields every model shares) and the own fields of each planned model that has
any, the suite's reference model and own figures, the environment, and the grouped-GEMM kernel
each routed part of each model will use on the run's device, and how those are picked (the
autotune table or the rule)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from bench.environment import environment
from bench.kernel_tuning import tuned_kernels
from bench.manifest import COMMAND_FILE, MANIFEST_FILE, Manifest, write_manifest
from bench.measure.numerics import numerics
from bench.records import utc_now
from bench.runner.plan import ResolvedPlan
from models.errors import InputError
from models.registry import build_model
from suites.atomic import write_text_atomic


def start(
    resolved: ResolvedPlan,
    run_dir: Path,
    argv: Sequence[str] = (),
    launcher: Mapping[str, Any] | None = None,
) -> None:
    """Create the run directory and write its manifest (refuses an existing run), and beside it
    `command.txt`, the command line, to rerun the run should its manifest be lost. `launcher`
    is what the launcher says of where cells go (a Ray cluster's resources)."""
    if (run_dir / MANIFEST_FILE).exists():
        raise InputError(
            f"{run_dir} already holds a run; resume it with --resume {shlex.quote(str(run_dir))}"
        )
    plan = resolved.plan
    if argv:
        command = shlex.join(["bench", *list(argv)[1:]])
        write_text_atomic(run_dir / COMMAND_FILE, command + "\n")
    cache = Path(plan.cache_dir) if plan.cache_dir else None
    with tuned_kernels(plan.kernels, cache, plan.device) as tuning:
        kernel_paths = kernels(resolved)  # under the run's policy: `describe` names it
    manifest = Manifest(
        run_id=run_dir.name,
        created_at=utc_now(),
        argv=tuple(argv),
        plan=plan,
        configs={task: cfg.to_dict() for task, cfg in resolved.configs.items()},
        model_fields={
            task: fields for task in plan.tasks if (fields := resolved.planned_model_fields(task))
        },
        launcher=dict(launcher or {"name": "in_process"}),
        reference_model=resolved.suite.reference_model,
        suite_metrics=resolved.suite.metrics,
        kernels=kernel_paths,
        kernel_tuning=tuning.to_dict(),
        environment=environment(),
        numerics=numerics(),
    )
    write_manifest(run_dir, manifest)


def kernels(resolved: ResolvedPlan) -> dict[str, dict[str, Any]]:
    """{task: {model: {part: grouped-GEMM policy}}} for every model with routed parts.

    Before any forward a part knows its weights' device, dtype and shape but not its row count,
    so each model is built once per task and asked for its policy as one line
    (`models.kernels.dispatch.describe`: the static choice, plus the row rule of the concurrent
    path where it can apply); the path each part actually ran is in the cell's record
    (`gemm_kernels`). A model that cannot be built is listed with the reason (its cells will
    record the same error).
    """
    device = torch.device(resolved.plan.device)
    out: dict[str, dict[str, Any]] = {}
    for task, cfg in resolved.configs.items():
        model_task = resolved.tasks[task].model_task(cfg.data.max_len)
        for name in resolved.plan.models:
            try:
                own = resolved.own(task)
                model = build_model(name, cfg.model, model_task, own).to(device)
            except Exception as exc:  # recorded here, and again as the cells' error records
                out.setdefault(task, {})[name] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            paths = {
                n: m.gemm_kernel() for n, m in model.named_modules() if hasattr(m, "gemm_kernel")
            }
            if paths:
                out.setdefault(task, {})[name] = paths
    return out

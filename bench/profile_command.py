"""`bench profile MODEL[,MODEL...] SUITE/TASK`: profiler traces of a few training steps, and what
each layer phase costs of them (`bench.measure.phases`), one model or several side by side.

Like `bench run` it runs at one intra-op thread unless `--threads` says otherwise (torch's own
default, one per core, made profiles disagree with runs), under the run's grouped-GEMM policy
(`--kernels`). `--steps` sets the recorded steps. `--from-run RUN_DIR` profiles a cell of that
run as it was configured (scale, overrides, data, device, threads, kernels from its manifest);
`--trained` trains the model first with the cell's training config and seed 0 (a trained router
routes differently from an initial one, and routing cost follows). Beside the traces it writes
`profile.json`: threads, machine load before and after, commit, the resolved config, the kernel
policy and each model's phase summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from bench.run_plan import DEFAULT_THREADS
from models.errors import InputError

PROFILE_MANIFEST = "profile.json"


def _models(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise InputError("bench profile needs a model name (bench list models)")
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise InputError(f"model {twice} is given twice; list each once")
    return names


def _plan(args: argparse.Namespace, models: tuple[str, ...]):
    """The RunPlan to resolve: from the arguments, or from `--from-run`'s manifest."""
    from bench import runner
    from bench.cache_dir import resolve_cache_dir
    from bench.commands import _check_device
    from bench.manifest import read_manifest

    suite, _, task = args.task.partition("/")
    if args.from_run is None:
        threads = DEFAULT_THREADS if args.threads is None else args.threads
        return runner.RunPlan(
            suite=suite,
            scale=args.scale or "tiny",
            models=models,
            tasks=(task,),
            seeds=(0,),
            overrides=tuple(args.overrides),
            data_dir=str(args.data_dir) if args.data_dir else None,
            cache_dir=str(resolve_cache_dir(args.cache_dir)),
            device=_check_device(args.device or "cpu"),
            profile=True,
            threads=threads,
            kernels=args.kernels or "autotune",
        )
    given = [
        flag
        for flag, value in (
            ("--scale", args.scale),
            ("--set", args.overrides),
            ("--data-dir", args.data_dir),
            ("--cache-dir", args.cache_dir),
            ("--device", args.device),
            ("--kernels", args.kernels),
        )
        if value
    ]
    if given:
        raise InputError(
            f"--from-run takes the cell's config from the run; drop {', '.join(given)}"
        )
    stored = read_manifest(args.from_run).plan
    if stored.suite != suite or task not in stored.tasks:
        raise InputError(
            f"{args.from_run} ran {stored.suite}/{','.join(stored.tasks)}, not {args.task}"
        )
    missing = [m for m in models if m not in stored.models]
    if missing:
        raise InputError(
            f"{args.from_run} has no cells of {', '.join(missing)} (its models: "
            f"{', '.join(stored.models)})"
        )
    threads = stored.threads if args.threads is None else args.threads
    return dataclasses.replace(
        stored,
        models=models,
        tasks=(task,),
        seeds=(0,),
        profile=True,
        threads=threads,
        sweep=(),
        device=_check_device(stored.device),
    )


def profile(args: argparse.Namespace) -> int:
    import torch
    from tabulate import tabulate

    from bench import registries, runner
    from bench.environment import environment
    from bench.kernel_tuning import tuned_kernels, with_current_choices
    from bench.measure.cell import fixed_batch, profile_model, profile_schedule
    from bench.runner.machine_load import load_average
    from bench.runner.run_dir import check_run_id
    from bench.train import train_and_evaluate
    from models.registry import build_model
    from suites.atomic import write_text_atomic
    from suites.safe_files import one_component, real_dirs, refuse_links

    if args.run_id is not None:  # before anything runs: one folder directly under --out
        check_run_id(args.run_id)
    if args.steps is not None and args.steps < 1:
        raise InputError(f"--steps {args.steps}: profile at least 1 step")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads {args.threads}: use 1 or more")
    models = _models(args.model)
    registries.discover()
    registries.TASKS.get(args.task)  # an unknown task lists the nearest names
    for name in models:
        registries.MODELS.get(name)  # an unknown model lists the nearest names
    _suite, _, task = args.task.partition("/")
    plan = _plan(args, models)
    if plan.threads is not None:
        torch.set_num_threads(plan.threads)
    resolved = runner.resolve(plan)
    data = runner.load_task_data(resolved, task)
    if isinstance(data, Exception):
        raise InputError(f"{task}: {type(data).__name__}: {data}")
    cfg = resolved.configs[task]
    schedule = profile_schedule(cfg.measure)
    if args.steps is not None:
        schedule = dataclasses.replace(schedule, active=args.steps)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    label = "-".join(models)
    out = args.out / (args.run_id or one_component(f"profile-{label}-{task}-{stamp}"))
    refuse_links(out)
    traces = real_dirs(args.out, out / "traces")
    device = torch.device(plan.device)
    load_before = load_average()
    summaries: dict[str, Any] = {}
    cache = Path(plan.cache_dir) if plan.cache_dir else None
    with tuned_kernels(plan.kernels, cache, plan.device) as tuning:
        for name in models:
            torch.manual_seed(0)
            model = build_model(
                name,
                cfg.model,
                resolved.tasks[task].model_task(cfg.data.max_len),
                resolved.own(task),
            )
            if args.trained:
                train_and_evaluate(model, data, cfg.train, seed=0, device=device)
            result = profile_model(
                model,
                fixed_batch(data.train, cfg.train.batch_size),
                train=cfg.train,
                device=device,
                cfg=schedule,
                trace_dir=real_dirs(args.out, traces / one_component(f"{task}-{name}")),
                trace_worker=name,
            )
            summaries[name] = result.summary
            print(result.op_table.read_text(encoding="utf-8"))
            print(f"{name}: {result.summary.text()}\n")
            print(f"trace: {result.trace}  (chrome://tracing, https://ui.perfetto.dev)")
            print(f"op table: {result.op_table}")
            print(f"phases: {result.phases}\n")
        tuning = with_current_choices(tuning)  # the classes tuned while profiling included
    load_after = load_average()
    if len(models) > 1:
        print("side by side, % of each model's step (forward + backward):")
        print(tabulate(side_by_side(summaries), headers="keys", tablefmt="github"))
    env = environment()
    manifest = {
        "command": "bench profile",
        "models": list(models),
        "task": args.task,
        "threads": torch.get_num_threads(),
        "load_average": {"before": load_before, "after": load_after},
        "cpu_count": env["cpu_count"],
        "git_sha": env["git_sha"],
        "git_dirty": env["git_dirty"],
        "environment": env,
        "plan": plan.to_dict(),
        "from_run": str(args.from_run) if args.from_run else None,
        "trained": bool(args.trained),
        "schedule": dataclasses.asdict(schedule),
        "config": cfg.to_dict(),
        "kernel_tuning": tuning.to_dict(),
        "phases": {name: s.to_dict() for name, s in summaries.items()},
    }
    path = out / PROFILE_MANIFEST
    write_text_atomic(path, json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    print(f"manifest: {path}")
    print(f"tensorboard --logdir {traces}  (torch-tb-profiler)")
    return 0


def side_by_side(summaries: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per phase any model shows (and other): each model's total % of its step, and
    its forward/backward split."""
    phases: list[str] = []
    for summary in summaries.values():
        phases += [p.phase for p in summary.phases if p.phase not in phases]
    rows = []
    for phase in [*phases, "other"]:
        row: dict[str, Any] = {"phase": phase}
        for name, summary in summaries.items():
            found = {r["phase"]: r for r in summary.rows()}.get(phase)
            if found is None:
                row[name] = "n/a"
            elif phase == "other":
                row[name] = f"{found['total %']:.1f}"
            else:
                row[name] = f"{found['total %']:.1f} ({found['fwd %']:.1f} + {found['bwd %']:.1f})"
        rows.append(row)
    return rows

"""The `bench` command that runs models, `run`, as `(args) -> exit code` (`bench profile` is
`bench.profile_command`);
`bench.cli` parses the arguments and builds nothing else (the reading commands are in
`bench.info_commands`). Every import of the harness is inside the command that needs it, so
`bench --help` stays fast and `bench report` / `bench compare` never load torch or a model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from models.errors import InputError

if TYPE_CHECKING:
    from bench.run_plan import RunPlan
    from bench.runner.launch_options import LaunchOptions

DEFAULT_OUT = Path("results") / "runs"  # `bench run --out`'s default

# Seeds reach torch (64-bit), numpy and Python's random; 32 bits is what every one takes.
MAX_SEED = 2**32 - 1


def run(args: argparse.Namespace) -> int:
    import torch

    from bench import registries, runner
    from bench.cache_dir import check_cache_dir, resolve_cache_dir
    from bench.manifest import read_manifest
    from bench.run_plan import DEFAULT_THREADS
    from bench.runner.data_dirs import parse_data_dirs, record_resume, with_new_data_dirs
    from bench.runner.dry_run import dry_run_text
    from bench.runner.interrupt import (
        RunInterrupted,
        interruptible,
        report_connect_interrupt,
        report_interrupt,
    )
    from bench.runner.lock import hold
    from bench.runner.resume import read_plan
    from bench.runner.run_dir import check_run_id, check_writable

    registries.discover()
    if args.resume:
        if args.suite or args.models or args.tasks or args.overrides or args.profile or args.sweep:
            raise InputError(
                "--resume reruns the stored plan; drop --suite/--models/--tasks/--set/--sweep/"
                "--profile"
            )
        if args.threads is not None:
            raise InputError("--resume keeps the run's thread count; drop --threads")
        run_dir = args.resume
        plan = read_plan(run_dir)
        _refuse_ignored_by_resume(args, plan)
        check_cache_dir(Path(plan.cache_dir), f"the run's cache directory {plan.cache_dir}")
        if args.data_dir:  # e.g. the files were not there when the run started
            plan = with_new_data_dirs(plan, args.data_dir)
        resolved = runner.resolve(plan)
        if not args.dry_run:
            check_writable(run_dir, "run directory")
    else:
        if not args.suite:
            raise InputError("bench run needs --suite (bench list suites), or --resume RUN_DIR")
        suite = registries.SUITES.get(args.suite)
        scale = suite.scales.get(args.scale)  # an unknown one is refused by runner.resolve
        data_dir, task_data_dirs = parse_data_dirs(args.data_dir or [])
        device = args.device or "cpu"
        plan = runner.RunPlan(
            suite=args.suite,
            scale=args.scale,
            models=_names(args.models, "--models")
            or (scale.models if scale else ())
            or tuple(registries.MODELS.names()),
            tasks=_names(args.tasks, "--tasks") or (scale.tasks if scale else ()) or suite.tasks,
            seeds=_seeds(args.seeds),
            overrides=tuple(args.overrides),
            data_dir=data_dir,
            cache_dir=str(resolve_cache_dir(args.cache_dir)),
            device=device if args.dry_run else _check_device(device),
            profile=args.profile,
            task_data_dirs=task_data_dirs,
            threads=DEFAULT_THREADS if args.threads is None else args.threads,
            sweep=tuple(args.sweep),
            kernels=args.kernels or "autotune",
        )
        resolved = runner.resolve(plan)
        run_id = args.run_id if args.run_id is not None else runner.new_run_id(plan)
        out = args.out if args.out is not None else DEFAULT_OUT
        run_dir = out / check_run_id(run_id)
        if not args.dry_run:
            check_writable(out, "--out")
    if args.dry_run:
        print(dry_run_text(resolved))
        return 0
    if plan.threads is not None:  # before the manifest, which records the thread count
        torch.set_num_threads(plan.threads)
    # Bad launcher options are refused here, before the run directory exists; a stop signal
    # while a Ray cluster is joined (or started) ends the command, with nothing run.
    try:
        with interruptible():
            options = _launch_options(args, resolved)
            launcher = runner.make_launcher(options, resolved.plan.device)
    except RunInterrupted as exc:
        return report_connect_interrupt(exc, args.ray_address)
    try:
        with hold(run_dir):  # one writer per run directory, under every launcher
            try:
                with interruptible():
                    if not args.resume:
                        runner.start(resolved, run_dir, sys.argv, launcher.describe())
                    elif args.data_dir:
                        record_resume(run_dir, read_manifest(run_dir), plan)
                    return _execute(resolved, run_dir, args, launcher)
            except RunInterrupted as exc:
                return report_interrupt(exc, run_dir)
    finally:
        launcher.close()


def _refuse_ignored_by_resume(args: argparse.Namespace, stored: RunPlan) -> None:
    """What the resumed run's own directory and manifest decide is refused, not ignored."""
    if args.cache_dir is not None:
        raise InputError(
            f"--resume uses the run's stored cache directory ({stored.cache_dir}); drop --cache-dir"
        )
    if args.device is not None:
        raise InputError(
            f"--resume runs on the run's stored device ({stored.device}); drop --device"
        )
    if args.kernels is not None:
        raise InputError(
            f"--resume picks kernels as the run did ({stored.kernels}); drop --kernels"
        )
    for flag, value in (("--out", args.out), ("--run-id", args.run_id)):
        if value is not None:
            raise InputError(f"--resume writes into RUN_DIR itself ({args.resume}); drop {flag}")


def _execute(resolved, run_dir, args: argparse.Namespace, launcher) -> int:
    from bench import runner
    from bench.report.summary import efficiency_summary, summary_table
    from bench.runner.dry_run import data_needs
    from bench.runner.interrupt import RunInterrupted
    from bench.runner.run_log import RunLog

    plan = resolved.plan
    run_log = RunLog(run_dir, data_needs(resolved))
    progress = None
    if not args.no_progress:
        from bench.progress import tqdm_progress

        progress = tqdm_progress
    try:
        records = runner.execute(resolved, run_dir, launcher, progress=progress, run_log=run_log)
    except RunInterrupted as exc:  # name what was not finished in the one line printed
        exc.unfinished = tuple(str(cell) for cell in run_log.todo)
        raise
    if resolved.suite.kind == "efficiency":
        print(efficiency_summary(records, resolved.suite.reference_model))
    elif any(task.causal for task in resolved.tasks.values()):
        from bench.report.lm_summary import lm_summary

        print(lm_summary(records))
    else:
        print(summary_table(records))
    print(f"\nrecords: {run_dir / 'records.jsonl'}")
    run_log.finish(records, run_dir, traces=run_dir / "traces" if plan.profile else None)
    return _run_exit_code(records, args.allow_measurement_errors)


def _launch_options(args: argparse.Namespace, resolved) -> LaunchOptions:
    """The launcher `bench run`'s arguments ask for, as the runner takes it."""
    from bench.runner.launch_options import LaunchOptions
    from bench.runner.parallel import auto_workers, serial_only_reason

    workers = args.workers
    if workers is None:
        plan = resolved.plan
        in_process = args.launcher == "in_process"
        workers = auto_workers(plan.threads, plan.device, resolved) if in_process else 1
    elif workers > 1 and serial_only_reason(resolved):
        raise InputError(
            f"--workers {workers}: {serial_only_reason(resolved)}; drop --workers for this suite"
        )
    return LaunchOptions(
        launcher=args.launcher,
        workers=workers,
        ray_address=args.ray_address,
        cpus_per_cell=args.cpus_per_cell,
        gpus_per_cell=args.gpus_per_cell,
        max_retries=args.max_retries,
        share_device=args.share_device,
        show_progress=not args.no_progress,
    )


def _run_exit_code(records, allow_measurement_errors: bool) -> int:
    """1 when a cell ended in error or oom, or (unless allowed) an ok cell's measurements
    failed; else 0."""
    if any(r.status in ("error", "oom") for r in records):
        return 1
    unmeasured = [r for r in records if r.measurement_error]
    if unmeasured and not allow_measurement_errors:
        print(
            f"bench: {len(unmeasured)} cell(s) trained but their measurements failed (see the "
            "reason column); rerun them with --resume, or pass --allow-measurement-errors",
            file=sys.stderr,
        )
        return 1
    return 0


def _names(text: str | None, flag: str = "") -> tuple[str, ...]:
    """The comma-separated names of `text`; with `flag`, a name given twice is refused."""
    names = tuple(n.strip() for n in text.split(",") if n.strip()) if text else ()
    if flag:
        _check_unique(names, flag, text or "")
    return names


def _check_unique(values: tuple, flag: str, text: str) -> None:
    twice = next((v for i, v in enumerate(values) if v in values[:i]), None)
    if twice is not None:
        raise InputError(f"{flag} {text}: {twice} is given twice; list each once")


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in _names(text))
    except ValueError:
        raise InputError(
            f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2"
        ) from None
    for seed in seeds:
        if not 0 <= seed <= MAX_SEED:
            raise InputError(
                f"--seeds {text}: {seed} is out of range: seeds are integers from 0 to {MAX_SEED}"
            )
    _check_unique(seeds, "--seeds", text)
    return seeds


def _check_device(device: str) -> str:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available here; use --device cpu")
    try:
        torch.device(device)
    except RuntimeError:
        raise InputError(f"--device {device!r} is not a torch device; use cpu or cuda") from None
    return device

"""`bench run | list | report | compare | profile | data`: the command line. Thin: parses, then
calls the harness modules, which it imports lazily so `bench --help` stays fast.

Exit codes: 0 when every cell is ok or skipped, 1 when a cell ended in error or oom, 2 for bad
input (unknown name, malformed --set, missing run directory). `bench compare` exits 1 when a
figure regressed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CACHE = Path(os.environ.get("BENCH_CACHE_DIR", Path.home() / ".cache" / "uoe-bench"))
DEFAULT_OUT = Path("results") / "runs"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("BENCH_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except (KeyError, ValueError, FileNotFoundError, FileExistsError) as exc:
        # Bad input: say what was wrong and how to fix it, without a traceback.
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"bench: error: {message}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train and evaluate models on a suite, appending records")
    run.add_argument("--suite", help="suite name (bench list suites)")
    run.add_argument("--scale", default="tiny", help="tiny | small | paper (default: tiny)")
    run.add_argument("--models", help="comma-separated model names (default: all registered)")
    run.add_argument("--tasks", help="comma-separated task names (default: all of the suite)")
    run.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field: model.dim=128, train.steps=50, "
        "listops.data.max_len=2048 (repeatable)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"parent directory of run directories (default: {DEFAULT_OUT})",
    )
    run.add_argument("--run-id", help="name of the run directory (default: suite-scale-time)")
    run.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="finish an interrupted run: rerun only cells without an ok record",
    )
    run.add_argument(
        "--data-dir",
        type=Path,
        help="directory with a task's official files (e.g. the LRA ListOps TSVs)",
    )
    run.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"cache of generated data (default: $BENCH_CACHE_DIR or {DEFAULT_CACHE})",
    )
    run.add_argument("--device", default="cpu", help="torch device: cpu or cuda (default: cpu)")
    run.add_argument("--no-progress", action="store_true", help="draw no progress bars")
    run.add_argument(
        "--profile",
        action="store_true",
        help="also write a profiler trace of a few training steps per ok cell "
        "(<run dir>/traces, a TensorBoard logdir; Chrome/Perfetto JSON)",
    )
    run.set_defaults(func=_cmd_run)

    prof = sub.add_parser(
        "profile", help="profiler trace of a few training steps of one model on one task"
    )
    prof.add_argument("model", help="model name (bench list models)")
    prof.add_argument("task", help="suite/task, e.g. lra/listops (bench list tasks)")
    prof.add_argument("--scale", default="tiny", help="tiny | small | paper (default: tiny)")
    prof.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    prof.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    prof.add_argument("--run-id", help="name of the output directory (default: profile-...)")
    prof.add_argument("--data-dir", type=Path, help="directory with a task's official files")
    prof.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    prof.add_argument("--device", default="cpu", help="torch device: cpu or cuda (default: cpu)")
    prof.set_defaults(func=_cmd_profile)

    lst = sub.add_parser("list", help="list registered models, suites or tasks")
    lst.add_argument(
        "what",
        nargs="?",
        choices=["models", "suites", "tasks"],
        help="which registry (default: all three)",
    )
    lst.set_defaults(func=_cmd_list)

    report = sub.add_parser(
        "report", help="accuracy, efficiency and cost tables (and plots) of one or more runs"
    )
    report.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    report.add_argument(
        "--format", choices=["md", "latex", "csv"], default="md", help="table format (default: md)"
    )
    report.add_argument(
        "--out", type=Path, help="write each table and plot (PNG and PDF) into this directory"
    )
    report.add_argument("--no-plots", action="store_true", help="with --out: tables only")
    report.set_defaults(func=_cmd_report)

    compare = sub.add_parser(
        "compare", help="compare two runs cell by cell; exit 1 when a figure regressed"
    )
    compare.add_argument("base", type=Path, metavar="BASE", help="reference run directory")
    compare.add_argument("new", type=Path, metavar="NEW", help="run directory to check")
    compare.add_argument(
        "--factor",
        type=float,
        default=1.1,
        help="timing/memory slack beyond the base spread (default: 1.1)",
    )
    compare.add_argument(
        "--acc-tol",
        type=float,
        default=0.0,
        help="absolute accuracy tolerance, 0.01 = 1 point (default: 0, exact)",
    )
    compare.add_argument(
        "--rel-tol",
        type=float,
        default=0.0,
        help="relative tolerance of other deterministic floats, e.g. losses (default: 0)",
    )
    compare.set_defaults(func=_cmd_compare)

    data = sub.add_parser("data", help="download task data (verified) or show what is present")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("download", help="fetch, verify (SHA-256) and unpack a task's data")
    fetch.add_argument("task", help="text | image | retrieval | listops")
    fetch.add_argument("--url", help="fetch from this URL instead (any urllib scheme, file://)")
    fetch.add_argument("--sha256", help="expected SHA-256 (needed where none is known)")
    fetch.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive")
    stat = data_sub.add_parser("status", help="each task's data: present or not, where, bytes")
    stat.add_argument("--data-dir", type=Path, help="also look here, as bench run --data-dir")
    for sub_parser in (fetch, stat):
        sub_parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    data.set_defaults(func=_cmd_data)
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from bench import catalog, runner
    from bench.records import read_manifest
    from bench.report.tables import summary_table

    catalog.discover()
    if args.resume:
        if args.suite or args.models or args.tasks or args.overrides or args.profile:
            raise ValueError(
                "--resume reruns the stored plan; drop --suite/--models/--tasks/--set/--profile"
            )
        run_dir = args.resume
        plan = runner.plan_from_manifest(read_manifest(run_dir))
        resolved = runner.resolve(plan)
    else:
        if not args.suite:
            raise ValueError("bench run needs --suite (bench list suites), or --resume RUN_DIR")
        suite = catalog.SUITES.get(args.suite)
        plan = runner.RunPlan(
            suite=args.suite,
            scale=args.scale,
            models=_names(args.models) or tuple(catalog.MODELS.names()),
            tasks=_names(args.tasks) or suite.tasks,
            seeds=_seeds(args.seeds),
            overrides=tuple(args.overrides),
            data_dir=str(args.data_dir) if args.data_dir else None,
            cache_dir=str(args.cache_dir),
            device=_check_device(args.device),
            profile=args.profile,
        )
        resolved = runner.resolve(plan)
        run_dir = args.out / (args.run_id or runner.new_run_id(plan))
        runner.start(resolved, run_dir, sys.argv)
    print(f"run directory: {run_dir}", file=sys.stderr)
    progress = None
    if not args.no_progress:
        from bench.progress import tqdm_progress

        progress = tqdm_progress
    records = runner.execute(resolved, run_dir, progress)
    if resolved.suite.kind == "efficiency":
        from bench.measure.efficiency import summary_table as efficiency_summary

        print(efficiency_summary(records))
    else:
        print(summary_table(records))
    print(f"\nrecords: {run_dir / 'records.jsonl'}")
    return 1 if any(r.status in ("error", "oom") for r in records) else 0


def _cmd_list(args: argparse.Namespace) -> int:
    from bench import catalog

    catalog.discover()
    registries = {"models": catalog.MODELS, "suites": catalog.SUITES, "tasks": catalog.TASKS}
    for what in [args.what] if args.what else list(registries):
        print(f"{what}:")
        entries = list(registries[what].entries())
        width = max((len(e.name) for e in entries), default=0)
        for entry in entries:
            print(f"  {entry.name:<{width}}  {entry.description}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from bench.report.build import build_report

    report = build_report(args.run_dirs, args.format, args.out, plots=not args.no_plots)
    if args.out is None:
        print(report.text)
    for path in report.files:
        print(path)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from bench.report.compare import Tolerances, compare_runs

    tolerances = Tolerances(factor=args.factor, acc_tol=args.acc_tol, rel_tol=args.rel_tol)
    text, regressed = compare_runs(args.base, args.new, tolerances)
    print(text)
    return 1 if regressed else 0


def _cmd_profile(args: argparse.Namespace) -> int:
    import time

    import torch

    from bench import catalog, runner
    from bench.measure.cell import fixed_batch, preset, profile_model

    catalog.discover()
    catalog.TASKS.get(args.task)  # an unknown task lists the nearest names
    suite, _, task = args.task.partition("/")
    plan = runner.RunPlan(
        suite=suite,
        scale=args.scale,
        models=(args.model,),
        tasks=(task,),
        seeds=(0,),
        overrides=tuple(args.overrides),
        data_dir=str(args.data_dir) if args.data_dir else None,
        cache_dir=str(args.cache_dir),
        device=_check_device(args.device),
        profile=True,
    )
    resolved = runner.resolve(plan)
    data = runner.load_task_data(resolved, task)
    if isinstance(data, Exception):
        print(f"bench: error: {task}: {type(data).__name__}: {data}", file=sys.stderr)
        return 2
    cfg = resolved.configs[task]
    torch.manual_seed(0)
    model = catalog.MODELS.get(args.model)(
        cfg.model, resolved.tasks[task].model_task(cfg.data.max_len)
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out / (args.run_id or f"profile-{args.model}-{task}-{stamp}")
    traces = out / "traces"
    result = profile_model(
        model,
        fixed_batch(data.train, cfg.train.batch_size),
        lr=cfg.train.lr,
        grad_clip=cfg.train.grad_clip,
        device=torch.device(plan.device),
        cfg=preset(args.scale).profile,
        trace_dir=traces / f"{task}-{args.model}",
        trace_worker=args.model,
    )
    print(result.op_table.read_text(encoding="utf-8"))
    print(f"trace: {result.trace}  (chrome://tracing, https://ui.perfetto.dev)")
    print(f"op table: {result.op_table}")
    print(f"tensorboard --logdir {traces}  (torch-tb-profiler)")
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from suites.lra import download

    if args.data_command == "download":
        download.download(
            args.task,
            args.cache_dir,
            url=args.url,
            sha256=args.sha256,
            keep_archive=args.keep_archive,
        )
        return 0
    rows = download.status(args.cache_dir, args.data_dir)
    width = max(len(r.task) for r in rows)
    for r in rows:
        size = f"{r.size_bytes} bytes" if r.size_bytes is not None else "-"
        state = "present" if r.present else "absent"
        print(f"{r.task:<{width}}  {state:<7}  {size:>16}  {r.where}")
    return 0


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip()) if text else ()


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in _names(text))
    except ValueError:
        raise ValueError(
            f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2"
        ) from None


def _check_device(device: str) -> str:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here; use --device cpu")
    try:
        torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a torch device; use cpu or cuda") from None
    return device


if __name__ == "__main__":
    raise SystemExit(main())

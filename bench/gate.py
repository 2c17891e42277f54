"""`bench gate`: the light CI gate. Runs the suite of a reference run (the committed smoke
reference by default: its suite, scale, `--set` overrides and thread count) into a new run
directory, compares it with the reference at CI's tolerances (`CI_TOLERANCES`, the same as
`.ci/run`'s), prints the comparison and, with `--summary PATH`, appends it as Markdown to PATH
(a CI job passes `$GITHUB_STEP_SUMMARY`). Exit 1 when a figure regressed or a cell failed, 2 on
bad input. `.ci/run` is the full gate: a fresh venv, every test, then the same comparison.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path

DEFAULT_REFERENCE = Path("results") / "reference" / "smoke"


def add_parser(
    sub: argparse._SubParsersAction, default_out: Path, bench_main: Callable[[list[str]], int]
) -> None:
    """The `gate` subcommand; `bench_main` runs `bench run` (the CLI's main, passed in: the CLI
    imports this module)."""
    gate = sub.add_parser(
        "gate",
        help="CI's light gate: run the reference's suite and compare with the reference at CI's "
        "tolerances; exit 1 on a regression",
    )
    gate.add_argument(
        "--reference",
        type=Path,
        default=DEFAULT_REFERENCE,
        help=f"reference run directory (default: {DEFAULT_REFERENCE})",
    )
    gate.add_argument("--out", type=Path, default=default_out, help=f"default: {default_out}")
    gate.add_argument("--run-id", help="name of the new run directory (default: gate-<time>)")
    gate.add_argument(
        "--summary",
        type=Path,
        metavar="PATH",
        help="append the comparison as Markdown to PATH (CI: $GITHUB_STEP_SUMMARY)",
    )
    gate.add_argument("--models", help="only these models (a subset is compared cell by cell)")
    gate.add_argument("--tasks", help="only these tasks")
    gate.add_argument("--cache-dir", type=Path, help="cache of generated data (bench run's)")
    gate.set_defaults(func=functools.partial(gate_command, bench_main=bench_main))


def ci_tolerances():
    """CI's tolerances (`.ci/run` passes the same; a test keeps them equal)."""
    from bench.report.compare import Tolerances

    return Tolerances(factor=4.0, acc_tol=0.02, rel_tol=1e-2, ratio_factor=3.0)


def gate_command(args: argparse.Namespace, bench_main: Callable[[list[str]], int]) -> int:
    from bench.manifest import read_manifest
    from bench.report.compare_view import render
    from bench.report.comparison import compare_dirs

    plan = read_manifest(args.reference).plan
    run_id = args.run_id or f"gate-{dt.datetime.now(dt.UTC).strftime('%Y%m%d-%H%M%S')}"
    argv = ["run", "--suite", plan.suite, "--scale", plan.scale, "--out", str(args.out)]
    argv += ["--run-id", run_id, "--no-progress", "--seeds", ",".join(map(str, plan.seeds))]
    argv += ["--models", args.models or ",".join(plan.models)]
    argv += ["--tasks", args.tasks or ",".join(plan.tasks)]
    argv += [f"--set={o}" for o in plan.overrides]
    if plan.threads is not None:
        argv += ["--threads", str(plan.threads)]
    if args.cache_dir is not None:
        argv += ["--cache-dir", str(args.cache_dir)]
    run_code = bench_main(argv)
    if run_code == 2:
        return 2
    comparison = compare_dirs(
        args.reference,
        args.out / run_id,
        ci_tolerances(),
        models=_names(args.models),
        tasks=_names(args.tasks),
        require_all=not (args.models or args.tasks),
    )
    print(render(comparison, "text"))
    if args.summary is not None:
        with open(args.summary, "a", encoding="utf-8") as out:
            out.write(render(comparison, "md") + "\n")
    if run_code:
        print(f"bench gate: a cell of the new run ended in error or oom (exit {run_code})")
    return 1 if comparison.regressed or run_code else 0


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip()) if text else ()

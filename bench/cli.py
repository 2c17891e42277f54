"""`bench run | list | report | compare | gate | profile | check-model | data`: the command
line. Thin: parses, then calls the harness modules, which it imports lazily so `bench --help`
stays fast.

Exit codes: 0 when every cell is ok or skipped; 1 when a cell ended in error or oom, or a
trained cell's measurements failed (unless --allow-measurement-errors); 2 for bad input (unknown
name, malformed --set, missing run directory: `models.errors.InputError`, one line that names
the fix). `bench compare` and `bench gate` exit 1 when a figure regressed; `bench check-model`
exits with pytest's code (0 when every contract test passed). Any other exception is a bug: its
traceback is printed with a line saying so, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench import commands, gate, history_commands, info_commands, profile_command
from bench.cache_dir import HOME_CACHE
from models.errors import InputError

CACHE_HELP = f"cache of generated data and downloads (default: $BENCH_CACHE_DIR or {HOME_CACHE})"
DEFAULT_OUT = commands.DEFAULT_OUT
KERNEL_MODES = ("autotune", "rule")  # bench.kernel_tuning.MODES, without importing torch here
KERNELS_HELP = (
    "grouped-GEMM paths: autotune (default; timed per shape class on this machine, cached in "
    "the cache directory) or rule (the fixed dispatcher rule)"
)
DEFAULT_PROFILE_OUT = Path("results") / "profiles"  # not runs/: a profile has no records


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("BENCH_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except InputError as exc:  # bad input: what was wrong and how to fix it, no traceback
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except Exception:  # a bug, not the user's mistake: the traceback says where
        traceback.print_exc()
        print(
            f"bench: internal error: the traceback above is a bug in uoe-bench (or in a model), "
            f"not a problem with your input; please report it with the command: "
            f"bench {' '.join(argv if argv is not None else sys.argv[1:])}",
            file=sys.stderr,
        )
        return 1


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
        "--sweep",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="run every cell at each value of a --set key: model.experts=2,4,8 (repeatable; "
        "several give the cross product)",
    )
    run.add_argument(
        "--out",
        type=Path,
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
        action="append",
        metavar="[TASK=]DIR",
        help="directory with official files: DIR for every task, or TASK=DIR for one "
        "(repeatable: --data-dir listops=~/lra/listops-1000 --data-dir text=~/aclImdb); "
        "with --resume, replaces the stored one",
    )
    run.add_argument(
        "--threads",
        type=int,
        help="torch intra-op CPU threads, recorded in the manifest (default: 1, steady "
        "timings on a shared machine; an idle machine may use its core count)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the cells, each task's resolved config, the data it needs and the numerics "
        "settings; run nothing (--device cuda is accepted without a GPU)",
    )
    run.add_argument("--cache-dir", type=Path, help=CACHE_HELP)
    run.add_argument("--device", help="torch device: cpu or cuda (default: cpu)")
    run.add_argument("--no-progress", action="store_true", help="draw no progress bars")
    run.add_argument(
        "--allow-measurement-errors",
        action="store_true",
        help="exit 0 even when a trained cell's measurements (FLOPs, latency, memory) failed",
    )
    run.add_argument(
        "--profile",
        action="store_true",
        help="also write a profiler trace of a few training steps per ok cell "
        "(<run dir>/traces, a TensorBoard logdir; Chrome/Perfetto JSON)",
    )
    run.add_argument("--kernels", choices=KERNEL_MODES, help=KERNELS_HELP)
    _launcher_arguments(run)
    run.set_defaults(func=commands.run)

    prof = sub.add_parser(
        "profile",
        help="profiler trace of a few training steps of one model (or several, side by side) on "
        "one task, with each layer phase's share of the step, forward and backward",
    )
    prof.add_argument("model", help="model name, or names comma-separated (bench list models)")
    prof.add_argument("task", help="suite/task, e.g. lra/listops (bench list tasks)")
    prof.add_argument("--scale", help="tiny | small | paper (default: tiny)")
    prof.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    prof.add_argument(
        "--out", type=Path, default=DEFAULT_PROFILE_OUT, help=f"default: {DEFAULT_PROFILE_OUT}"
    )
    prof.add_argument("--run-id", help="name of the output directory (default: profile-...)")
    prof.add_argument("--data-dir", type=Path, help="directory with a task's official files")
    prof.add_argument("--cache-dir", type=Path, help=CACHE_HELP)
    prof.add_argument("--device", help="torch device: cpu or cuda (default: cpu)")
    prof.add_argument("--kernels", choices=KERNEL_MODES, help=KERNELS_HELP)
    prof.add_argument(
        "--threads",
        type=int,
        help="torch intra-op CPU threads (default: 1, as bench run; with --from-run, the run's)",
    )
    prof.add_argument(
        "--steps", type=int, help="recorded steps (default: the config's measure.profile_active)"
    )
    prof.add_argument(
        "--from-run",
        type=Path,
        metavar="RUN_DIR",
        help="profile a cell of this run as it was configured (scale, --set, data, device, "
        "threads, kernels from its manifest)",
    )
    prof.add_argument(
        "--trained",
        action="store_true",
        help="train the model first (the cell's training config, seed 0), then profile it",
    )
    prof.set_defaults(func=profile_command.profile)

    check = sub.add_parser(
        "check-model",
        help="run every registry contract test for one model (pytest -m model_contract --model)",
    )
    check.add_argument("model", help="model name (bench list models)")
    check.set_defaults(func=info_commands.check_model)

    lst = sub.add_parser(
        "list", help="list registered models, suites or tasks, or the figures records carry"
    )
    lst.add_argument(
        "what",
        nargs="?",
        choices=["models", "suites", "tasks", "metrics"],
        help="which registry, or metrics: the catalog of figures (default: models, suites, tasks)",
    )
    lst.add_argument(
        "--markdown",
        action="store_true",
        help="with metrics: the catalog as the Markdown table of results/README.md",
    )
    lst.set_defaults(func=info_commands.list_registries)

    report = sub.add_parser(
        "report", help="accuracy, efficiency and cost tables (and plots) of one or more runs"
    )
    report.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    report.add_argument(
        "--format",
        choices=["md", "latex", "csv"],
        default="md",
        help="md or latex tables, or csv: the data, one row per cell (default: md)",
    )
    report.add_argument(
        "--out", type=Path, help="write each table and plot (PNG and PDF) into this directory"
    )
    report.add_argument("--no-plots", action="store_true", help="with --out: tables only")
    report.add_argument(
        "--published",
        action="append",
        default=[],
        metavar="SOURCE",
        help="add tables of published figures beside ours: lra-jax, lra-pytorch (= "
        "nystromformer and skyformer), nystromformer, skyformer, lra-efficiency, uoe-paper, "
        "uoe-efficiency, transformer-xl (repeatable)",
    )
    report.add_argument(
        "--vs",
        metavar="MODEL",
        help="add a paired table: each model against MODEL, per task and on average "
        "(difference with its 95 %% interval, p raw and Holm-corrected, P(A>B))",
    )
    report.set_defaults(func=info_commands.report)

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
    compare.add_argument(
        "--ratio-factor",
        type=float,
        default=1.5,
        help="slack of each timing's ratio to the --timing-reference model of its own run, "
        "gated on a busy machine too (default: 1.5)",
    )
    compare.add_argument(
        "--timing-reference",
        metavar="MODEL",
        help="the model timings are divided by (default: full_attention when both runs have it)",
    )
    compare.add_argument("--models", help="compare only these models (comma-separated)")
    compare.add_argument("--tasks", help="compare only these tasks (comma-separated)")
    compare.add_argument(
        "--require-all",
        action="store_true",
        help="fail every ok BASE cell that NEW lacks (default: compare the cells both runs have)",
    )
    compare.add_argument(
        "--format",
        choices=["text", "md", "json", "junit"],
        default="text",
        help="text, md (e.g. for $GITHUB_STEP_SUMMARY), json, or junit XML (default: text)",
    )
    compare.add_argument(
        "--verbose", action="store_true", help="also the full table of every figure"
    )
    compare.set_defaults(func=info_commands.compare)
    gate.add_parser(sub, DEFAULT_OUT, main)

    data = sub.add_parser("data", help="download task data (verified) or show what is present")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("download", help="fetch, verify (SHA-256) and unpack a task's data")
    fetch.add_argument("task", help="text | image | retrieval | listops | wikitext103 | enwik8")
    fetch.add_argument("--url", help="fetch from this URL instead (any urllib scheme, file://)")
    fetch.add_argument("--sha256", help="expected SHA-256 (needed where none is known)")
    fetch.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive")
    stat = data_sub.add_parser("status", help="each task's data: present or not, where, bytes")
    stat.add_argument("--data-dir", type=Path, help="also look here, as bench run --data-dir")
    for sub_parser in (fetch, stat):
        sub_parser.add_argument("--cache-dir", type=Path, help=CACHE_HELP)
    data.set_defaults(func=info_commands.data)
    history_commands.add_parser(sub)
    return parser


def _launcher_arguments(run: argparse.ArgumentParser) -> None:
    group = run.add_argument_group("launcher (README: Running on a cluster)")
    group.add_argument(
        "--launcher",
        choices=["in_process", "ray"],
        default="in_process",
        help="in_process (default): cells here (--workers); ray: cells as Ray tasks",
    )
    group.add_argument(
        "--workers",
        type=int,
        help="in_process: cells trained side by side, each in its own process with --threads "
        "threads, then timed one at a time (default: cores / --threads on cpu, else 1; "
        "1 = one cell after another)",
    )
    group.add_argument(
        "--ray-address",
        help="join this Ray cluster (ray start --head prints it); default: a local instance "
        "with this machine's CPUs and GPUs",
    )
    group.add_argument(
        "--cpus-per-cell",
        type=float,
        help="CPUs each cell reserves (default: a whole node on --device cpu, 1 on cuda)",
    )
    group.add_argument(
        "--gpus-per-cell", type=float, help="GPUs each cell reserves (default: 1 on cuda, else 0)"
    )
    group.add_argument(
        "--max-retries",
        type=int,
        help="reruns of a cell whose worker process died, before its error record (default: 2)",
    )
    group.add_argument(
        "--share-device",
        action="store_true",
        help="let cells share a CPU node or GPU; their records are flagged device_shared and "
        "`bench compare` does not gate their timings",
    )


if __name__ == "__main__":
    raise SystemExit(main())

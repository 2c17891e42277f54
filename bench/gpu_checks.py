"""The checks to run when a CUDA machine is at hand, in one command, in under 10 minutes:

    python -m bench.gpu_checks --out DIR      (or with $OUT set: python -m bench.gpu_checks)
    python -m bench.gpu_checks --dry-run      (print the steps; runs anywhere)

Steps, each a subprocess with its own time limit (and all of them within `--budget-s`), its
output in DIR/<step>.log:

    tests          the GPU-marked tests (pytest -m gpu: Triton kernels, CUDA runs, numerics)
    kernels_bf16   the grouped-GEMM table on CUDA in bf16: `auto`, `torch._grouped_mm` (CUTLASS
                   on sm90+), Triton and the per-expert mm against cuBLAS dense (goal grid)
    kernels_fp32   the same in fp32 (`torch._grouped_mm` falls back to a host-synced loop)
    listops        a paper-scale ListOps cell (d 64, 2 layers, length 2048, batch 32) for
                   `full_attention` and `uoe_paper`; training shortened to --listops-steps and
                   the training split to --listops-train examples so it fits (both recorded)

DIR/summary.json and DIR/summary.md list each step's command, exit status, seconds and files.
Exit status: 0 when every step passed, 1 when one failed or ran out of time, 3 when there is no
CUDA device (nothing is run: the checks mean nothing on a CPU), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STEPS = ("tests", "kernels_bf16", "kernels_fp32", "listops")
NO_CUDA = 3
BUDGET_S = 570  # under 10 minutes with the start-up around it


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...]
    timeout_s: int
    files: tuple[str, ...] = ()  # what it writes, relative to the output folder


@dataclass(frozen=True)
class Outcome:
    name: str
    command: str
    status: str  # passed | failed | timeout | skipped (no time left)
    returncode: int | None
    seconds: float
    files: tuple[str, ...] = field(default_factory=tuple)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gpu_checks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, help="folder for the figures and logs (default: $OUT)")
    parser.add_argument("--dry-run", action="store_true", help="print the steps, run nothing")
    parser.add_argument(
        "--only", help=f"comma-separated steps to run (default: all of {', '.join(STEPS)})"
    )
    parser.add_argument(
        "--budget-s", type=int, default=BUDGET_S, help=f"all steps together (default {BUDGET_S})"
    )
    parser.add_argument(
        "--listops-steps", type=int, default=1500, help="training steps (paper: 15000)"
    )
    parser.add_argument(
        "--listops-train", type=int, default=20_000, help="training examples (paper: 96000)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="kernel table rounds")
    args = parser.parse_args(argv)
    if args.out is None:
        if not os.environ.get("OUT"):
            parser.error("give --out DIR (or set $OUT)")
        args.out = Path(os.environ["OUT"])
    only = tuple(s.strip() for s in (args.only or ",".join(STEPS)).split(",") if s.strip())
    unknown = [s for s in only if s not in STEPS]
    if unknown or not only:
        parser.error(f"--only {args.only!r}: steps are {', '.join(STEPS)}")
    args.only = only
    for flag in ("budget_s", "listops_steps", "listops_train", "rounds"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    return args


def plan_steps(args: argparse.Namespace, python: str = sys.executable) -> list[Step]:
    """The steps `args` asks for, in order, with their commands and time limits."""
    out = Path(args.out)
    cache = str(out / "cache")
    table = [python, "-m", "tests.benchmarks.grouped_mm_table", "--grid", "goal"]
    table += ["--device", "cuda", "--rounds", str(args.rounds), "--cache-dir", cache]
    table += ["--paths", "auto,torch,triton,mm"]
    listops = [python, "-m", "bench.cli", "run", "--suite", "lra", "--tasks", "listops"]
    listops += ["--models", "full_attention,uoe_paper", "--scale", "paper", "--device", "cuda"]
    listops += ["--out", str(out / "runs"), "--run-id", "listops-paper", "--cache-dir", cache]
    listops += ["--set", f"train.steps={args.listops_steps}", "--no-progress"]
    listops += ["--set", f"data.n_train={args.listops_train}"]
    listops += ["--set", f"train.eval_every={max(1, args.listops_steps // 3)}"]
    listops += ["--set", f"train.warmup_steps={max(1, args.listops_steps // 15)}"]
    every = {
        "tests": Step(
            "tests",
            (python, "-m", "pytest", "-q", "-m", "gpu", "tests", "-p", "no:cacheprovider"),
            150,
        ),
        "kernels_bf16": Step(
            "kernels_bf16",
            (*table, "--dtype", "bfloat16", "--out", str(out / "kernels_bf16.md")),
            100,
            ("kernels_bf16.md",),
        ),
        "kernels_fp32": Step(
            "kernels_fp32",
            (*table, "--dtype", "float32", "--out", str(out / "kernels_fp32.md")),
            100,
            ("kernels_fp32.md",),
        ),
        "listops": Step("listops", tuple(listops), 220, ("runs/listops-paper/records.jsonl",)),
    }
    return [every[name] for name in STEPS if name in args.only]


Runner = Callable[..., subprocess.CompletedProcess]
ROOT = Path(__file__).resolve().parent.parent  # the checkout: tests/ and the packages


def _pythonpath() -> str:
    """The checkout first, so the steps import this tree's packages without an install."""
    rest = os.environ.get("PYTHONPATH")
    return f"{ROOT}{os.pathsep}{rest}" if rest else str(ROOT)


def run_steps(
    steps: list[Step],
    out: Path,
    budget_s: float,
    runner: Runner = subprocess.run,
    clock: Callable[[], float] = time.monotonic,
) -> list[Outcome]:
    """Run each step with its output in out/<name>.log, within its own limit and what is left
    of the budget; a step with under 10 s left is skipped (recorded)."""
    deadline = clock() + budget_s
    outcomes = []
    for step in steps:
        command = shlex.join(step.argv)
        left = deadline - clock()
        if left < 10:
            outcomes.append(Outcome(step.name, command, "skipped", None, 0.0))
            continue
        start = clock()
        log = out / f"{step.name}.log"
        with open(log, "wb") as sink:
            try:
                done = runner(
                    list(step.argv),
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    timeout=min(step.timeout_s, left),
                    check=False,
                    cwd=ROOT,
                    env={**os.environ, "PYTHONPATH": _pythonpath()},
                )
                status = "passed" if done.returncode == 0 else "failed"
                code: int | None = done.returncode
            except subprocess.TimeoutExpired:
                status, code = "timeout", None
        files = tuple(f for f in (*step.files, log.name) if (out / f).exists())
        outcomes.append(Outcome(step.name, command, status, code, clock() - start, files))
        print(f"gpu_checks: {step.name}: {status} ({clock() - start:.0f} s)", flush=True)
    return outcomes


def summary(outcomes: list[Outcome], facts: dict[str, Any]) -> tuple[str, str]:
    """(summary.json text, summary.md text)."""
    body = {**facts, "steps": [o.__dict__ for o in outcomes]}
    lines = [f"# GPU checks: {facts.get('gpu')} ({facts.get('torch')})", ""]
    lines += ["| step | status | seconds | files |", "|---|---|---|---|"]
    for o in outcomes:
        lines.append(f"| {o.name} | {o.status} | {o.seconds:.0f} | {', '.join(o.files)} |")
    lines += ["", *[f"- {o.name}: `{o.command}`" for o in outcomes]]
    return json.dumps(body, indent=2, default=list) + "\n", "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None, runner: Runner = subprocess.run) -> int:
    args = parse_args(argv)
    steps = plan_steps(args)
    if args.dry_run:
        for step in steps:
            print(f"{step.name} (<= {step.timeout_s} s): {shlex.join(step.argv)}")
        return 0
    import torch

    if not torch.cuda.is_available():
        print(
            "gpu_checks: no CUDA device here (torch.cuda.is_available() is False, torch "
            f"{torch.__version__}); these checks run only on a CUDA machine. Nothing was run. "
            "--dry-run prints the steps.",
            file=sys.stderr,
        )
        return NO_CUDA
    args.out.mkdir(parents=True, exist_ok=True)
    outcomes = run_steps(steps, args.out, args.budget_s, runner)
    facts = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "budget_s": args.budget_s,
        "listops_steps": args.listops_steps,
        "listops_train": args.listops_train,
    }
    json_text, md_text = summary(outcomes, facts)
    (args.out / "summary.json").write_text(json_text)
    (args.out / "summary.md").write_text(md_text)
    print(md_text)
    return 0 if all(o.status == "passed" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

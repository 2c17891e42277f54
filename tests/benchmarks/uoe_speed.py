"""Train steps per second of routed models against full attention at the LRA efficiency lengths,
measured interleaved in one process (the ratio the `lra_efficiency` suite reports, but with
every model timed in every round instead of one cell after the other).

For each length of the `lra_efficiency` scale (its tasks 1k-4k, its batch and model), every
model is built from the suite's own config and data (random bytes), then each round times one
train step of each model in turn (zero grad, loss, backward, clip, AdamW: what `bench.train`
does), after two warm-up steps each. A ratio is taken per round (full attention's seconds /
the model's seconds: above 1 the model is faster) and reported as the median over rounds with
its spread (25th-75th percentile).

    python -m tests.benchmarks.uoe_speed --scale small --rounds 5
    python -m tests.benchmarks.uoe_speed --scale small --models uoe,uoe_paper --out FILE.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from tabulate import tabulate

from bench import registries, runner
from bench.measure.cell import TimedModel, fixed_batch
from models.registry import build_model

REFERENCE = "full_attention"


def _timed_models(scale: str, models: list[str], threads: int) -> dict[str, dict[str, TimedModel]]:
    """task -> model -> a TimedModel on the task's batch, built as `bench run` builds a cell."""
    plan = runner.RunPlan(
        suite="lra_efficiency",
        scale=scale,
        models=tuple([REFERENCE, *models]),
        tasks=("1k", "2k", "3k", "4k"),
        seeds=(0,),
        threads=threads,
    )
    resolved = runner.resolve(plan)
    out: dict[str, dict[str, TimedModel]] = {}
    for task in plan.tasks:
        cfg = resolved.configs[task]
        data = runner.load_task_data(resolved, task)
        if isinstance(data, Exception):
            raise data
        batch = fixed_batch(data.train, cfg.train.batch_size)
        spec = resolved.tasks[task].model_task(cfg.data.max_len)
        out[task] = {}
        for name in plan.models:
            torch.manual_seed(0)
            model = build_model(name, cfg.model, spec, resolved.own(task))
            out[task][name] = TimedModel(model, batch, train=cfg.train, device="cpu")
    return out


def _step_seconds(bench: TimedModel) -> float:
    start = time.perf_counter()
    bench.train_step()
    return time.perf_counter() - start


def measure(scale: str, models: list[str], rounds: int, threads: int) -> list[list[str]]:
    """Rows of (length, model, ms per step of the model and of full attention, ratio)."""
    rows = []
    for task, benches in _timed_models(scale, models, threads).items():
        length = benches[REFERENCE].inputs[0].shape[1]
        for bench in benches.values():
            for _ in range(2):
                bench.train_step()
        seconds: dict[str, list[float]] = {name: [] for name in benches}
        for _ in range(rounds):
            for name, bench in benches.items():
                seconds[name].append(_step_seconds(bench))
        ref = seconds[REFERENCE]
        for name in models:
            ratios = sorted(r / m for r, m in zip(ref, seconds[name], strict=True))
            q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
            rows.append(
                [
                    f"{task} (L {length})",
                    name,
                    f"{1e3 * statistics.median(seconds[name]):.0f}",
                    f"{1e3 * statistics.median(ref):.0f}",
                    f"{statistics.median(ratios):.2f} ({q1:.2f}-{q3:.2f})",
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", help="lra_efficiency scale: tiny | small")
    parser.add_argument("--models", default="uoe", help="comma-separated, against full_attention")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = parser.parse_args()
    registries.discover()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    rows = measure(args.scale, args.models.split(","), args.rounds, args.threads)
    header = ["length", "model", "ms/step", f"{REFERENCE} ms/step", "speed vs full (median, IQR)"]
    table = tabulate(rows, header, tablefmt="github")
    about = (
        f"lra_efficiency --scale {args.scale}, train step (fwd+bwd+AdamW), {args.rounds} rounds "
        f"interleaved, {args.threads} threads, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, load {load:.2f} -> {os.getloadavg()[0]:.2f}"
    )
    print(about)
    print(table)
    if args.out:
        args.out.write_text(f"{about}\n\n{table}\n", encoding="utf-8")


if __name__ == "__main__":
    main()

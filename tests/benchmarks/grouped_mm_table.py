"""Grouped-GEMM throughput on MoE-FFN shapes: every path against a dense matmul of the same FLOPs
and against the plain `torch._grouped_mm` path, measured interleaved in one process.

A case is the expert GEMMs of one MoE FFN: rows sorted by expert (A = tokens * k), an up
projection (A, d) x (E, d, hidden) and a down projection (A, hidden) x (E, hidden, d), forward
or forward + backward (input and both weight gradients). Its "dense" twin does the same FLOPs
as two plain matmuls (A, d) x (d, hidden) x (hidden, d), the practical limit of the machine.
"torch" is `torch._grouped_mm` forward and backward (the op Hugging Face's `grouped_mm` experts
call); "auto" is what the dispatcher picks for the case (`choose(weight, rows=A)`) under the
policy a run uses: `--kernels autotune` (default: the machine's autotune table in the cache
directory, tuned on first use, `bench.kernel_tuning`) or `--kernels rule`. Routing is the top-k
of uniform random logits (each token k distinct experts, loads uneven as in training).

After the per-path rows, a summary gives each shape's best grouped path beside `auto`'s choice
and auto's speed relative to the best (per round, median): the goal is >= 0.95 on every shape.
On CUDA (`--device cuda`, fp32 or bf16) "dense" is cuBLAS and `triton` joins the paths.

Every round times each path once, in turn (so a load change hits all paths alike), after one
warm-up call each. A ratio is taken per round (dense seconds / path seconds of the same round)
and reported as the median over rounds with its spread (the 25th-75th percentile range).

    python -m tests.benchmarks.grouped_mm_table --grid goal     # issue 17's shapes (minutes)
    python -m tests.benchmarks.grouped_mm_table --grid ci --rounds 3   # seconds
    python -m tests.benchmarks.grouped_mm_table --grid goal --out results/benchmarks/table.md
    python -m tests.benchmarks.grouped_mm_table --grid goal --device cuda --dtype bfloat16 \
        --paths auto,torch,triton,mm
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tabulate import tabulate

from models.kernels import Dispatch, grouped_mm
from models.kernels.dispatch import choose


@dataclass(frozen=True)
class Case:
    tokens: int
    experts: int
    top_k: int
    backward: bool
    dim: int = 512
    hidden: int = 2048
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    @property
    def rows(self) -> int:
        return self.tokens * self.top_k

    @property
    def flops(self) -> float:
        """Active FLOPs: 2 per multiply-add, two GEMMs; the backward doubles them twice over."""
        forward = 2.0 * 2 * self.rows * self.dim * self.hidden
        return forward * (3 if self.backward else 1)

    @property
    def label(self) -> str:
        mode = "fwd+bwd" if self.backward else "fwd"
        return f"T{self.tokens} d{self.dim} h{self.hidden} E{self.experts} k{self.top_k} {mode}"


@dataclass(frozen=True)
class Operands:
    x: torch.Tensor  # (A, d) sorted by expert
    up: torch.Tensor  # (E, d, hidden)
    down: torch.Tensor  # (E, hidden, d)
    offsets: torch.Tensor  # (E,) int32
    grad: torch.Tensor  # (A, d), the incoming gradient for the backward


def operands(case: Case, seed: int = 0) -> Operands:
    gen = torch.Generator().manual_seed(seed)
    choice = torch.rand(case.tokens, case.experts, generator=gen).topk(case.top_k).indices
    dispatch = Dispatch.top_k(choice, case.experts)
    scale = case.dim**-0.5

    def rand(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale).to(case.device, case.dtype)

    return Operands(
        x=rand(case.rows, case.dim),
        up=rand(case.experts, case.dim, case.hidden),
        down=rand(case.experts, case.hidden, case.dim),
        offsets=dispatch.offsets.to(case.device),
        grad=rand(case.rows, case.dim),
    )


def grouped_step(ops: Operands, impl: str | None, backward: bool) -> Callable[[], None]:
    leaves = [t.detach().requires_grad_(backward) for t in (ops.x, ops.up, ops.down)]

    def step() -> None:
        x, up, down = leaves
        y = grouped_mm(grouped_mm(x, up, ops.offsets, impl=impl), down, ops.offsets, impl=impl)
        if backward:
            torch.autograd.grad(y, leaves, ops.grad)

    return step


def dense_step(ops: Operands, backward: bool) -> Callable[[], None]:
    leaves = [t.detach().requires_grad_(backward) for t in (ops.x, ops.up[0], ops.down[0])]

    def step() -> None:
        x, up, down = leaves
        y = (x @ up) @ down  # (A, d)
        if backward:
            torch.autograd.grad(y, leaves, ops.grad)

    return step


def auto_path(case: Case, ops: Operands) -> str:
    return choose(ops.up, rows=case.rows)


def steps(case: Case, paths: tuple[str, ...]) -> dict[str, Callable[[], None]]:
    """{"dense": ..., path: ...}; "auto" runs the dispatcher's choice for the case."""
    ops = operands(case)
    out = {"dense": dense_step(ops, case.backward)}
    for path in paths:
        impl = auto_path(case, ops) if path == "auto" else path
        out[path] = grouped_step(ops, impl, case.backward)
    return out


def interleaved_seconds(
    timed: dict[str, Callable[[], None]], rounds: int
) -> dict[str, list[float]]:
    """Seconds of each step in each round; every round calls every step once, in turn."""
    for step in timed.values():
        step()  # warm-up
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    samples: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(rounds):
        for name, step in timed.items():
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if cuda:
                torch.cuda.synchronize()
            samples[name].append(time.perf_counter() - start)
    return samples


def median_and_spread(values: list[float]) -> tuple[float, float, float]:
    """(median, 25th percentile, 75th percentile); a single value is its own spread."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    low, _mid, high = statistics.quantiles(values, n=4, method="inclusive")
    return statistics.median(values), low, high


def measure(
    case: Case, paths: tuple[str, ...], rounds: int
) -> tuple[list[dict[str, object]], dict[str, object]]:
    """One row per path (dense first): median ms, GFLOP/s, per-round ratios to dense and to
    the `torch` path (median [p25, p75]); and the summary row (`best_and_auto`)."""
    samples = interleaved_seconds(steps(case, paths), rounds)
    ops = operands(case)
    rows = []
    for name, seconds in samples.items():
        to_dense = [d / s for d, s in zip(samples["dense"], seconds, strict=True)]
        ms, ms_low, ms_high = median_and_spread([s * 1e3 for s in seconds])
        dense_ratio, dense_low, dense_high = median_and_spread(to_dense)
        row = {
            "shape": case.label,
            "path": f"auto={auto_path(case, ops)}" if name == "auto" else name,
            "ms": f"{ms:.2f} [{ms_low:.2f}, {ms_high:.2f}]",
            "GFLOP/s": round(case.flops / (ms / 1e3) / 1e9, 1),
            "x dense": f"{dense_ratio:.2f} [{dense_low:.2f}, {dense_high:.2f}]",
        }
        if "torch" in samples:
            to_torch = [t / s for t, s in zip(samples["torch"], seconds, strict=True)]
            ratio, low, high = median_and_spread(to_torch)
            row["x torch._grouped_mm"] = f"{ratio:.2f} [{low:.2f}, {high:.2f}]"
        rows.append(row)
    return rows, best_and_auto(case, samples, auto_path(case, ops))


def best_and_auto(case: Case, samples: dict[str, list[float]], auto: str) -> dict[str, object]:
    """The grouped path with the lowest median seconds beside auto's choice, and auto's speed
    relative to it per round (best seconds / auto seconds: 1.0 when auto picked it)."""
    grouped = {name: s for name, s in samples.items() if name not in ("dense", "auto")}
    row: dict[str, object] = {"shape": case.label, "auto": auto}
    if grouped:
        best = min(grouped, key=lambda name: statistics.median(grouped[name]))
        dense = [d / b for d, b in zip(samples["dense"], grouped[best], strict=True)]
        row |= {"best": best, "best x dense": f"{median_and_spread(dense)[0]:.2f}"}
    if "auto" in samples:
        dense = [d / a for d, a in zip(samples["dense"], samples["auto"], strict=True)]
        row["auto x dense"] = f"{median_and_spread(dense)[0]:.2f}"
        if grouped:
            ratio = [b / a for b, a in zip(grouped[best], samples["auto"], strict=True)]
            mid, low, high = median_and_spread(ratio)
            row["auto / best"] = f"{mid:.2f} [{low:.2f}, {high:.2f}]"
    return row


GRIDS = {
    # Issue 17's CPU goal shapes.
    "goal": dict(tokens=(4096,), dims=((512, 1024), (512, 2048)), experts=(8, 64), ks=(1, 2)),
    # Seconds on 2 cores: the CI benchmark and a check that the script runs.
    "ci": dict(tokens=(512,), dims=((64, 128),), experts=(8, 64), ks=(1, 2)),
    # The harness's own LRA shapes (d 32-64, expert widths 16-128, E 2-4).
    "lra": dict(tokens=(2048,), dims=((32, 16), (64, 32), (64, 128)), experts=(2, 4), ks=(1, 2)),
}


def cases(grid: str, dtype: torch.dtype = torch.float32, device: str = "cpu") -> list[Case]:
    spec = GRIDS[grid]
    return [
        Case(tokens, experts, k, backward, dim=dim, hidden=hidden, dtype=dtype, device=device)
        for tokens in spec["tokens"]
        for dim, hidden in spec["dims"]
        for experts in spec["experts"]
        for k in spec["ks"]
        for backward in (False, True)
    ]


def header(dtype: str = "float32", device: str = "cpu", kernels: str = "") -> str:
    where = platform.processor() or platform.machine()
    if device.startswith("cuda"):
        where = f"{torch.cuda.get_device_name(0)} (host {where})"
    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {dtype}, {where}; "
        f"auto: {kernels}; load average " + " ".join(f"{x:.2f}" for x in _load())
    )


def _load() -> tuple[float, ...]:
    try:
        import os

        return os.getloadavg()
    except OSError:
        return ()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=sorted(GRIDS), default="goal")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (>= 5)")
    parser.add_argument(
        "--paths", default="auto,torch,mm,mm_concurrent,bmm", help="comma-separated impls"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument(
        "--kernels", choices=("autotune", "rule"), default="autotune", help="auto's policy"
    )
    parser.add_argument("--cache-dir", type=Path, help="autotune table's cache directory")
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    return args


def main(argv: list[str] | None = None) -> None:
    from bench.cache_dir import resolve_cache_dir
    from bench.kernel_tuning import tuned_kernels

    args = parse_args(argv)
    paths = tuple(args.paths.split(","))
    dtype = getattr(torch, args.dtype)
    cache = resolve_cache_dir(args.cache_dir)
    with tuned_kernels(args.kernels, cache, args.device) as tuning:
        policy = tuning.mode if tuning.table is None else f"{tuning.mode} ({tuning.table})"
        print(header(args.dtype, args.device, policy), flush=True)
        table: list[dict[str, object]] = []
        summary: list[dict[str, object]] = []
        for case in cases(args.grid, dtype, args.device):
            rows, best = measure(case, paths, args.rounds)
            table.extend(rows)
            summary.append(best)
            print(tabulate(rows, headers="keys", tablefmt="github"), flush=True)
    text = tabulate(table, headers="keys", tablefmt="github")
    text += "\n\nbest grouped path and auto's choice "
    text += "(auto / best: per round, median [p25, p75])\n\n"
    text += tabulate(summary, headers="keys", tablefmt="github")
    print(f"\n{text}")
    if args.out is not None:
        command = f"python -m tests.benchmarks.grouped_mm_table --grid {args.grid} "
        command += f"--rounds {args.rounds} --paths {args.paths} --device {args.device} "
        command += f"--dtype {args.dtype} --kernels {args.kernels}"
        body = f"{header(args.dtype, args.device, policy)} (after the run)\n\n`{command}`\n\n"
        body += "ms: median [p25, p75] over rounds; ratios: per round, median [p25, p75]\n\n"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(body + text + "\n")


if __name__ == "__main__":
    main()

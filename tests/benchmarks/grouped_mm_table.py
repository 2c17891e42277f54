"""Grouped-GEMM throughput on MoE-FFN shapes, against a dense matmul and the reference loop.

A case is the expert GEMMs of one MoE FFN: rows sorted by expert (A = tokens * k), an up
projection (A, d) x (E, d, hidden) and a down projection (A, hidden) x (E, hidden, d), forward
or forward + backward (input and both weight gradients). Its "dense" twin does the same FLOPs
as two plain matmuls (A, d) x (d, hidden) x (hidden, d), the practical limit of the machine.
Routing is the top-k of uniform random logits (each token k distinct experts, loads uneven as
in training). Times are medians of `repeats` calls after one warm-up, all measured in one run.

    python -m tests.benchmarks.grouped_mm_table            # full table (minutes on 2 cores)
    python -m tests.benchmarks.grouped_mm_table --quick    # tokens 4096 only
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tabulate import tabulate

from models.kernels import Dispatch, grouped_mm


@dataclass(frozen=True)
class Case:
    tokens: int
    experts: int
    top_k: int
    backward: bool
    dim: int = 512
    hidden: int = 2048
    dtype: torch.dtype = torch.float32

    @property
    def flops(self) -> float:
        """Active FLOPs: 2 per multiply-add, two GEMMs; backward doubles them twice over."""
        forward = 2.0 * 2 * self.tokens * self.top_k * self.dim * self.hidden
        return forward * (3 if self.backward else 1)

    @property
    def label(self) -> str:
        mode = "fwd+bwd" if self.backward else "fwd"
        return f"T{self.tokens} E{self.experts} k{self.top_k} {mode}"


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
    rows = case.tokens * case.top_k
    scale = case.dim**-0.5

    def rand(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale).to(case.dtype)

    return Operands(
        x=rand(rows, case.dim),
        up=rand(case.experts, case.dim, case.hidden),
        down=rand(case.experts, case.hidden, case.dim),
        offsets=dispatch.offsets,
        grad=rand(rows, case.dim),
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


def median_seconds(step: Callable[[], None], repeats: int) -> float:
    step()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure(case: Case, paths: tuple[str, ...], repeats: int) -> list[dict[str, object]]:
    """One row per path: seconds, FLOP/s, ratio to dense and speedup over the loop."""
    ops = operands(case)
    seconds = {"dense": median_seconds(dense_step(ops, case.backward), repeats)}
    for path in paths:
        seconds[path] = median_seconds(grouped_step(ops, path, case.backward), repeats)
    rows = []
    for path, s in seconds.items():
        rows.append(
            {
                "shape": case.label,
                "path": path,
                "ms": round(s * 1e3, 1),
                "GFLOP/s": round(case.flops / s / 1e9, 1),
                "ratio_to_dense": round(seconds["dense"] / s, 3),
                "speedup_over_loop": round(seconds["loop"] / s, 2) if "loop" in seconds else None,
            }
        )
    return rows


def cases(quick: bool) -> list[Case]:
    """The benchmark grid. Tokens 16384 runs forward only: its E=64 fwd+bwd loop reference takes
    minutes on the shared 2-core machine (its backward zero-fills E x the weight bytes)."""
    grid = []
    for tokens in (4096,) if quick else (4096, 16384):
        for experts in (8, 64):
            for top_k in (1, 2):
                for backward in (False, True):
                    if tokens > 4096 and backward:
                        continue
                    grid.append(Case(tokens, experts, top_k, backward))
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tokens 4096 only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paths", default="loop,mm,torch,bmm", help="comma-separated impls")
    args = parser.parse_args()
    paths = tuple(args.paths.split(","))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, d 512, hidden 2048")
    print("CPU dispatcher: torch._grouped_mm where it takes the operands, else mm")
    table = []
    for case in cases(args.quick):
        table.extend(measure(case, paths, args.repeats))
        print(tabulate(table[-len(paths) - 1 :], headers="keys", tablefmt="github"), flush=True)
    print()
    print(tabulate(table, headers="keys", tablefmt="github"))


if __name__ == "__main__":
    main()

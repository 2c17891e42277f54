"""pytest-benchmark of the grouped-GEMM paths on MoE-FFN shapes (opt-in: `--run-benchmarks`).

One benchmark per (shape, path): "dense" (the same FLOPs as two plain matmuls, the machine's
limit), "torch" (`torch._grouped_mm`, as Hugging Face's `grouped_mm` experts run it) and "auto"
(the dispatcher's choice for the shape, stored in `extra_info["impl"]`). The "ci" grid takes
seconds; the "goal" grid (issue 17's shapes) is also marked slow. CI compares the ci grid
loosely with the committed reference (`.ci/run`):

    pytest --run-benchmarks tests/benchmarks -k ci \\
        --benchmark-compare=results/benchmarks/grouped_mm_ci.json \\
        --benchmark-compare-fail=min:400%
    # refresh the reference (deliberately, on a quiet machine):
    pytest --run-benchmarks tests/benchmarks -k ci \\
        --benchmark-json=results/benchmarks/grouped_mm_ci.json

The side-by-side ratios (interleaved rounds) are the table script's job: grouped_mm_table.py.
"""

from __future__ import annotations

import pytest
import torch
from grouped_mm_table import Case, auto_path, cases, dense_step, grouped_step, operands

pytestmark = pytest.mark.benchmark_kernels
ROUNDS = 5
PATHS = ("dense", "torch", "auto")


def _params() -> list:
    out = []
    for grid in ("ci", "goal"):
        marks = [pytest.mark.slow] if grid == "goal" else []
        for case in cases(grid):
            for path in PATHS:
                label = f"{grid}-{case.label.replace(' ', '-')}-{path}"
                out.append(pytest.param(case, path, id=label, marks=marks))
    return out


@pytest.mark.parametrize(("case", "path"), _params())
def test_grouped_mm_throughput(benchmark, case: Case, path: str) -> None:
    ops = operands(case)
    impl = {"dense": "dense", "torch": "torch", "auto": auto_path(case, ops)}[path]
    if path == "dense":
        step = dense_step(ops, case.backward)
    else:
        step = grouped_step(ops, impl, case.backward)
    benchmark.group = case.label
    benchmark.extra_info.update(
        {"impl": impl, "active_flops": case.flops, "threads": torch.get_num_threads()}
    )
    benchmark.pedantic(step, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    benchmark.extra_info["flop_per_s"] = case.flops / benchmark.stats.stats.median

"""pytest-benchmark of the dispatcher's grouped-GEMM path on MoE-FFN shapes (opt-in:
`pytest --run-benchmarks tests/benchmarks`). Each case also times, in the same run, a dense
matmul doing the same FLOPs and the reference loop, and stores in `extra_info`: the grouped
path's active FLOP/s, its ratio to the dense matmul, and its speedup over the loop."""

from __future__ import annotations

import pytest
import torch
from grouped_mm_table import Case, cases, dense_step, grouped_step, median_seconds, operands

from models.kernels.dispatch import choose

pytestmark = pytest.mark.benchmark_kernels
REPEATS = 3


@pytest.mark.parametrize("case", cases(quick=False), ids=lambda c: c.label.replace(" ", "-"))
def test_grouped_mm_throughput(benchmark, case: Case) -> None:
    ops = operands(case)
    dense_s = median_seconds(dense_step(ops, case.backward), REPEATS)
    # The loop's fwd+bwd at E 64 takes tens of seconds a call on 2 cores: time it once.
    loop_repeats = 1 if case.backward and case.experts >= 64 else REPEATS
    loop_s = median_seconds(grouped_step(ops, "loop", case.backward), loop_repeats)
    benchmark.pedantic(
        grouped_step(ops, None, case.backward), rounds=REPEATS, warmup_rounds=1, iterations=1
    )
    grouped_s = benchmark.stats.stats.median
    benchmark.extra_info.update(
        {
            "path": choose(ops.up),
            "active_flops": case.flops,
            "flop_per_s": case.flops / grouped_s,
            "ratio_to_dense": dense_s / grouped_s,
            "speedup_over_loop": loop_s / grouped_s,
            "threads": torch.get_num_threads(),
        }
    )
    print(
        f"\n{case.label}: {benchmark.extra_info['path']} {case.flops / grouped_s / 1e9:.1f} "
        f"GFLOP/s, {dense_s / grouped_s:.2f} of dense, {loop_s / grouped_s:.2f}x over loop"
    )

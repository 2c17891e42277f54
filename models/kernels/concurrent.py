"""Grouped GEMM on the CPU with the experts run concurrently, each GEMM single-threaded.

With small experts (tens to a few hundred rows each) every per-expert `mm` of the `mm` and
`torch` paths is its own parallel region, too small to keep two cores busy, and its thread
barrier stalls on a shared machine. Here the experts are cut into one contiguous group per
intra-op thread, balanced by rows; each group runs its products one after another on its own
thread with one BLAS thread, so the threads never meet until the layer's GEMM is done. Every
product is the `mm` path's (same operands, same `out=` slices): the results equal it to BLAS
rounding (one thread or two may block a product differently) and repeat bit for bit at a fixed
thread count, since the grouping depends on the row counts only.

The workers are one process-wide pool of `torch.get_num_threads() - 1` threads (the caller is
the last worker), made on first use. While a call runs, torch's intra-op thread count is 1 and
is restored on return, so other torch work must not run in other threads meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch
from torch.utils._python_dispatch import is_in_torch_dispatch_mode

from models.kernels.cpu import check_shapes, spans

Span = tuple[int, int]
_pool_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    with _pool_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="grouped-mm")
        return _pools[workers]


def expert_groups(ranges: list[Span], groups: int) -> list[list[int]]:
    """Contiguous runs of the experts with rows, `groups` of them at most, cut where the
    cumulative row count crosses each multiple of total / groups."""
    busy = [e for e, (start, end) in enumerate(ranges) if end > start]
    total = sum(ranges[e][1] - ranges[e][0] for e in busy)
    out: list[list[int]] = [[] for _ in range(groups)]
    done = 0
    for expert in busy:
        start, end = ranges[expert]
        group = min(groups - 1, done * groups // max(total, 1))
        out[group].append(expert)
        done += end - start
    return [g for g in out if g]


def _single_threaded(job: Callable[[], None]) -> None:
    torch.set_num_threads(1)  # this worker thread's OpenMP/BLAS team: one thread
    with torch.no_grad():  # grad mode is per thread; the products are inside a Function
        job()


def run_concurrently(jobs: list[Callable[[], None]]) -> None:
    """Run the jobs at once, one per thread (the caller runs the first), each single-threaded.

    Under a dispatch mode (FlopCounterMode, fake tensors) they run one after another on the
    calling thread instead: modes are per thread, and one that counts or traces must see every
    product (the same products, so the same results)."""
    if len(jobs) <= 1 or is_in_torch_dispatch_mode():
        for job in jobs:
            job()
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        futures = [_pool(len(jobs) - 1).submit(_single_threaded, job) for job in jobs[1:]]
        jobs[0]()
        for future in futures:
            future.result()  # re-raises a worker's exception here
    finally:
        torch.set_num_threads(threads)


def _each_group(groups: list[list[int]], product: Callable[[int], None]) -> None:
    def job(group: list[int]) -> Callable[[], None]:
        return lambda: [product(expert) for expert in group]

    run_concurrently([job(group) for group in groups])


class _ConcurrentGroupedMm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        ranges = spans(offsets, x.shape[0])
        groups = expert_groups(ranges, torch.get_num_threads())
        out = x.new_empty(x.shape[0], weight.shape[2])  # (A, N)

        def product(e: int) -> None:
            start, end = ranges[e]
            torch.mm(x[start:end], weight[e], out=out[start:end])

        _each_group(groups, product)
        ctx.save_for_backward(x, weight)
        ctx.ranges, ctx.groups = ranges, groups
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()  # (A, N); an expanded stride-0 grad would be read E times
        ranges = ctx.ranges
        want_x, want_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_x = x.new_empty(x.shape) if want_x else None  # (A, K)
        grad_w = weight.new_empty(weight.shape) if want_w else None  # (E, K, N)
        if grad_w is not None:
            for expert, (start, end) in enumerate(ranges):
                if end == start:
                    grad_w[expert].zero_()  # an expert without rows gets exactly zero

        def product(e: int) -> None:
            start, end = ranges[e]
            if grad_x is not None:
                torch.mm(grad[start:end], weight[e].t(), out=grad_x[start:end])
            if grad_w is not None:
                torch.mm(x[start:end].t(), grad[start:end], out=grad_w[e])

        _each_group(ctx.groups, product)
        return grad_x, grad_w, None


def grouped_mm_concurrent(
    x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor
) -> torch.Tensor:
    """x (A, K) sorted by expert, weight (E, K, N), offsets (E,) -> (A, N); see module doc."""
    check_shapes(x, weight, offsets)
    if x.is_cuda:
        raise ValueError("grouped_mm impl 'mm_concurrent' is a CPU path; use 'torch' or 'triton'")
    return _ConcurrentGroupedMm.apply(x, weight, offsets)

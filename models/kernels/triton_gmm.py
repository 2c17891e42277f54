"""Grouped GEMM as Triton kernels (CUDA; CPU only through the interpreter, `TRITON_INTERPRET=1`).

Forward and input gradient share one kernel: each program owns a BLOCK_M x BLOCK_N tile of one
expert's rows. The tile -> expert map is built on the device from the offsets (a prefix sum of
ceil(rows_e / BLOCK_M)), and the grid is sized from the upper bound ceil(A / BLOCK_M) + E, so no
host synchronisation is needed; surplus programs exit at once. Loads are masked, so any K, N and
any row count (0 included) work. The weight gradient has its own kernel: one program per
(expert, K-tile, N-tile) accumulates X_e^T dY_e over that expert's rows (zero for no rows).

Accumulation is fp32. fp32 inputs use `input_precision="ieee"` (no TF32: tests compare to the
loop). The interpreter multiplies bf16 operands of `tl.dot` as raw bits (triton-lang/triton#11584),
so under `TRITON_INTERPRET=1` operands are upcast to fp32 inside the kernel (`UPCAST`).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

BLOCK_M = 64
BLOCK_N = 64
BLOCK_K = 32


@triton.jit
def _grouped_rows_kernel(
    x_ptr, w_ptr, out_ptr, tile_expert_ptr, tile_row_ptr, ends_ptr,
    N, K,
    stride_xm, stride_xk, stride_we, stride_wk, stride_wn, stride_om, stride_on,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    UPCAST: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    tile = tl.program_id(0)
    expert = tl.load(tile_expert_ptr + tile)
    if expert >= 0:
        row0 = tl.load(tile_row_ptr + tile)
        row_end = tl.load(ends_ptr + expert)
        rows = row0 + tl.arange(0, BLOCK_M)  # (BM,)
        cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)  # (BN,)
        row_ok = rows < row_end
        col_ok = cols < N
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            ks = k0 + tl.arange(0, BLOCK_K)  # (BK,)
            k_ok = ks < K
            a = tl.load(
                x_ptr + rows[:, None] * stride_xm + ks[None, :] * stride_xk,
                mask=row_ok[:, None] & k_ok[None, :],
                other=0.0,
            )  # (BM, BK)
            b = tl.load(
                w_ptr + expert * stride_we + ks[:, None] * stride_wk + cols[None, :] * stride_wn,
                mask=k_ok[:, None] & col_ok[None, :],
                other=0.0,
            )  # (BK, BN)
            if UPCAST:
                a = a.to(tl.float32)
                b = b.to(tl.float32)
            acc += tl.dot(a, b, input_precision=PRECISION)
        tl.store(
            out_ptr + rows[:, None] * stride_om + cols[None, :] * stride_on,
            acc.to(out_ptr.dtype.element_ty),
            mask=row_ok[:, None] & col_ok[None, :],
        )


@triton.jit
def _weight_grad_kernel(
    x_ptr, g_ptr, out_ptr, ends_ptr,
    N, K,
    stride_xm, stride_xk, stride_gm, stride_gn, stride_oe, stride_ok, stride_on,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    UPCAST: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    expert = tl.program_id(0)
    ks = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)  # (BK,)
    cols = tl.program_id(2) * BLOCK_N + tl.arange(0, BLOCK_N)  # (BN,)
    k_ok = ks < K
    col_ok = cols < N
    end = tl.load(ends_ptr + expert)
    start = tl.load(ends_ptr + expert - 1, mask=expert > 0, other=0)
    acc = tl.zeros((BLOCK_K, BLOCK_N), dtype=tl.float32)
    for m0 in range(start, end, BLOCK_M):
        rows = m0 + tl.arange(0, BLOCK_M)  # (BM,)
        row_ok = rows < end
        a = tl.load(
            x_ptr + rows[None, :] * stride_xm + ks[:, None] * stride_xk,
            mask=k_ok[:, None] & row_ok[None, :],
            other=0.0,
        )  # (BK, BM) = X_e^T tile
        b = tl.load(
            g_ptr + rows[:, None] * stride_gm + cols[None, :] * stride_gn,
            mask=row_ok[:, None] & col_ok[None, :],
            other=0.0,
        )  # (BM, BN)
        if UPCAST:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        acc += tl.dot(a, b, input_precision=PRECISION)
    tl.store(
        out_ptr + expert * stride_oe + ks[:, None] * stride_ok + cols[None, :] * stride_on,
        acc.to(out_ptr.dtype.element_ty),
        mask=k_ok[:, None] & col_ok[None, :],
    )


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _tile_map(ends: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per tile: its expert (-1 for surplus tiles) and first row; and the grid size."""
    experts = ends.shape[0]
    starts = torch.cat([ends.new_zeros(1), ends[:-1]])  # (E,)
    tiles = (ends - starts + BLOCK_M - 1) // BLOCK_M  # (E,)
    tile_ends = torch.cumsum(tiles, 0)  # (E,)
    grid = (rows + BLOCK_M - 1) // BLOCK_M + experts  # upper bound on the tiles needed
    index = torch.arange(grid, device=ends.device)  # (G,)
    expert = torch.searchsorted(tile_ends, index, right=True)  # (G,) == E past the last tile
    valid = expert < experts
    expert = torch.where(valid, expert, 0)
    first_tile = tile_ends[expert] - tiles[expert]
    row = starts[expert] + (index - first_tile) * BLOCK_M
    return torch.where(valid, expert, -1).to(torch.int32), row.to(torch.int32), grid


def _precision(dtype: torch.dtype) -> str:
    """Exact fp32 products for fp32 (and for upcast interpreter operands); bf16/fp16 ignore it."""
    return "ieee" if dtype == torch.float32 or _interpreting() else "tf32"


def _rows_product(
    x: torch.Tensor, weight: torch.Tensor, ends: torch.Tensor, tile_map: tuple
) -> torch.Tensor:
    """out[rows of e] = x[rows of e] @ weight[e]; weight may be a transposed view."""
    tile_expert, tile_row, grid = tile_map
    n, k = weight.shape[2], weight.shape[1]
    out = x.new_empty(x.shape[0], n)  # (A, N)
    if x.shape[0] == 0:
        return out
    _grouped_rows_kernel[(grid, triton.cdiv(n, BLOCK_N))](
        x, weight, out, tile_expert, tile_row, ends, n, k,
        x.stride(0), x.stride(1), weight.stride(0), weight.stride(1), weight.stride(2),
        out.stride(0), out.stride(1),
        BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K,
        UPCAST=_interpreting(), PRECISION=_precision(x.dtype),
    )  # fmt: skip
    return out


class _TritonGroupedMm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        ends = offsets.to(torch.int32)
        tile_map = _tile_map(ends.to(torch.int64), x.shape[0])
        ctx.save_for_backward(x, weight, ends)
        ctx.tile_map = tile_map
        return _rows_product(x, weight, ends, tile_map)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight, ends = ctx.saved_tensors
        grad = grad.contiguous()  # (A, N)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = _rows_product(grad, weight.transpose(1, 2), ends, ctx.tile_map)  # (A, K)
        if ctx.needs_input_grad[1]:
            experts, k, n = weight.shape
            grad_w = weight.new_empty(weight.shape)  # (E, K, N)
            grid = (experts, triton.cdiv(k, BLOCK_K), triton.cdiv(n, BLOCK_N))
            _weight_grad_kernel[grid](
                x, grad, grad_w, ends, n, k,
                x.stride(0), x.stride(1), grad.stride(0), grad.stride(1),
                grad_w.stride(0), grad_w.stride(1), grad_w.stride(2),
                BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K,
                UPCAST=_interpreting(), PRECISION=_precision(x.dtype),
            )  # fmt: skip
        return grad_x, grad_w, None


def grouped_mm_triton(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """x (A, K) sorted by expert, weight (E, K, N), offsets (E,) -> (A, N) on the Triton kernels."""
    if not (x.is_cuda or _interpreting()):
        raise ValueError(
            "grouped_mm impl 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 set before "
            "triton is imported, for CPU tests); use impl='mm' on the CPU"
        )
    return _TritonGroupedMm.apply(x.contiguous(), weight, offsets)

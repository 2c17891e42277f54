"""Grouped GEMM on the CPU: three candidate paths, each with input and weight gradients.

- `mm`: one `torch.mm(out=...)` per expert into preallocated buffers, with a hand-written
  backward (dX_e = dY_e W_e^T, dW_e = X_e^T dY_e written straight into its slice of dW). Unlike
  autograd through `weight[e]` slices (the reference loop), the backward never materialises an
  E-times-too-large zero gradient per expert, which is what makes the reference slow at E = 64.
- `torch`: `torch._grouped_mm` (a C++ loop of `mm_out` on CPU in torch 2.13), forward and the
  two backward products through the same op; needs fp32/bf16/fp16 and 16-byte aligned rows.
- `bmm`: scatter rows into a zero-padded (E, max_rows, K) buffer, one `torch.bmm`, gather back.
  It multiplies E * max_rows rows for A useful ones (padding waste grows with imbalance).

`models.kernels.dispatch` picks between them (and the loop) and records why.
"""

from __future__ import annotations

import torch


def spans(offsets: torch.Tensor, rows: int) -> list[tuple[int, int]]:
    """(start, end) row range of every expert from cumulative end rows (one host sync)."""
    ends = offsets.tolist()
    if ends and ends[-1] != rows:
        raise ValueError(f"offsets end at {ends[-1]} but x has {rows} rows")
    starts = [0, *ends[:-1]]
    return list(zip(starts, ends, strict=True))


class _GroupedMmLoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        ranges = spans(offsets, x.shape[0])
        out = x.new_empty(x.shape[0], weight.shape[2])  # (A, N)
        for expert, (start, end) in enumerate(ranges):
            if end > start:
                torch.mm(x[start:end], weight[expert], out=out[start:end])
        ctx.save_for_backward(x, weight)
        ctx.ranges = ranges
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()  # (A, N); an expanded stride-0 grad would be read E times
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = x.new_empty(x.shape)  # (A, K)
            for expert, (start, end) in enumerate(ctx.ranges):
                if end > start:
                    torch.mm(grad[start:end], weight[expert].t(), out=grad_x[start:end])
        if ctx.needs_input_grad[1]:
            grad_w = weight.new_empty(weight.shape)  # (E, K, N)
            for expert, (start, end) in enumerate(ctx.ranges):
                if end > start:
                    torch.mm(x[start:end].t(), grad[start:end], out=grad_w[expert])
                else:
                    grad_w[expert].zero_()  # an expert without rows gets exactly zero
        return grad_x, grad_w, None


def grouped_mm_mm(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """x (A, K) sorted by expert, weight (E, K, N), offsets (E,) -> (A, N); see module doc."""
    check_shapes(x, weight, offsets)
    return _GroupedMmLoop.apply(x, weight, offsets)


class _TorchGroupedMm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight, offsets)
        # The op leaves a padded row stride when N * itemsize is not a multiple of 16.
        return torch._grouped_mm(x, weight, offs=offsets).contiguous()  # (A, N)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight, offsets = ctx.saved_tensors
        grad = grad.contiguous()  # the op rejects the stride-0 grad of `y.sum()`
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch._grouped_mm(grad, weight.transpose(-2, -1), offs=offsets)  # (A, K)
        if ctx.needs_input_grad[1]:
            grad_w = torch._grouped_mm(x.t(), grad, offs=offsets)  # (E, K, N), 2-D x 2-D form
        return grad_x, grad_w, None


def torch_grouped_unsupported(weight: torch.Tensor, x: torch.Tensor | None = None) -> str | None:
    """Why `torch._grouped_mm` cannot multiply rows (A, K) by weight (E, K, N), or None if it
    can; with `x`, also checks that x has the weight's dtype."""
    if not hasattr(torch, "_grouped_mm"):
        return f"torch {torch.__version__} has no torch._grouped_mm (needs torch >= 2.9)"
    dtype = weight.dtype
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        return f"torch._grouped_mm takes fp32/bf16/fp16, not {dtype}"
    if x is not None and x.dtype != dtype:
        return f"x is {x.dtype} but weight is {dtype}; cast one"
    per_16_bytes = 16 // weight.element_size()
    k, n = weight.shape[1], weight.shape[2]
    if k % per_16_bytes or n % per_16_bytes:
        return f"K={k} and N={n} must be multiples of {per_16_bytes} for {dtype} (16-byte rows)"
    return None


def grouped_mm_torch(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """x (A, K), weight (E, K, N), offsets (E,) -> (A, N) through `torch._grouped_mm`."""
    check_shapes(x, weight, offsets)
    reason = torch_grouped_unsupported(weight, x)
    if reason is not None:
        raise ValueError(f"grouped_mm impl 'torch': {reason}; use impl='mm' instead")
    # The op leaves rows past offsets[-1] uninitialised; checked where it costs no device sync.
    if not x.is_cuda and offsets.numel() and int(offsets[-1]) != x.shape[0]:
        raise ValueError(f"offsets end at {int(offsets[-1])} but x has {x.shape[0]} rows")
    return _TorchGroupedMm.apply(x, weight, offsets.to(torch.int32))


def grouped_mm_bmm(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """x (A, K), weight (E, K, N), offsets (E,) -> (A, N) by a zero-padded batched matmul.
    Differentiable through autograd (index_put / bmm / index)."""
    check_shapes(x, weight, offsets)
    experts = weight.shape[0]
    ends = offsets.to(torch.int64)
    counts = torch.diff(ends, prepend=ends.new_zeros(1))  # (E,)
    max_rows = int(counts.max()) if experts else 0
    if experts and int(ends[-1]) != x.shape[0]:
        raise ValueError(f"offsets end at {int(ends[-1])} but x has {x.shape[0]} rows")
    expert_of_row = torch.repeat_interleave(
        torch.arange(experts, device=x.device), counts, output_size=x.shape[0]
    )  # (A,)
    position = torch.arange(x.shape[0], device=x.device) - (ends - counts)[expert_of_row]  # (A,)
    padded = x.new_zeros(experts, max_rows, x.shape[1])  # (E, M, K)
    padded = padded.index_put((expert_of_row, position), x)
    out = torch.bmm(padded, weight)  # (E, M, N)
    return out[expert_of_row, position]  # (A, N)


def check_shapes(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> None:
    """Raise unless x (A, K), weight (E, K, N), offsets (E,) chain."""
    if x.dim() != 2 or weight.dim() != 3 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"shapes x {tuple(x.shape)}, weight {tuple(weight.shape)} do not chain")
    if offsets.shape != (weight.shape[0],):
        raise ValueError(f"offsets {tuple(offsets.shape)} needs one entry per expert")
    if x.dtype != weight.dtype:
        raise ValueError(f"x is {x.dtype} but weight is {weight.dtype}; cast x to the weight dtype")

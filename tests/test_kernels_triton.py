"""The Triton grouped GEMM against the reference loop: on the CPU through Triton's interpreter
(a subprocess with TRITON_INTERPRET=1, which must be set before triton is imported), and on a
real GPU when there is one. `python tests/test_kernels_triton.py` runs the interpreter checks."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(
    not HAS_TRITON,
    reason="triton is not installed: pip install -e '.[dev]' (or pip install triton)",
)

# (rows per expert, K, N): an empty expert, one expert with every row, a single expert, odd sizes
SHAPES = [([5, 0, 70, 1], 40, 24), ([0, 0, 33, 0], 16, 8), ([29], 7, 5), ([64, 64], 32, 64)]


def compare(device: str, dtype: torch.dtype, impl: str = "triton", shapes=SHAPES) -> list[str]:
    """Every case's output and gradients against the loop; returns the failures."""
    from models.kernels import grouped_mm

    failures = []
    gen = torch.Generator().manual_seed(0)
    for counts, k_dim, n_dim in shapes:
        offsets = torch.tensor(counts).cumsum(0).to(torch.int32).to(device)
        rows = sum(counts)
        x = torch.randn(rows, k_dim, generator=gen).to(device, dtype)
        weight = torch.randn(len(counts), k_dim, n_dim, generator=gen).to(device, dtype)
        grad = torch.randn(rows, n_dim, generator=gen).to(device, dtype)
        results = []
        for name, cast in ((impl, dtype), ("loop", torch.float32)):
            leaves = [t.to(cast).requires_grad_(True) for t in (x, weight)]
            y = grouped_mm(*leaves, offsets, impl=name)
            results.append((y, *torch.autograd.grad(y, leaves, grad.to(cast))))
        tol = 1e-5 if dtype == torch.float32 else 2e-2
        for what, got, want in zip(("y", "dx", "dw"), *results, strict=True):
            scale = max(want.abs().max().item(), 1.0)
            error = (got.float() - want).abs().max().item() if want.numel() else 0.0
            if got.dtype != dtype or error > tol * scale:
                failures.append(f"{counts} K{k_dim} N{n_dim} {dtype} {what}: error {error:.3g}")
        empty = [e for e, c in enumerate(counts) if c == 0]
        if empty and results[0][2][empty].abs().max().item() != 0:
            failures.append(f"{counts}: empty experts' weight gradient is not exactly zero")
    return failures


@needs_triton
@pytest.mark.slow
def test_triton_interpreter_equals_loop() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "interpreter checks passed" in done.stdout


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_triton_gpu_equals_loop(dtype: torch.dtype) -> None:
    assert compare("cuda", dtype) == []


@pytest.mark.gpu
@pytest.mark.parametrize("impl", ["torch", "mm", "bmm"])
def test_other_paths_on_gpu_equal_loop(impl: str) -> None:
    shapes = [(c, k, n) for c, k, n in SHAPES if k % 8 == 0 and n % 8 == 0]
    assert shapes, "keep an aligned shape for torch._grouped_mm"
    assert compare("cuda", torch.bfloat16, impl, shapes) == []


if __name__ == "__main__":
    if os.environ.get("TRITON_INTERPRET") != "1":
        sys.exit("set TRITON_INTERPRET=1 (before triton is imported) to run on the CPU")
    # The interpreter's bf16 dot multiplies raw bits (triton#11584); the kernel upcasts its
    # operands under the interpreter, so bf16 is checked here too.
    problems = [
        p for dt in (torch.float32, torch.float16, torch.bfloat16) for p in compare("cpu", dt)
    ]
    if problems:
        sys.exit("\n".join(problems))
    print("interpreter checks passed")

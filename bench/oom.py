"""Out-of-memory, recognised the same way in every phase of a cell (data, training, measuring),
so that each one becomes an `oom` record, which `--resume` reruns."""

from __future__ import annotations

import torch


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA raises torch.OutOfMemoryError; numpy MemoryError; the CPU allocator a RuntimeError."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)

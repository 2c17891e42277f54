"""What decides a run's numbers on a device, recorded in the manifest and every record: the
training dtype and autocast (the harness trains in float32, no autocast, on every device), and
the torch.backends switches that change float32 matmuls and attention kernels (TF32, cuDNN,
the SDPA backends), plus CUDA memory per phase of a cell (`cuda_phase`)."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import torch

TRAIN_DTYPE = "float32"  # parameters, activations and gradients; bf16 is not offered yet
AUTOCAST = "none"


def numerics() -> dict[str, Any]:
    """The dtype choice and the backend settings in force now (readable on any build)."""
    cuda, cudnn = torch.backends.cuda, torch.backends.cudnn
    return {
        "train_dtype": TRAIN_DTYPE,
        "autocast": AUTOCAST,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": bool(cuda.matmul.allow_tf32),
        "cuda_matmul_allow_bf16_reduced_precision": bool(
            cuda.matmul.allow_bf16_reduced_precision_reduction
        ),
        "cudnn_enabled": bool(cudnn.enabled),
        "cudnn_allow_tf32": bool(cudnn.allow_tf32),
        "cudnn_benchmark": bool(cudnn.benchmark),
        "cudnn_deterministic": bool(cudnn.deterministic),
        "sdp_flash": bool(cuda.flash_sdp_enabled()),
        "sdp_mem_efficient": bool(cuda.mem_efficient_sdp_enabled()),
        "sdp_math": bool(cuda.math_sdp_enabled()),
        "sdp_cudnn": bool(cuda.cudnn_sdp_enabled()),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }


@contextmanager
def cuda_phase(
    device: torch.device, phase: str, metrics: MutableMapping[str, Any]
) -> Iterator[None]:
    """On CUDA, the peak allocated and reserved bytes of the block, as
    memory_peak_<phase>_cuda_bytes and memory_peak_<phase>_cuda_reserved_bytes (read only when
    the block finishes); elsewhere nothing (CPU memory is measured per step in bench.measure)."""
    if device.type != "cuda":
        yield
        return
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    yield
    torch.cuda.synchronize(device)
    metrics[f"memory_peak_{phase}_cuda_bytes"] = int(torch.cuda.max_memory_allocated(device))
    metrics[f"memory_peak_{phase}_cuda_reserved_bytes"] = int(
        torch.cuda.max_memory_reserved(device)
    )

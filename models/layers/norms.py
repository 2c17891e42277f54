"""The blocks' pre-norm, chosen by `ModelConfig.norm`: LayerNorm ("layer", the shared backbone) or
RMSNorm ("rms", the released UoE LRA blocks: x / sqrt(mean(x^2) + 1e-6) * weight, no bias)."""

from __future__ import annotations

from torch import nn

from models.config import NORMS

RMS_EPS = 1e-6  # the released RMSNorm's epsilon


def make_norm(kind: str, dim: int) -> nn.Module:
    """A fresh pre-norm of `kind` ("layer" | "rms") over the last dimension of size `dim`."""
    if kind == "layer":
        return nn.LayerNorm(dim)
    if kind == "rms":
        return nn.RMSNorm(dim, eps=RMS_EPS)
    raise ValueError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS)} (model.norm)")

"""Dense vs UoE analytic forward FLOPs per example, per layer and layer part.

The dense figures are closed-form (full attention over the padded length L, dense MLP); the UoE
figures are what its parts' `analytic_flops()` report after a forward on a real batch (rows
actually multiplied, so they depend on the routing and the padding). Grouped as

    projections  qkv_proj + out_proj        attention  attn_scores + attn_values
    mlp          ffn_up + ffn_down          router     router (UoE only)

so the paper's claim (about 50 % of the dense FLOPs: projections ~1/2, attention products ~1/4
and MLP exactly 1/2 at capacity L/2) can be checked part by part. 2 FLOPs per multiply-add.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.config import ModelConfig

GROUPS: dict[str, tuple[str, ...]] = {
    "projections": ("qkv_proj", "out_proj"),
    "attention": ("attn_scores", "attn_values"),
    "mlp": ("ffn_up", "ffn_down"),
    "router": ("router",),
}


@dataclass(frozen=True)
class PartRatio:
    """One layer part's forward FLOPs per example; ratio = uoe / dense (None if dense is 0)."""

    layer: int
    group: str
    dense: float
    uoe: float

    @property
    def ratio(self) -> float | None:
        return self.uoe / self.dense if self.dense else None


def dense_layer_flops(cfg: ModelConfig, length: int) -> dict[str, float]:
    """Forward FLOPs of one dense block (full attention + dense MLP) for one example of length L."""
    d, h, n = cfg.dim, cfg.ffn_dim, length
    return {
        "qkv_proj": 2.0 * n * d * 3 * d,
        "attn_scores": 2.0 * n * n * d,  # heads x (L x L x Dh) = L x L x D
        "attn_values": 2.0 * n * n * d,
        "out_proj": 2.0 * n * d * d,
        "ffn_up": 2.0 * n * d * h,
        "ffn_down": 2.0 * n * h * d,
    }


@torch.no_grad()
def uoe_layer_flops(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], lengths: tuple[torch.Tensor, ...]
) -> list[dict[str, float]]:
    """Encode each input of one batch with `model`'s encoder (a UoE SequenceClassifier) in eval
    mode and return, per layer, its parts' analytic FLOPs per example, summed over inputs."""
    was_training = model.training
    model.eval()
    batch = inputs[0].shape[0]
    layers: list[dict[str, float]] = [{} for _ in model.encoder.blocks]
    try:
        for tokens, n in zip(inputs, lengths, strict=True):
            model.encoder(tokens, n)
            for counts, block in zip(layers, model.encoder.blocks, strict=True):
                for part in (block.mixer, block.ffn):
                    if not hasattr(part, "analytic_flops"):
                        raise TypeError(f"{type(part).__name__} has no analytic_flops()")
                    for name, value in part.analytic_flops().items():
                        counts[name] = counts.get(name, 0.0) + value / batch
    finally:
        model.train(was_training)
    return layers


def compare(
    model: nn.Module,
    cfg: ModelConfig,
    inputs: tuple[torch.Tensor, ...],
    lengths: tuple[torch.Tensor, ...],
) -> list[PartRatio]:
    """UoE vs dense forward FLOPs per example, per layer and group (see GROUPS)."""
    length = inputs[0].shape[1]
    dense = {k: v * len(inputs) for k, v in dense_layer_flops(cfg, length).items()}
    rows = []
    for index, layer in enumerate(uoe_layer_flops(model, inputs, lengths)):
        for group, names in GROUPS.items():
            rows.append(
                PartRatio(
                    layer=index,
                    group=group,
                    dense=sum(dense.get(n, 0.0) for n in names),
                    uoe=sum(layer.get(n, 0.0) for n in names),
                )
            )
    return rows


def total_ratio(rows: list[PartRatio]) -> float:
    """UoE / dense forward FLOPs of all layers together (router included on the UoE side)."""
    return sum(r.uoe for r in rows) / sum(r.dense for r in rows)

"""The shared encoder: embeddings, a stack of blocks with swappable parts, a final LayerNorm."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from models.layers.block import Block
from models.layers.embeddings import TokenPositionEmbedding
from models.layers.parts import PartAux, lengths_to_mask
from models.layers.rotary import RotaryStep

# (layer index) -> part module; the model file decides what a mixer or FFN is.
PartFactory = Callable[[int], nn.Module]


@dataclass(frozen=True)
class EncoderOutput:
    """hidden (B, L, D); mask (B, L) bool; aux_loss a scalar (0 for dense models);
    layer_stats[i][part] the routing statistics of part "mixer"/"ffn" of layer i (may be empty)."""

    hidden: torch.Tensor
    mask: torch.Tensor
    aux_loss: torch.Tensor
    layer_stats: tuple[Mapping[str, Mapping[str, torch.Tensor]], ...]


class Encoder(nn.Module):
    def __init__(
        self,
        *,
        vocab_size: int,
        max_len: int,
        dim: int,
        depth: int,
        dropout: float,
        make_mixer: PartFactory,
        make_ffn: PartFactory,
        norm: str = "layer",
        rope_heads: int = 0,
    ) -> None:
        """norm: the blocks' pre-norm ("layer" | "rms"); rope_heads > 0 puts the released rotary
        step, over that many slices, before every mixer (0: none). The final norm is LayerNorm
        in every case (as released)."""
        super().__init__()
        self.embed = TokenPositionEmbedding(vocab_size, max_len, dim, dropout)
        self.blocks = nn.ModuleList(
            Block(
                dim,
                make_mixer(i),
                make_ffn(i),
                dropout,
                norm=norm,
                rotary=RotaryStep(dim, rope_heads, max_len) if rope_heads else None,
            )
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """(B, L) int64 tokens and (B,) lengths -> EncoderOutput."""
        mask = lengths_to_mask(lengths, tokens.shape[1])  # (B, L)
        x = self.embed(tokens)  # (B, L, D)
        aux_loss = x.new_zeros(())
        layer_stats = []
        for block in self.blocks:
            x, aux = block(x, mask)
            aux_loss = aux_loss + _sum_losses(aux)
            # The mappings as the parts gave them: lazy ones compute only when read.
            layer_stats.append({part: a.stats for part, a in aux.items() if a.stats})
        return EncoderOutput(self.norm(x), mask, aux_loss, tuple(layer_stats))


def _sum_losses(aux: Mapping[str, PartAux]) -> torch.Tensor | float:
    return sum((a.loss for a in aux.values() if a.loss is not None), start=0.0)

"""A pre-norm transformer block: x + mixer(rotary(norm(x))), then x + ffn(norm(x)).

The norm is LayerNorm or RMSNorm (`models.layers.norms`); the rotary step (`models.layers.rotary`)
is optional and, as released, acts on the mixer's input only."""

from __future__ import annotations

import torch
from torch import nn

from models.layers.norms import make_norm
from models.layers.parts import PartAux, check_part
from models.layers.ranges import FFN, MIXER, slot


class Block(nn.Module):
    def __init__(
        self,
        dim: int,
        mixer: nn.Module,
        ffn: nn.Module,
        dropout: float,
        *,
        norm: str = "layer",
        rotary: nn.Module | None = None,
    ) -> None:
        super().__init__()
        check_part(mixer, MIXER)
        check_part(ffn, FFN)
        self.mixer_norm = make_norm(norm, dim)
        self.rotary = rotary
        self.mixer = mixer
        self.ffn_norm = make_norm(norm, dim)
        self.ffn = ffn
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, PartAux]]:
        """(B, L, D), (B, L) bool -> (B, L, D) and the aux output of each part."""
        with slot(MIXER):
            h = self.mixer_norm(x)  # (B, L, D)
            if self.rotary is not None:
                h = self.rotary(h)
            mixed, mixer_aux = self.mixer(h, mask)
        x = x + self.dropout(mixed)
        with slot(FFN):
            fed, ffn_aux = self.ffn(self.ffn_norm(x), mask)
        x = x + self.dropout(fed)
        return x, {MIXER: mixer_aux, FFN: ffn_aux}

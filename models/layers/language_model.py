"""A next-token language model on the shared encoder: the causal form every model takes when its
task is causal (`ModelTask.causal`; `build_classifier` returns it).

The encoder is the classifier's, built from the model's causal parts (each mixer masks later
keys; routed parts route a token without looking at later tokens, or the model has no causal
form and says so with `models.errors.NoCausalForm`). Its final LayerNorm'd hidden state goes,
position by position, through `LanguageModelHead`, Linear(D -> V): logits (B, L, V), the logits
at position t predicting token t + 1 from tokens <= t.

The head is not tied to the token embedding: the embedding starts at N(0, 0.02) for the
classifier's sake, the vocabulary holds the padding id, and an untied head keeps the parameter
count of every model's LM form the same function of (D, V), so the comparison stays like for
like; tying is a recipe choice a suite may add, not part of the causal form.
"""

from __future__ import annotations

import torch
from torch import nn

from models.layers.encoder import Encoder
from models.layers.output import ModelOutput


class LanguageModelHead(nn.Module):
    """(B, L, D) normed hidden states -> (B, L, V) next-token logits, one Linear per position."""

    def __init__(self, dim: int, vocab_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, vocab_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.proj(hidden)  # (B, L, V)

    def analytic_flops(self, x_shape: torch.Size) -> dict[str, float]:
        """Forward FLOPs of a call on hidden states (B, L, D): the projection at every
        position, padding included (the matmul runs on all of them)."""
        rows = x_shape[0] * x_shape[1]
        return {"lm_head": 2.0 * rows * self.proj.in_features * self.proj.out_features}


class LanguageModel(nn.Module):
    """Causal encoder + per-position head; forward(inputs, lengths) -> ModelOutput with logits
    (B, L, V). The interface is the classifier's (one input), so the training loop and the
    measurements call both the same way."""

    num_inputs = 1

    def __init__(self, encoder: Encoder, head: LanguageModelHead) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(
        self, inputs: tuple[torch.Tensor, ...], lengths: tuple[torch.Tensor, ...]
    ) -> ModelOutput:
        """inputs = (tokens (B, L) int64,), lengths = ((B,),) -> ModelOutput, logits (B, L, V).
        Positions at or after a sequence's length are padding: their logits are computed (the
        head runs on every row) and mean nothing; the loss masks them."""
        if len(inputs) != 1 or len(lengths) != 1:
            raise ValueError(f"a language model takes one input, got {len(inputs)}")
        encoded = self.encoder(inputs[0], lengths[0])
        logits = self.head(encoded.hidden)  # (B, L, V)
        return ModelOutput(logits, encoded.aux_loss, encoded.layer_stats)

"""The causality probe of a language model: does position t's output move when only tokens after
t change? A model that passes sees no future token (on the probed batch and cut points); one that
fails must not have its perplexity ranked, since it was scored with the answer in view.

For each cut point t the tokens after t are replaced by different random tokens (the padding,
and the tokens at or before t, unchanged) and the model, in eval mode, is run on both batches.
At every real position p <= t the change of the logits is measured relative to their size,
||y'(p) - y(p)|| / ||y(p)||; a position moved when that exceeds `LEAK_TOLERANCE` (well above
float reordering: a routed model whose later tokens change its expert group sizes may run a
differently blocked GEMM, a change of about 1e-7).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

LEAK_TOLERANCE = 1e-4
CUT_FRACTIONS = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class CausalityProbe:
    """max_rel_change: over cuts, positions <= t and examples; moved_positions: the most
    positions <= t that moved at one cut (over examples); per_cut: {t: (max change, moved)}."""

    leaks: bool
    max_rel_change: float
    moved_positions: int
    per_cut: dict[int, tuple[float, int]]
    examples: int
    tolerance: float = LEAK_TOLERANCE

    def metrics(self) -> dict[str, object]:
        """The record's figures (declared in suites/lm/metrics.py)."""
        return {
            "causal_leak": int(self.leaks),
            "causal_max_rel_change": self.max_rel_change,
            "causal_leaking_positions": self.moved_positions,
            "causal_probe": {
                "tolerance": self.tolerance,
                "examples": self.examples,
                **{f"cut_{t}_max_rel_change": c for t, (c, _) in self.per_cut.items()},
                **{f"cut_{t}_moved_positions": m for t, (_, m) in self.per_cut.items()},
            },
        }


@torch.no_grad()
def probe_causality(
    model: nn.Module,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    vocab_size: int,
    *,
    seed: int = 0,
) -> CausalityProbe:
    """Probe `model` on `tokens` (B, L) int64 with `lengths` (B,) (ids 1..vocab_size-1 are
    real tokens, 0 padding) at cut points CUT_FRACTIONS of the shortest length."""
    if tokens.dim() != 2 or lengths.shape != tokens.shape[:1]:
        raise ValueError(f"tokens (B, L) and lengths (B,), got {tuple(tokens.shape)}, "
                         f"{tuple(lengths.shape)}")  # fmt: skip
    was_training = model.training
    model.eval()
    try:
        g = torch.Generator().manual_seed(seed)
        shortest = int(lengths.min())
        cuts = sorted({min(shortest - 2, max(0, int(f * shortest))) for f in CUT_FRACTIONS})
        if shortest < 2:
            raise ValueError("the probe needs examples of at least 2 tokens")
        base = model((tokens,), (lengths,)).logits.float()  # (B, L, V)
        positions = torch.arange(tokens.shape[1], device=tokens.device)[None]  # (1, L)
        real = positions < lengths[:, None]  # (B, L)
        per_cut: dict[int, tuple[float, int]] = {}
        for t in cuts:
            later = real & (positions > t)  # (B, L)
            shift = torch.randint(1, vocab_size - 1, tokens.shape, generator=g).to(tokens.device)
            changed = (tokens - 1 + shift) % (vocab_size - 1) + 1  # another real token
            probe = torch.where(later, changed, tokens)  # (B, L)
            moved = model((probe,), (lengths,)).logits.float()  # (B, L, V)
            scale = base.norm(dim=-1).clamp_min(1e-30)  # (B, L)
            change = (moved - base).norm(dim=-1) / scale  # (B, L)
            earlier = real & (positions <= t)  # (B, L)
            change = torch.where(earlier, change, torch.zeros_like(change))
            count = int((change > LEAK_TOLERANCE).sum(dim=1).max())
            per_cut[t] = (float(change.max()), count)
    finally:
        model.train(was_training)
    worst = max(c for c, _ in per_cut.values())
    return CausalityProbe(
        leaks=worst > LEAK_TOLERANCE,
        max_rel_change=worst,
        moved_positions=max(m for _, m in per_cut.values()),
        per_cut=per_cut,
        examples=int(tokens.shape[0]),
    )

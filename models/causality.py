"""The causality probe: does a language model's output at position t move when only tokens after
t change? A benchmark must know before it ranks perplexities (a model that sees the next token
predicts it trivially); the LM suite runs it on every cell after training, and the registry test
(tests/test_causality.py) on every model's causal form at random weights.

Procedure (eval mode, no gradient, the model's train/eval mode restored afterwards): one forward
of the batch as given; then, for each cut t and each of `trials` perturbations, every real token
after position t, in every sequence, is replaced by a different random token (an explicit
generator, never the global RNG), and the logits at the real positions <= t of every sequence are
compared with the unperturbed ones. Every sequence is perturbed at once, so a leak across the
batch (a token's routing depending on another sequence's later tokens, e.g. a capacity counted
over the whole batch in sample order) is caught as well as one within a sequence.

Tolerance, float32: tol = 1e-5 * max |logit| + 1e-6, the max over the unperturbed batch's real
positions. A causal model recomputes the positions <= t from the same inputs, but the perturbed
batch can change how work is grouped (routed rows per expert, so the grouped GEMM's blocking and
the order of sums), and float32 round-off (eps 1.2e-7) grows with depth and width to about
1e-6 of the logits' scale: 1e-5 of the scale leaves a margin of ten over that, while a real leak
moves logits by a sizable fraction of their scale (the released UoE LM code: up to 0.82 relative,
reference/uoe.md section 1.6). The absolute 1e-6 keeps the test meaningful for logits near 0.
Before any perturbation the unperturbed batch is run twice: if the two runs differ by more than
the tolerance the model is not deterministic and the probe refuses to judge it (ValueError).

Figures: max_abs_change, the largest |change| of a logit at a checked position; max_rel_change,
the largest over checked positions of max|change| / max|logit| at that position;
fraction_changed, the share of checked (sequence, position, cut, trial) rows whose max|change|
exceeds tol; leaks = fraction_changed > 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

REL_TOLERANCE = 1e-5
ABS_TOLERANCE = 1e-6
DEFAULT_TRIALS = 3


@dataclass(frozen=True)
class CausalityProbe:
    """The probe's verdict and figures (module doc); `cuts` the positions t used."""

    leaks: bool
    max_abs_change: float
    max_rel_change: float
    fraction_changed: float
    positions_checked: int
    tolerance: float
    noise_floor: float
    cuts: tuple[int, ...]
    trials: int

    def to_record(self) -> dict[str, Any]:
        """Plain numbers for a record (JSON-ready)."""
        return {
            "leaks": self.leaks,
            "max_abs_change": self.max_abs_change,
            "max_rel_change": self.max_rel_change,
            "fraction_changed": self.fraction_changed,
            "positions_checked": self.positions_checked,
            "tolerance": self.tolerance,
            "noise_floor": self.noise_floor,
            "cuts": list(self.cuts),
            "trials": self.trials,
        }


def default_cuts(length: int) -> tuple[int, ...]:
    """Five cuts spread over a segment of `length` (>= 2): 0, L/4, L/2, 3L/4, L-2."""
    if length < 2:
        raise ValueError(f"the probe needs segments of >= 2 tokens, got length {length}")
    return tuple(sorted({0, length // 4, length // 2, (3 * length) // 4, length - 2}))


def probe_causality(
    model: nn.Module,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    vocab_size: int,
    *,
    cuts: Sequence[int] | None = None,
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
) -> CausalityProbe:
    """Probe `model` (forward((tokens,), (lengths,)) -> output with logits (B, L, V)) on the
    batch tokens (B, L) int64 with lengths (B,); replacement tokens are drawn from
    1..vocab_size-1 (0 is padding). Returns a `CausalityProbe` (module doc)."""
    if tokens.dim() != 2 or lengths.shape != tokens.shape[:1]:
        raise ValueError(
            f"tokens must be (B, L) and lengths (B,), got {tokens.shape}, {lengths.shape}"
        )
    if vocab_size < 3:
        raise ValueError(f"the probe needs >= 2 non-padding token ids, got vocab_size {vocab_size}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    length = tokens.shape[1]
    cuts = tuple(default_cuts(length) if cuts is None else cuts)
    if not cuts or min(cuts) < 0 or max(cuts) > length - 2:
        raise ValueError(f"cuts must lie in 0..{length - 2} (a token must follow), got {cuts}")
    positions = torch.arange(length, device=tokens.device)  # (L,)
    real = positions[None, :] < lengths[:, None]  # (B, L)
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            base = _logits(model, tokens, lengths)  # (B, L, V)
            again = _logits(model, tokens, lengths)
            scale = float(base[real].abs().max())
            tolerance = REL_TOLERANCE * scale + ABS_TOLERANCE
            noise = float((again - base)[real].abs().max())
            if noise > tolerance:
                raise ValueError(
                    f"the model is not deterministic in eval mode: two runs of the same batch "
                    f"differ by {noise:.3g} > tolerance {tolerance:.3g}; the probe cannot judge it"
                )
            position_scale = base.abs().amax(-1).clamp_min(ABS_TOLERANCE)  # (B, L)
            max_abs = max_rel = 0.0
            changed = checked = 0
            for cut in cuts:
                later = real & (positions[None, :] > cut)  # (B, L) tokens to perturb
                seen = real & (positions[None, :] <= cut)  # (B, L) positions to check
                for _ in range(trials):
                    perturbed = _perturb(tokens, later, vocab_size, generator)
                    change = (_logits(model, perturbed, lengths) - base).abs().amax(-1)  # (B, L)
                    change = change[seen]  # (N,)
                    max_abs = max(max_abs, float(change.max()))
                    max_rel = max(max_rel, float((change / position_scale[seen]).max()))
                    changed += int((change > tolerance).sum())
                    checked += change.numel()
    finally:
        model.train(was_training)
    return CausalityProbe(
        leaks=changed > 0,
        max_abs_change=max_abs,
        max_rel_change=max_rel,
        fraction_changed=changed / checked,
        positions_checked=checked,
        tolerance=tolerance,
        noise_floor=noise,
        cuts=cuts,
        trials=trials,
    )


def _logits(model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    logits = model((tokens,), (lengths,)).logits
    if logits.dim() != 3 or logits.shape[:2] != tokens.shape:
        raise ValueError(
            f"a language model gives logits (B, L, V); got {tuple(logits.shape)} for tokens "
            f"{tuple(tokens.shape)} (build it with a causal ModelTask)"
        )
    return logits.float()


def _perturb(
    tokens: torch.Tensor, where: torch.Tensor, vocab_size: int, generator: torch.Generator
) -> torch.Tensor:
    """tokens (B, L) with every token where `where` replaced by a different id in 1..V-1."""
    shift = torch.randint(1, vocab_size - 1, tokens.shape, generator=generator)  # (B, L)
    shift = shift.to(tokens.device)
    moved = (tokens - 1 + shift) % (vocab_size - 1) + 1  # a different non-padding id
    return torch.where(where, moved, tokens)

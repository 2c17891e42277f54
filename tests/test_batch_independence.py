"""No model depends on its batch-mates: every registered model gives a sequence the same logits
alone (a batch of one) and inside batches of random other sequences of other lengths, at every
position in the batch. A rule computed over the whole batch (a capacity counted over the
flattened batch, a rank normalised across sequences) fails it.

Built at the tiny LRA config for ListOps, in eval mode, as tests/test_models_common.py does.
"""

from __future__ import annotations

import pytest
import torch

from bench import registries
from models.registry import build_model

# Released flaws the harness keeps on purpose; strict, so an entry must go when the model changes.
BATCH_DEPENDENT = {
    "uoe_paper": "the released UoE takes its capacity from the busiest row of the batch and "
    "normalises its patch ranks over the batch (models/uoe/routing.py)",
}
TARGET_LENGTH = 50
MATE_LENGTHS = ((128, 1, 77, 9), (3, 128, 128), (64,))  # the batch-mates of each batch


def _model(name: str, own: dict | None = None) -> tuple[torch.nn.Module, int, int]:
    scale = registries.SUITES.get("lra").scales["tiny"]
    cfg = scale.resolve("listops")
    task = registries.TASKS.get("lra/listops").model_task(cfg.data.max_len)
    torch.manual_seed(0)
    model = build_model(name, cfg.model, task, {**scale.model_own, **(own or {})})
    return model.eval(), task.vocab_size, task.max_len


def _sequences(lengths: list[int], vocab: int, max_len: int, gen: torch.Generator):
    """(B, max_len) random tokens, 0 (padding) beyond each length, and the (B,) lengths."""
    tokens = torch.randint(1, vocab, (len(lengths), max_len), generator=gen)  # (B, L)
    lengths_t = torch.tensor(lengths)
    tokens = tokens.masked_fill(torch.arange(max_len)[None, :] >= lengths_t[:, None], 0)
    return tokens, lengths_t


def _largest_move(model: torch.nn.Module, vocab: int, max_len: int) -> float:
    """The largest change of the target sequence's logits between alone and any batch."""
    gen = torch.Generator().manual_seed(7)
    target, target_length = _sequences([TARGET_LENGTH], vocab, max_len, gen)  # (1, L), (1,)
    worst = 0.0
    with torch.no_grad():
        alone = model((target,), (target_length,)).logits[0]  # (C,)
        for mates in MATE_LENGTHS:
            others, other_lengths = _sequences(list(mates), vocab, max_len, gen)
            for at in range(len(mates) + 1):  # the target first, between the mates, last
                tokens = torch.cat([others[:at], target, others[at:]])  # (B, L)
                lengths = torch.cat([other_lengths[:at], target_length, other_lengths[at:]])
                inside = model((tokens,), (lengths,)).logits[at]  # (C,)
                worst = max(worst, (inside - alone).abs().max().item())
    return worst


@pytest.mark.model_contract(xfail=BATCH_DEPENDENT)
def test_a_sequence_has_the_same_logits_alone_and_in_any_batch(model_name: str) -> None:
    worst = _largest_move(*_model(model_name))
    assert worst <= 1e-5, f"the target's logits move by up to {worst:.3g} with its batch-mates"


def test_the_check_sees_a_capacity_counted_over_the_batch() -> None:
    """The check has power: Switch with its capacity counted over the whole batch fails it."""
    assert _largest_move(*_model("switch", {"capacity_group": "batch"})) > 1e-3

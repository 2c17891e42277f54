"""UoE hierarchical routing: data selection, patches, per-sample routing, capacity rules,
balance loss and routing statistics, each checked against hand-built or independently
recomputed routings (the gate is the identity, so x holds the gate logits directly)."""

from __future__ import annotations

import math

import pytest
import torch

from models.layers.parts import lengths_to_mask
from models.uoe.routing import Capacity, Router, RoutingConfig, balance_loss


def _router(experts: int, top_k: int, capacity: Capacity, **kw) -> Router:
    router = Router(experts, RoutingConfig(experts, top_k, capacity, **kw))
    with torch.no_grad():
        router.gate.weight.copy_(torch.eye(experts))
        router.gate.bias.zero_()
    return router


def _kept(sel) -> list[list[list[int]]]:
    """[b][e] -> the valid positions, in slot order."""
    b_, e_, _ = sel.positions.shape
    return [[sel.positions[b, e][sel.valid[b, e]].tolist() for e in range(e_)] for b in range(b_)]


def test_hand_built_token_selection_keeps_best_scores_in_position_order() -> None:
    # E = 2, top-1; token logits favour expert 0 with decreasing confidence except token 1.
    logits = torch.tensor([[[2.0, 0], [0, 3], [3, 0], [1, 0], [0.5, 0], [4, 0]]])  # (1, 6, 2)
    router = _router(2, 1, Capacity("fraction", 0.5))  # c = floor(0.5 * 6) = 3
    sel = router(logits, torch.ones(1, 6, dtype=torch.bool))
    # Expert 0 was chosen by tokens 0, 2, 3, 4, 5; its best three scores are 5, 2, 0.
    assert _kept(sel)[0] == [[0, 2, 5], [1]]
    assert sel.stats["tokens_per_expert"].tolist() == [3.0, 1.0]
    assert sel.stats["dropped_fraction"].item() == pytest.approx(2 / 6)
    # Gate weight of the corrected behaviour: k x the top-k renormalised probability (= 1 at k=1).
    torch.testing.assert_close(sel.weight[0, 0][sel.valid[0, 0]], torch.ones(3))


def test_selection_never_picks_padding_and_keeps_position_order() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 17, 4)
    lengths = torch.tensor([17, 9, 1, 12, 4])
    mask = lengths_to_mask(lengths, 17)
    router = _router(4, 2, Capacity("factor", 0.75))
    sel = router(x, mask)
    top = x.softmax(-1).topk(2, dim=-1).indices  # independent top-k
    for b, n in enumerate(lengths.tolist()):
        cap = math.ceil(0.75 * 2 * n / 4)
        for e, kept in enumerate(_kept(sel)[b]):
            assert all(pos < n for pos in kept), "padding took an expert's slot"
            assert kept == sorted(set(kept)), "not in position order"
            assert len(kept) <= cap
            assert all(e in top[b, pos].tolist() for pos in kept), "a token it did not choose"
    assert not (sel.key_mask & ~mask[:, None, :].expand(-1, 4, -1).gather(-1, sel.positions)).any()


def test_released_behaviour_routes_padding_and_fills_free_slots() -> None:
    """uoe_paper behaviour: padding competes like a real token, fillers are processed."""
    x = torch.tensor([[[1.0, 0], [2, 0], [0, 1], [0, 3]]])  # token 3 is padding
    mask = lengths_to_mask(torch.tensor([3]), 4)
    router = _router(2, 1, Capacity("fraction", 0.5), mask_padding=False, weighted=False)
    sel = router(x, mask)
    # c = floor(0.5 * 4) = 2 per expert. Expert 1 keeps padding token 3 (the best score) and the
    # real token 2; expert 0 keeps 0 and 1. Nothing is left over, so nothing is a filler here.
    assert _kept(sel)[0] == [[0, 1], [2, 3]]
    assert sel.key_mask[0, 1].tolist() == [True, False]  # padding is never an attention key
    # A filler: expert 0 chosen by one token only, c = 2 -> an unchosen token fills the slot.
    x = torch.tensor([[[1.0, 0], [0, 2], [0, 1], [0, 3]]])
    sel = router(x, torch.ones(1, 4, dtype=torch.bool))
    assert _kept(sel)[0][0] == [0, 1]
    assert sel.stats["tokens_per_expert"].tolist() == [1.0, 2.0]  # fillers are not assignments
    assert sel.weight is None


def test_patch_selection_scores_patches_by_their_real_tokens() -> None:
    # L = 7, p = 2 -> patches {0,1} {2,3} {4,5} {6}; length 5 -> token 5 and 6 are padding.
    logits = torch.tensor([[[3.0, 0], [3, 0], [0, 3], [1, 0], [2, 0], [0, 9], [0, 9]]])
    mask = lengths_to_mask(torch.tensor([5]), 7)
    router = _router(2, 1, Capacity("fraction", 0.34), patch_size=2)  # 3 real patches -> c = 1
    sel = router(logits, mask)
    # Expert 0 patch scores (mean gate probability of its real choosers): patch 0 = s(3),
    # patch 1 = s(1) / 2, patch 2 = s(2) (token 5 is padding, not counted); c = 1 -> patch 0.
    assert _kept(sel)[0][0] == [0, 1]
    # Expert 1 was chosen by token 2 only, but keeps its whole patch (token 3 too).
    assert _kept(sel)[0][1] == [2, 3]
    router = _router(2, 1, Capacity("fraction", 1.0), patch_size=2)
    sel = router(logits, mask)
    assert _kept(sel)[0] == [[0, 1, 2, 3, 4], [2, 3]]  # whole patches; padding 5 never kept
    torch.testing.assert_close(sel.weight[0, 1][sel.valid[0, 1]], torch.full((2,), 0.5))
    assert sel.stats["tokens_per_expert"].tolist() == [5.0, 2.0]


def test_per_sample_routing_sends_the_whole_sequence_by_its_masked_mean() -> None:
    torch.manual_seed(1)
    x = torch.randn(3, 8, 4)
    mask = lengths_to_mask(torch.tensor([8, 5, 2]), 8)
    router = _router(4, 2, Capacity("factor", 2.0), level="sample")
    sel = router(x, mask)
    for b, n in enumerate([8, 5, 2]):
        experts = set(x[b, :n].mean(0).softmax(-1).topk(2).indices.tolist())
        for e, kept in enumerate(_kept(sel)[b]):
            assert kept == (list(range(n)) if e in experts else [])
    noisy = x.clone()
    noisy[~mask] = 100.0  # padding content must not move the routing
    assert _kept(router(noisy, mask)) == _kept(sel)


@pytest.mark.parametrize("mask_padding", [True, False])
def test_max_load_capacity_drops_nothing(mask_padding: bool) -> None:
    torch.manual_seed(2)
    x = torch.randn(4, 10, 3)
    mask = lengths_to_mask(torch.tensor([10, 6, 3, 8]), 10)
    sel = _router(3, 1, Capacity("max_load"), mask_padding=mask_padding)(x, mask)
    assert sel.stats["dropped_fraction"] == 0
    routed = mask if mask_padding else torch.ones_like(mask)
    choice = x.argmax(-1)  # (B, L) top-1 of the identity gate
    loads = torch.stack([((choice == e) & routed).sum(1) for e in range(3)], 1)  # (B, E)
    # Corrected: each sequence as wide as its busiest expert; released: the batch's busiest row.
    slots = sel.positions.shape[-1]
    assert slots == int(loads.max())
    if not mask_padding:
        assert sel.valid.sum((1, 2)).tolist() == [3 * slots] * 4  # fillers everywhere
    else:
        assert sel.valid.sum((1, 2)).tolist() == mask.sum(1).tolist()


def test_factor_and_fraction_capacities() -> None:
    x = torch.zeros(2, 12, 4)  # uniform gate: every expert equally wanted
    mask = lengths_to_mask(torch.tensor([12, 8]), 12)
    sel = _router(4, 2, Capacity("factor", 1.0))(x, mask)
    assert sel.valid.sum(-1).amax(-1).tolist() == [6, 4]  # ceil(1 * 2 * n / 4) per sequence
    sel = _router(4, 2, Capacity("fraction", 0.5), mask_padding=False)(x, mask)
    assert sel.valid.sum(-1).tolist() == [[6] * 4, [6] * 4]  # released: floor(L / 2), L padded


def test_balance_loss_formula_on_a_hand_built_routing() -> None:
    probs = torch.tensor([[[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]])  # (1, 3, 2)
    chosen = torch.tensor([[[True, False], [True, False], [False, True]]])
    real = torch.ones(1, 3, dtype=torch.bool)
    # f = (2/3, 1/3), P = (0.6, 0.4): 2 * (2/3 * 0.6 + 1/3 * 0.4) = 16/15.
    assert balance_loss(probs, chosen, 1, real).item() == pytest.approx(16 / 15)
    uniform = torch.full((1, 4, 4), 0.25)
    eye = torch.eye(4, dtype=torch.bool)[None]
    assert balance_loss(uniform, eye, 1, torch.ones(1, 4, dtype=torch.bool)).item() == 1.0
    # A padded position counts in neither f nor P: the same 16/15 with a junk row appended.
    padded_probs = torch.cat([probs, torch.tensor([[[0.0, 1.0]]])], 1)  # (1, 4, 2)
    padded_chosen = torch.cat([chosen, torch.tensor([[[False, True]]])], 1)
    mask = torch.tensor([[True, True, True, False]])
    assert balance_loss(padded_probs, padded_chosen, 1, mask).item() == pytest.approx(16 / 15)


def test_router_reports_the_balance_loss_of_its_real_tokens() -> None:
    torch.manual_seed(3)
    x = torch.randn(2, 6, 3)
    mask = lengths_to_mask(torch.tensor([6, 4]), 6)
    sel = _router(3, 2, Capacity("factor", 1.0), balance_loss_weight=0.1)(x, mask)
    probs = x[mask].softmax(-1)  # (N, E), real tokens only
    top = probs.topk(2, -1).indices
    share = torch.stack([(top == e).any(-1).float().mean() / 2 for e in range(3)])
    want = 3 * (share * probs.mean(0)).sum()
    assert sel.aux_loss.item() == pytest.approx(want.item(), rel=1e-6)
    assert sel.stats["aux_loss"].item() == pytest.approx(want.item(), rel=1e-6)


def test_statistics_are_consistent_with_the_selection() -> None:
    torch.manual_seed(4)
    x = torch.randn(6, 20, 4)
    mask = lengths_to_mask(torch.tensor([20, 15, 11, 7, 20, 3]), 20)
    sel = _router(4, 2, Capacity("factor", 0.8))(x, mask)
    per_expert = sel.stats["tokens_per_expert"]
    assert per_expert.tolist() == sel.valid.sum((0, 2)).float().tolist()
    kept, asked = per_expert.sum().item(), 2 * mask.sum().item()
    assert sel.stats["dropped_fraction"].item() == pytest.approx(1 - kept / asked)
    mean = per_expert.mean()
    assert sel.stats["load_max_over_mean"].item() == pytest.approx((per_expert.max() / mean).item())
    want_cv = (per_expert - mean).pow(2).mean().sqrt() / mean
    assert sel.stats["load_cv"].item() == pytest.approx(want_cv.item())
    assert sel.stats["aux_loss"].item() == 0.0  # no balance loss configured

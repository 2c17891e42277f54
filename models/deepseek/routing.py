"""Router math for DeepSeekMoE and DeepSeek-V3, on fp32 router logits of the real tokens only.

DeepSeekMoE (2401.06066, eqs. 11-12): s = softmax over the routed experts of u_t e_i; the gate
of each of the top-k experts is its s, NOT renormalised over the k. Its expert-level balance
loss is alpha1 * sum_i f_i P_i with f_i = N'/(K' T) * (tokens choosing i), P_i = mean_t s_i;
that is `models.moe.routing.balance_loss` (E * sum_i (count_i / (T k)) * P_i), reused as is.

DeepSeek-V3 (2412.19437, eqs. 12-20): s = sigmoid(u_t e_i); the top-k experts are chosen on
s + b (b: the balancing bias, no gradient); their gates are the UNBIASED s renormalised over the
selected experts, times the routed scaling factor. Group-limited routing (the paper's node limit;
`model.py`'s n_groups / topk_groups) first keeps the `topk_groups` groups whose two largest
s + b sum highest, then takes the top-k within them. The auxiliary-loss-free update moves each
bias by gamma toward the mean load: b_i += gamma * sign(mean_j load_j - load_i). The
sequence-wise balance loss is alpha * sum_i f_i P_i within each sequence, f_i = N_r/(K_r T) *
(tokens of the sequence that selected i), P_i = mean over the sequence of s_i / sum_j s_j; the
paper writes f with the top-k of s, we count the experts actually selected (on s + b, as
Megatron-Core does; the two agree while b = 0). A batch's loss is the mean over its sequences.
"""

from __future__ import annotations

import torch

from models.moe.routing import Routing


def softmax_top_k(logits: torch.Tensor, k: int) -> Routing:
    """DeepSeekMoE: (T, E) logits -> top-k of softmax(logits), gates = those probabilities (not
    renormalised; they sum to < 1). Dropless."""
    if not 1 <= k <= logits.shape[1]:
        raise ValueError(f"top_k={k} must be in 1..experts={logits.shape[1]}")
    probs = torch.softmax(logits.float(), dim=-1)  # (T, E)
    gate, chosen = probs.topk(k, dim=-1)  # (T, k) each
    return Routing(expert=chosen, gate=gate, chosen=chosen)


def sigmoid_bias_top_k(
    logits: torch.Tensor,
    bias: torch.Tensor,
    k: int,
    *,
    groups: int = 1,
    topk_groups: int = 1,
    scaling: float = 1.0,
) -> Routing:
    """DeepSeek-V3: (T, E) logits, (E,) bias -> top-k of sigmoid(logits) + bias (within the best
    `topk_groups` of `groups` expert groups), gates = the chosen sigmoids renormalised over the
    k, times `scaling`. Dropless."""
    tokens, experts = logits.shape
    scores = torch.sigmoid(logits.float())  # (T, E)
    biased = scores + bias.float()  # (T, E); selection only: the gates use `scores`
    if groups > 1:
        grouped = biased.view(tokens, groups, experts // groups)  # (T, G, E/G)
        group_score = grouped.topk(2, dim=-1).values.sum(-1)  # (T, G)
        best = group_score.topk(topk_groups, dim=-1).indices  # (T, topk_groups)
        keep = torch.zeros(tokens, groups, dtype=torch.bool, device=logits.device)
        keep = keep.scatter(1, best, True)  # (T, G)
        biased = grouped.masked_fill(~keep[..., None], float("-inf")).view(tokens, experts)
    chosen = biased.topk(k, dim=-1).indices  # (T, k)
    picked = scores.gather(1, chosen)  # (T, k)
    gate = picked / picked.sum(-1, keepdim=True) * scaling
    return Routing(expert=chosen, gate=gate, chosen=chosen)


def sequence_balance_loss(
    logits: torch.Tensor, chosen: torch.Tensor, sequence: torch.Tensor, sequences: int
) -> torch.Tensor:
    """DeepSeek-V3's sequence-wise balance loss (unweighted), the mean over sequences of
    sum_i f_i P_i (module doc). logits (T, E) and chosen (T, k) of the real tokens, sequence (T,)
    the sequence of each, in 0..sequences-1. Gradient through P only; 0 for no tokens."""
    tokens, experts = logits.shape
    if tokens == 0:
        return logits.new_zeros(())
    k = chosen.shape[1]
    scores = torch.sigmoid(logits.float())  # (T, E)
    share = scores / scores.sum(-1, keepdim=True)  # (T, E)
    per_seq = torch.bincount(sequence, minlength=sequences).float()  # (S,) tokens
    present = per_seq > 0
    summed = share.new_zeros(sequences, experts).index_add(0, sequence, share)  # (S, E)
    cell = sequence[:, None] * experts + chosen  # (T, k) flat (sequence, expert)
    counts = torch.bincount(cell.reshape(-1), minlength=sequences * experts).float()
    counts = counts.view(sequences, experts)  # (S, E)
    denom = per_seq.clamp_min(1.0)[:, None]  # (S, 1)
    f = experts / (k * denom) * counts  # (S, E)
    p = summed / denom  # (S, E)
    per_sequence = (f * p).sum(-1)  # (S,)
    return per_sequence[present].mean()


def bias_step(bias: torch.Tensor, chosen: torch.Tensor, gamma: float) -> torch.Tensor:
    """The auxiliary-loss-free update: the new (E,) bias after a step whose real tokens chose
    `chosen` (T, k): b_i + gamma * sign(mean load - load_i). No tokens: unchanged."""
    if chosen.numel() == 0:
        return bias
    load = torch.bincount(chosen.reshape(-1), minlength=bias.shape[0]).to(bias.dtype)  # (E,)
    return bias + gamma * torch.sign(load.mean() - load)

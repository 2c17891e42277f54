"""MoA, Mixture of Attention heads (Zhang et al. 2022, arXiv 2210.05144): a token mixer whose
attention heads are experts chosen per token.

Expert e is one attention head with its own query projection W_q[e] (D -> Dh) and output
projection W_o[e] (Dh -> D); the key and value projections (D -> Dh each) are shared by all
experts. A router scores every real token, keeps its top-k experts and weights them by the
softmax over those k logits (the paper's G(x) = Softmax(TopK(x W_g)); the MoA code normalises
the top-k of the full softmax, the same numbers), so

    y_t = sum_{e in topk(t)} g_{t,e} softmax(q_{t,e} K^T / sqrt(Dh)) V W_o[e] + b_o,
    q_{t,e} = x_t W_q[e],  K = X W_k + b_k,  V = X W_v + b_v.

Because K and V are shared, the query of slot j of token t needs only its own expert's W_q:
the k query slots of every token form k "heads" of one SDPA call over the shared keys, so the
attention costs k heads, whichever experts they are. The expert projections run as grouped
GEMMs over the (token, expert) rows (`models.kernels`). No capacity: nothing is dropped, so a
sequence's output never depends on its batch-mates. Padding is never routed (its output is the
bias only) and is never a key. `causal=True` lets query t see keys <= t only; the routing is
per token, so it needs nothing more.

Auxiliary losses (the paper's §3.3, the MoA code's `switchloss` and `zloss`): the load-balancing
loss E * sum_e f_e P_e (f_e the fraction of the (token, expert) assignments given to e, P_e the
mean router probability of e), weighted by `balance_loss_weight`, and the router z-loss
mean_t logsumexp(logits_t)^2, weighted by `z_loss_weight`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.kernels import Dispatch, grouped_mm, permute, take_rows, unpermute
from models.kernels.dispatch import choose, describe, multiplied_rows
from models.layers.lazy_stats import LazyStats
from models.layers.parts import PartAux, size
from models.layers.ranges import ATTENTION, COMBINE, DISPATCH, EXPERT_GEMM, ROUTER, phase

MOA_STAT_KEYS = (
    "tokens_per_expert",
    "load_max_over_mean",
    "load_cv",
    "dropped_fraction",
    "aux_loss",
    "z_loss",
)


class MixtureOfAttentionHeads(nn.Module):
    phases = (ROUTER, DISPATCH, EXPERT_GEMM, ATTENTION, COMBINE)

    def __init__(
        self,
        dim: int,
        head_dim: int,
        experts: int,
        top_k: int,
        attn_dropout: float,
        *,
        balance_loss_weight: float = 0.0,
        z_loss_weight: float = 0.0,
        causal: bool = False,
    ) -> None:
        super().__init__()
        if not 1 <= top_k <= experts:
            raise ValueError(f"top_k={top_k} must be in 1..experts={experts}")
        self.dim, self.head_dim, self.experts, self.top_k = dim, head_dim, experts, top_k
        self.attn_dropout = attn_dropout
        self.balance_loss_weight = balance_loss_weight
        self.z_loss_weight = z_loss_weight
        self.causal = causal
        self.router = nn.Linear(dim, experts, bias=False)
        self.kv = nn.Linear(dim, 2 * head_dim)  # [k | v], shared by every expert
        self.w_q = nn.Parameter(torch.empty(experts, dim, head_dim))  # (E, D, Dh)
        self.w_o = nn.Parameter(torch.empty(experts, head_dim, dim))  # (E, Dh, D)
        self.out_bias = nn.Parameter(torch.zeros(dim))  # (D,), once per token
        # nn.Linear's default law per expert (fan-in D for W_q, k Dh for W_o: k heads are summed).
        nn.init.uniform_(self.w_q, -(dim**-0.5), dim**-0.5)
        bound = (top_k * head_dim) ** -0.5
        nn.init.uniform_(self.w_o, -bound, bound)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """x (B, L, D), mask (B, L) bool (True = real) -> (B, L, D), PartAux."""
        batch, length, dim = x.shape
        k, head_dim, experts = self.top_k, self.head_dim, self.experts
        flat = x.reshape(batch * length, dim)  # (N, D)
        with phase(ROUTER):
            real = None if bool(mask.all()) else mask.reshape(-1).nonzero().squeeze(1)  # (T,)
            tokens = flat if real is None else flat.index_select(0, real)  # (T, D)
            logits = self.router(tokens).float()  # (T, E)
            chosen, gate = self.route(logits)  # (T, k) each
        with phase(DISPATCH):
            plan = Dispatch.top_k(chosen, experts, token_ids=real, num_tokens=batch * length)
            rows = permute(flat, plan)  # (A, D), A = T k
            # Slot j of token n lives at n k + j of the (N k) query table.
            slot = plan.token_index * k + torch.remainder(plan.order, k)  # (A,)
        impl = self.gemm_kernel(rows.shape[0])
        with phase(EXPERT_GEMM):
            q_rows = grouped_mm(rows, self.w_q, plan.offsets, impl=impl)  # (A, Dh)
            q = q_rows.new_zeros(batch * length * k, head_dim).index_copy(0, slot, q_rows)
        q = q.view(batch, length, k, head_dim).transpose(1, 2)  # (B, k, L, Dh)
        keys, values = self.kv(x).unsqueeze(1).chunk(2, dim=-1)  # (B, 1, L, Dh) each
        keys = keys.expand(batch, k, length, head_dim)  # (B, k, L, Dh), a view
        values = values.expand(batch, k, length, head_dim)
        with phase(ATTENTION):
            attended = F.scaled_dot_product_attention(
                q,
                keys,
                values,
                attn_mask=attention_mask(mask, self.causal),
                dropout_p=self.attn_dropout if self.training else 0.0,
            )  # (B, k, L, Dh)
        attended = attended.transpose(1, 2).reshape(batch * length * k, head_dim)  # (N k, Dh)
        with phase(EXPERT_GEMM):
            out = grouped_mm(take_rows(attended, slot), self.w_o, plan.offsets, impl=impl)
        with phase(COMBINE):
            row_gate = gate.reshape(-1)[plan.order]  # (A,)
            y = unpermute(out, plan, row_gate).to(x.dtype) + self.out_bias  # (N, D)
        with phase(ROUTER):
            loss, balance, z = self._router_loss(logits, chosen)

        def stats() -> dict[str, torch.Tensor]:
            bal = balance if balance is not None else balance_loss(logits, chosen)
            zl = z if z is not None else z_loss(logits)
            return moa_stats(chosen, experts, bal, zl)

        sizes = {"tokens": tokens.shape[0], "rows": multiplied_rows(impl, plan.counts)}
        aux = PartAux(loss=loss, stats=LazyStats(MOA_STAT_KEYS, stats), sizes=sizes, kernel=impl)
        return y.view(batch, length, dim), aux

    def route(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, E) fp32 logits -> (chosen (T, k), gate (T, k)): the k largest logits of each
        token and the softmax over those k (the gates of a token sum to 1)."""
        top, chosen = logits.topk(self.top_k, dim=-1)  # (T, k) each
        return chosen, torch.softmax(top, dim=-1)

    def _router_loss(
        self, logits: torch.Tensor, chosen: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """(weighted loss or None, balance loss or None, z-loss or None): a loss whose weight
        is 0 is not computed here (the statistics compute it when read)."""
        loss = balance = z = None
        if self.balance_loss_weight:
            balance = balance_loss(logits, chosen)
            loss = self.balance_loss_weight * balance
        if self.z_loss_weight:
            z = z_loss(logits)
            weighted = self.z_loss_weight * z
            loss = weighted if loss is None else loss + weighted
        return loss, balance, z

    def gemm_kernel(self, rows: int | None = None) -> str:
        """The grouped-GEMM implementation of both expert projections of a call with `rows`
        rows (`dispatch.choose`); without `rows`, the policy as one line."""
        return describe(self.w_q) if rows is None else choose(self.w_q, rows=rows)

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        """Forward FLOPs of a call on x (B, L, D): the router over the routed tokens, the
        shared K/V projection over every position, the expert projections over the rows the
        call multiplied, and k heads of attention over every position (SDPA multiplies the
        padded rows too)."""
        batch, length, dim = x_shape
        tokens, rows = size(aux, "tokens"), size(aux, "rows")
        square = 2.0 * batch * self.top_k * length * length * self.head_dim
        return {
            "router": 2.0 * tokens * dim * self.experts,
            "kv_proj": 2.0 * batch * length * dim * 2 * self.head_dim,
            "q_proj": 2.0 * rows * dim * self.head_dim,
            "attn_scores": square,
            "attn_values": square,
            "out_proj": 2.0 * rows * self.head_dim * dim,
        }

    def inactive_parameter_count(self) -> int:
        """A token uses top_k of the E experts' W_q and W_o; router, K/V and bias always."""
        per_expert = self.w_q[0].numel() + self.w_o[0].numel()
        return per_expert * (self.experts - self.top_k)


def attention_mask(mask: torch.Tensor, causal: bool) -> torch.Tensor:
    """(B, L) bool real-token mask -> the SDPA boolean mask (True = may attend): real keys,
    (B, 1, 1, L); with `causal`, also keys at or before the query, (B, 1, L, L)."""
    keys = mask[:, None, None, :]  # (B, 1, 1, L)
    if not causal:
        return keys
    length = mask.shape[1]
    order = torch.ones(length, length, dtype=torch.bool, device=mask.device).tril()  # (L, L)
    return keys & order  # (B, 1, L, L)


def balance_loss(logits: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """E * sum_e f_e P_e over (T, E) logits and (T, k) choices; 0 for no tokens."""
    tokens, experts = logits.shape
    if tokens == 0:
        return logits.new_zeros(())
    probs = torch.softmax(logits, dim=-1)  # (T, E)
    fraction = torch.bincount(chosen.reshape(-1), minlength=experts).float() / chosen.numel()
    return experts * (fraction * probs.mean(0)).sum()


def z_loss(logits: torch.Tensor) -> torch.Tensor:
    """mean_t logsumexp(logits_t)^2; 0 for no tokens."""
    if logits.shape[0] == 0:
        return logits.new_zeros(())
    return torch.logsumexp(logits, dim=-1).square().mean()


def moa_stats(
    chosen: torch.Tensor, experts: int, balance: torch.Tensor, z: torch.Tensor
) -> dict[str, torch.Tensor]:
    """MOA_STAT_KEYS from (T, k) choices: assignments per expert (E,), their max / mean and
    coefficient of variation, the dropped fraction (0: MoA has no capacity), both losses."""
    per_expert = torch.bincount(chosen.reshape(-1), minlength=experts).float()  # (E,)
    mean = per_expert.mean().clamp_min(1e-12)
    return {
        "tokens_per_expert": per_expert,
        "load_max_over_mean": per_expert.max() / mean,
        "load_cv": per_expert.std(unbiased=False) / mean,
        "dropped_fraction": torch.tensor(0.0),
        "aux_loss": balance.detach().float(),
        "z_loss": z.detach().float(),
    }

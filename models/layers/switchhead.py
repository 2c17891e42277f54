"""SwitchHead (Csordás et al. 2024, arXiv 2312.07987): attention whose value and output
projections are mixtures of experts, gated by sigmoids (non-competitive), so few attention
matrices (heads) carry the capacity of many.

Each of the H heads has a dense query and key projection (D -> Dh) and E value experts
W_V[h, e] (D -> Dh) and E output experts W_O[h, e] (Dh -> D). Two selectors per head score
E experts with a sigmoid: the source side s^V = sigmoid(x W_S[h]) picks the value experts of
each key/value token, the destination side s^O = sigmoid(x W_D[h]) the output experts of each
query token; each keeps its top-k and weights them by their sigmoid scores (no
renormalisation), so with A^h = softmax(Q^h K^hT / sqrt(Dh)):

    V^h_s = sum_{e in topk(s^V_{s,h})} s^V_{s,h,e} x_s W_V[h, e]
    y_t   = sum_h sum_{e in topk(s^O_{t,h})} s^O_{t,h,e} (A^h V^h)_t W_O[h, e]

(the paper's equations 9-12 and the authors' `moe_attention` code: selection on the raw logits,
sigmoid of the selected ones; no biases). Expert rows run as grouped GEMMs over (token, head)
rows, expert h E + e. The paper trains it without a balancing loss; this part has none.
Padding is never routed (its V rows are 0 and it is never a key; its output is 0). No
capacity: a sequence's output never depends on its batch-mates. `causal=True` lets query t see
keys <= t only; both selections are per token, so they need nothing more.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.kernels import Dispatch, grouped_mm, permute, unpermute
from models.kernels.dispatch import choose, describe, multiplied_rows
from models.layers.lazy_stats import LazyStats
from models.layers.moa import attention_mask
from models.layers.parts import PartAux, size
from models.layers.ranges import ATTENTION, COMBINE, DISPATCH, EXPERT_GEMM, ROUTER, phase

SWITCHHEAD_STAT_KEYS = (
    "tokens_per_expert",
    "value_tokens_per_expert",
    "load_max_over_mean",
    "load_cv",
    "dropped_fraction",
)


class SwitchHeadAttention(nn.Module):
    phases = (ROUTER, DISPATCH, EXPERT_GEMM, ATTENTION, COMBINE)

    def __init__(
        self,
        dim: int,
        heads: int,
        head_dim: int,
        experts: int,
        top_k: int,
        attn_dropout: float,
        *,
        causal: bool = False,
    ) -> None:
        super().__init__()
        if not 1 <= top_k <= experts:
            raise ValueError(f"top_k={top_k} must be in 1..experts={experts}")
        self.dim, self.heads, self.head_dim = dim, heads, head_dim
        self.experts, self.top_k = experts, top_k
        self.attn_dropout = attn_dropout
        self.causal = causal
        self.qk = nn.Linear(dim, 2 * heads * head_dim, bias=False)  # [q | k], H heads each
        self.source_selector = nn.Linear(dim, heads * experts, bias=False)  # value experts
        self.dest_selector = nn.Linear(dim, heads * experts, bias=False)  # output experts
        self.w_v = nn.Parameter(torch.empty(heads * experts, dim, head_dim))  # (H E, D, Dh)
        self.w_o = nn.Parameter(torch.empty(heads * experts, head_dim, dim))  # (H E, Dh, D)
        # nn.Linear's default law: fan-in D for W_V, H Dh for W_O (the heads' outputs are summed).
        nn.init.uniform_(self.w_v, -(dim**-0.5), dim**-0.5)
        bound = (heads * head_dim) ** -0.5
        nn.init.uniform_(self.w_o, -bound, bound)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """x (B, L, D), mask (B, L) bool (True = real) -> (B, L, D), PartAux."""
        batch, length, dim = x.shape
        heads, head_dim, experts = self.heads, self.head_dim, self.experts
        n = batch * length
        flat = x.reshape(n, dim)  # (N, D)
        with phase(ROUTER):
            real = None if bool(mask.all()) else mask.reshape(-1).nonzero().squeeze(1)  # (T,)
            tokens = flat if real is None else flat.index_select(0, real)  # (T, D)
            chosen_v, gate_v = self.select(self.source_selector(tokens).float())  # (T, H, k)
            chosen_o, gate_o = self.select(self.dest_selector(tokens).float())  # (T, H, k)
        with phase(DISPATCH):
            # Row (token n, head h) is n H + h: each head sums its own experts' outputs.
            ids = torch.arange(n, device=x.device) if real is None else real  # (T,)
            pair_ids = (ids[:, None] * heads + torch.arange(heads, device=x.device)).reshape(-1)
            plan_v = self._plan(chosen_v, pair_ids, n * heads)
            plan_o = self._plan(chosen_o, pair_ids, n * heads)
            per_pair = flat[:, None, :].expand(n, heads, dim).reshape(n * heads, dim)  # (N H, D)
            rows_v = permute(per_pair, plan_v)  # (A_v, D)
        impl = self.gemm_kernel(rows_v.shape[0])
        with phase(EXPERT_GEMM):
            v_rows = grouped_mm(rows_v, self.w_v, plan_v.offsets, impl=impl)  # (A_v, Dh)
        with phase(COMBINE):
            v = unpermute(v_rows, plan_v, gate_v.reshape(-1)[plan_v.order])  # (N H, Dh)
        v = v.view(batch, length, heads, head_dim).transpose(1, 2)  # (B, H, L, Dh)
        qk = self.qk(x).view(batch, length, 2, heads, head_dim)  # (B, L, 2, H, Dh)
        q, k = qk.permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, L, Dh) each
        with phase(ATTENTION):
            attended = F.scaled_dot_product_attention(
                q,
                k,
                v.to(q.dtype),
                attn_mask=attention_mask(mask, self.causal),
                dropout_p=self.attn_dropout if self.training else 0.0,
            )  # (B, H, L, Dh)
        attended = attended.transpose(1, 2).reshape(n * heads, head_dim)  # (N H, Dh)
        with phase(DISPATCH):
            rows_o = permute(attended, plan_o)  # (A_o, Dh)
        with phase(EXPERT_GEMM):
            out = grouped_mm(rows_o, self.w_o, plan_o.offsets, impl=impl)  # (A_o, D)
        with phase(COMBINE):
            per_head = unpermute(out, plan_o, gate_o.reshape(-1)[plan_o.order])  # (N H, D)
            y = per_head.view(n, heads, dim).sum(1).to(x.dtype)  # (N, D)

        slots = heads * experts

        def stats() -> dict[str, torch.Tensor]:
            return switchhead_stats(chosen_v, chosen_o, experts, slots)

        sizes = {
            "tokens": tokens.shape[0],
            "value_rows": multiplied_rows(impl, plan_v.counts),
            "output_rows": multiplied_rows(impl, plan_o.counts),
        }
        aux = PartAux(stats=LazyStats(SWITCHHEAD_STAT_KEYS, stats), sizes=sizes, kernel=impl)
        return y.view(batch, length, dim), aux

    def select(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, H E) fp32 selector logits -> (chosen (T, H, k) expert of each head, gate
        (T, H, k)): per head the k largest logits, each weighted by its own sigmoid."""
        per_head = logits.view(logits.shape[0], self.heads, self.experts)  # (T, H, E)
        top, chosen = per_head.topk(self.top_k, dim=-1)  # (T, H, k) each
        return chosen, torch.sigmoid(top)

    def _plan(self, chosen: torch.Tensor, pair_ids: torch.Tensor, pairs: int) -> Dispatch:
        """(T, H, k) per-head choices -> the Dispatch of (token, head) rows to the H E
        experts (head h's expert e is h E + e)."""
        offset = torch.arange(self.heads, device=chosen.device)[None, :, None] * self.experts
        flat_experts = (chosen + offset).reshape(-1, self.top_k)  # (T H, k)
        return Dispatch.top_k(
            flat_experts, self.heads * self.experts, token_ids=pair_ids, num_tokens=pairs
        )

    def gemm_kernel(self, rows: int | None = None) -> str:
        """The grouped-GEMM implementation of both expert projections of a call with `rows`
        value rows (`dispatch.choose`); without `rows`, the policy as one line."""
        return describe(self.w_v) if rows is None else choose(self.w_v, rows=rows)

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        """Forward FLOPs of a call on x (B, L, D): both selectors over the routed tokens, the
        dense Q/K projection over every position, the value and output experts over the rows
        the call multiplied, and H heads of attention over every position."""
        batch, length, dim = x_shape
        heads, head_dim = self.heads, self.head_dim
        tokens = size(aux, "tokens")
        square = 2.0 * batch * heads * length * length * head_dim
        return {
            "router": 2.0 * tokens * dim * 2 * heads * self.experts,
            "qk_proj": 2.0 * batch * length * dim * 2 * heads * head_dim,
            "v_proj": 2.0 * size(aux, "value_rows") * dim * head_dim,
            "attn_scores": square,
            "attn_values": square,
            "out_proj": 2.0 * size(aux, "output_rows") * head_dim * dim,
        }

    def inactive_parameter_count(self) -> int:
        """Each head uses top_k of its E value and output experts; Q/K and selectors always."""
        per_expert = self.w_v[0].numel() + self.w_o[0].numel()
        return per_expert * self.heads * (self.experts - self.top_k)


def switchhead_stats(
    chosen_v: torch.Tensor, chosen_o: torch.Tensor, experts: int, slots: int
) -> dict[str, torch.Tensor]:
    """SWITCHHEAD_STAT_KEYS from the (T, H, k) choices: (token, head) assignments per output
    expert (H E,), head-major (`tokens_per_expert`, the load the statistics describe) and per
    value expert (`value_tokens_per_expert`); the dropped fraction is 0 (no capacity)."""
    heads = chosen_o.shape[1]
    offset = torch.arange(heads, device=chosen_o.device)[None, :, None] * experts
    per_out = torch.bincount((chosen_o + offset).reshape(-1), minlength=slots).float()
    per_value = torch.bincount((chosen_v + offset).reshape(-1), minlength=slots).float()
    mean = per_out.mean().clamp_min(1e-12)
    return {
        "tokens_per_expert": per_out,
        "value_tokens_per_expert": per_value,
        "load_max_over_mean": per_out.max() / mean,
        "load_cv": per_out.std(unbiased=False) / mean,
        "dropped_fraction": torch.tensor(0.0),
    }

"""SMHA (selective multi-head attention): the UoE token mixer, one expert per attention head.

Each head-expert e projects only the tokens the router gave it (through the grouped GEMM of
`models.kernels`), attends among those tokens alone (keys restricted to real tokens), projects
back with its row slice of W_o, and the outputs are scatter-added to the tokens' positions
(weighted by the gate in the corrected behaviour). The output bias is added once per token.
With every head taking every token this is exactly the dense `MultiHeadAttention`.

`released=True` (uoe_paper) is the released `sparse_attention_v3.SparseSelfAttention`:
- each head-expert has its own output bias b_o[e] (E, D), added to every row it computes, so a
  token gets one per head that took it (a dense split loads b_o / E into each);
- Xavier-normal expert slices, zero biases (`release_init`), and its unused `kv_norm` and
  `layer_norm` (`released_unused`, counted, never called);
- keys are masked as released, scores - 1e6 (1 - key mask): a row whose slots hold no real
  key (padding routed to a head) gets a near-unmasked softmax over its slots instead of NaN.
  Those rows are read: padding is scatter-added back and later competes for the MLP's slots.
The corrected behaviour gives such a row slot 0 as its only key (its outputs are never read).

`causal=True` (a language model): a slot sees only the slots of its head holding tokens at or
before its own position (slots carry their token's position, `Selection.positions`), on top of
the key mask. Whether the routing itself is causal is the router's business
(`routing.causal_obstacle`); the released routing is not, and is kept so.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.kernels import grouped_mm, permute, take_rows, unpermute
from models.kernels.dispatch import choose, describe, multiplied_rows
from models.kernels.permute import add_expert_bias
from models.layers.parts import PartAux, size
from models.layers.ranges import ATTENTION, COMBINE, DISPATCH, EXPERT_GEMM, ROUTER, phase
from models.uoe.decompose import AttentionExperts, split_attention
from models.uoe.recompute import recomputed
from models.uoe.release_init import parameter_count, unused_attention_modules, xavier_slices
from models.uoe.routing import Router, RoutingConfig, dispatch

RELEASED_KEY_PENALTY = 1e6  # the released score offset of a masked key


class _PutUnique(torch.autograd.Function):
    """rows (A, N) -> (R, N) zeros with row index[i] = rows[i], at DISTINCT indices; backward:
    the gather of those rows. `index_copy` computes the same but keeps `rows` for its backward
    (it saves its source), which a distinct-index copy never needs."""

    @staticmethod
    def forward(ctx, rows, index, total):
        ctx.save_for_backward(index)
        return rows.new_zeros(total, rows.shape[1]).index_copy(0, index, rows)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (index,) = ctx.saved_tensors
        return grad.index_select(0, index), None, None


def put_rows(rows: torch.Tensor, index: torch.Tensor, total: int) -> torch.Tensor:
    """rows (A, N) into a zero (total, N) table at DISTINCT rows `index` (a Dispatch's order)."""
    return _PutUnique.apply(rows, index, int(total))  # int(): a plain int under the JIT tracer


class SelectiveAttention(nn.Module):
    phases = (ROUTER, DISPATCH, EXPERT_GEMM, ATTENTION, COMBINE)

    def __init__(
        self,
        dim: int,
        heads: int,
        routing: RoutingConfig,
        attn_dropout: float,
        *,
        released: bool = False,
        causal: bool = False,
    ) -> None:
        super().__init__()
        if routing.num_experts != heads:
            raise ValueError(
                f"SMHA has one expert per head: num_experts {routing.num_experts} != heads {heads}"
            )
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.attn_dropout = attn_dropout
        self.released = released
        self.causal = causal
        self.router = Router(dim, routing)
        head_dim = self.head_dim
        if released:
            self.qkv_weight = nn.Parameter(xavier_slices(heads, dim, 3 * head_dim))  # (E, D, 3 Dh)
            self.qkv_bias = nn.Parameter(torch.zeros(heads, 3 * head_dim))  # (E, 3 Dh)
            self.out_weight = nn.Parameter(xavier_slices(heads, head_dim, dim))  # (E, Dh, D)
            self.out_bias = nn.Parameter(torch.zeros(heads, dim))  # (E, D), one per head
            self.released_unused = unused_attention_modules(dim, head_dim)
            return
        # Initialised as the split of a fresh dense layer, so both start from the same law.
        qkv, out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        parts = split_attention(qkv.weight, qkv.bias, out.weight, out.bias, heads)
        self.qkv_weight = nn.Parameter(parts.qkv_weight)  # (E, D, 3 Dh)
        self.qkv_bias = nn.Parameter(parts.qkv_bias)  # (E, 3 Dh)
        self.out_weight = nn.Parameter(parts.out_weight)  # (E, Dh, D)
        self.out_bias = nn.Parameter(parts.out_bias)  # (D,)

    def load_experts(self, parts: AttentionExperts) -> None:
        """Copy decomposed dense weights in (see `decompose.split_attention`); released: each
        head's output bias is b_o / E, so a token taken by every head gets b_o."""
        with torch.no_grad():
            for name in ("qkv_weight", "qkv_bias", "out_weight"):
                getattr(self, name).copy_(getattr(parts, name))
            if self.released:
                self.out_bias.copy_((parts.out_bias / self.heads).expand_as(self.out_bias))
            else:
                self.out_bias.copy_(parts.out_bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """x (B, L, D), mask (B, L) bool -> (B, L, D), PartAux with routing statistics."""
        batch, length, dim = x.shape
        experts, head_dim = self.heads, self.head_dim
        with phase(ROUTER):
            sel = self.router(x, mask)
        slots = sel.positions.shape[-1]
        with phase(DISPATCH):
            plan, row_weight = dispatch(sel, length)
            flat = x.reshape(batch * length, dim)  # (B L, D)
            rows = permute(flat, plan)  # (A, D)
        impl = self.gemm_kernel(rows.shape[0])  # one kernel for both GEMMs
        with phase(EXPERT_GEMM):
            # The backward gathers the rows again from x (kept by the router) instead of
            # keeping them (`recompute`); likewise the heads' outputs from SDPA's output.
            with recomputed((rows, lambda: flat.index_select(0, plan.token_index))):
                qkv = grouped_mm(rows, self.qkv_weight, plan.offsets, impl=impl)  # (A, 3 Dh)
            qkv = add_expert_bias(qkv, self.qkv_bias, plan)
            buffer = put_rows(qkv, plan.order, experts * batch * slots)  # (E B C, 3 Dh)
            del rows, qkv  # nothing keeps them for the backward (`recompute`, `put_rows`)
        q, k, v = buffer.view(experts, batch, slots, 3, head_dim).unbind(3)  # each (E, B, C, Dh)

        keys = sel.key_mask.transpose(0, 1)[:, :, None, :]  # (E, B, 1, C)
        if self.causal:
            where = sel.positions.transpose(0, 1)  # (E, B, C) token position of each slot
            keys = keys & (where[:, :, None, :] <= where[:, :, :, None])  # (E, B, C, C)
        with phase(ATTENTION):
            if self.released:
                attended = self._released_attention(q, k, v, keys)  # (E, B, C, Dh)
            else:
                attended = self._attention(q, k, v, keys)  # (E, B, C, Dh)
        attended = attended.reshape(experts * batch * slots, head_dim)  # (E B C, Dh)
        heads_out = take_rows(attended, plan.order)  # (A, Dh)
        recipes = [(heads_out, lambda: attended.index_select(0, plan.order))]
        # The gate scales each row's Dh values before the output GEMM rather than its D outputs
        # after (the same sum): the backward keeps (A, Dh) for the gate, not (A, D), and makes
        # it again from `attended`. Released: after, as its per-head bias needs.
        fold = row_weight is not None and not self.released
        with phase(EXPERT_GEMM):
            if fold:
                gate = row_weight.to(heads_out.dtype)[:, None]  # (A, 1)
                with recomputed(*recipes):
                    scaled = heads_out * gate  # (A, Dh)
                recipes.append((scaled, lambda: attended.index_select(0, plan.order) * gate))
                heads_out = scaled
                del scaled
            with recomputed(*recipes):
                out = grouped_mm(heads_out, self.out_weight, plan.offsets, impl=impl)  # (A, D)
            del heads_out, recipes  # the backward takes them again from `attended`
            if self.released:
                out = add_expert_bias(out, self.out_bias, plan)  # one bias per head-expert row
        with phase(COMBINE):
            y = unpermute(out, plan, None if fold else row_weight)  # (B L, D)
            if not self.released:
                y = y + self.out_bias

        loss = None
        if sel.aux_loss is not None:
            loss = self.router.cfg.balance_loss_weight * sel.aux_loss
        sizes = {
            "slots": slots,
            "rows": multiplied_rows(impl, plan.counts),  # bmm pads experts
        }
        aux = PartAux(loss=loss, stats=sel.stats, sizes=sizes, kernel=impl)
        return y.view(batch, length, dim), aux

    def _attention(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keys: torch.Tensor
    ) -> torch.Tensor:
        """q, k, v (E, B, C, Dh), keys (E, B, 1 or C, C) bool -> (E, B, C, Dh) through SDPA."""
        # A row with no real key would give NaN; its outputs are never read, so any key will do.
        empty = ~keys.any(-1, keepdim=True)  # (E, B, 1 or C, 1)
        first = torch.arange(keys.shape[-1], device=keys.device) == 0  # (C,)
        keys = keys | (empty & first)
        dropout = self.attn_dropout if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=keys, dropout_p=dropout)

    def _released_attention(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keys: torch.Tensor
    ) -> torch.Tensor:
        """The released softmax(q k^T / sqrt(Dh) - 1e6 (1 - key mask)) v, through SDPA with
        that penalty as an additive mask; keys (E, B, 1 or C, C) bool. The same function,
        without the released code's explicit (E, B, C, C) score and weight matrices, which
        training kept for the backward (most of uoe_paper's memory). Attention dropout is
        SDPA's: the same law as the released `F.dropout` of the weights, another random stream."""
        penalty = -RELEASED_KEY_PENALTY * (1.0 - keys.to(q.dtype))  # (E, B, 1 or C, C)
        dropout = self.attn_dropout if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=penalty, dropout_p=dropout)

    def gemm_kernel(self, rows: int | None = None) -> str:
        """The grouped-GEMM implementation of both projections of a call with `rows` (A) rows
        (`dispatch.choose`); without `rows` (the manifest, before any forward) the policy as
        one line (`dispatch.describe`), since the choice depends on the rows."""
        return describe(self.qkv_weight) if rows is None else choose(self.qkv_weight, rows=rows)

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        """Forward FLOPs of a call on x (B, L, D) (2 per multiply-add, matmuls only), from the
        rows its routing multiplied and its slots per (expert, sequence) row (`aux.sizes`). The
        attention products count every slot of every row: SDPA multiplies them all."""
        batch, length, dim = x_shape
        experts, head_dim = self.heads, self.head_dim
        rows, slots = size(aux, "rows"), size(aux, "slots")
        gated = batch * (length if self.router.cfg.level == "token" else 1)
        square = experts * batch * slots**2 * head_dim
        return {
            "router": 2.0 * gated * dim * experts,
            "qkv_proj": 2.0 * rows * dim * 3 * head_dim,
            "attn_scores": 2.0 * square,
            "attn_values": 2.0 * square,
            "out_proj": 2.0 * rows * head_dim * dim,
        }

    def inactive_parameter_count(self) -> int:
        """A token uses top_k of the E head-experts: the other (E - k) / E of the per-expert
        weights (q/k/v columns and their biases, W_o rows; released: the per-head output biases
        too) are inactive, and so is all of `released_unused`. Router and the shared output bias
        are always active."""
        cfg = self.router.cfg
        per_expert = self.qkv_weight.numel() + self.qkv_bias.numel() + self.out_weight.numel()
        unused = 0
        if self.released:
            per_expert += self.out_bias.numel()
            unused = parameter_count(self.released_unused)
        return per_expert * (cfg.num_experts - cfg.top_k) // cfg.num_experts + unused

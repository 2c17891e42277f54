"""UoME (union of MLP experts): the UoE feed-forward part, E slices of one dense MLP.

Expert e is the column slice e of the up projection and the row slice e of the down projection
(`decompose.split_mlp`); each token's output is the union (sum) of the experts that took it,
scaled by the gate in the corrected behaviour, plus the down bias once. The expert computation is
gather -> grouped GEMM -> GELU -> grouped GEMM -> scatter-add through `models.kernels`.

`released=True` (uoe_paper) is the released `mlps_v2.U_MLP`: each expert has its own down bias
b2[e] (E, D), added to every row it computes, so a token gets one per expert that took it (a
dense split loads b2 / E into each); Xavier-normal expert slices with zero biases
(`release_init`); and its unused `s_gate` and `linear3` (`released_unused`, counted, never
called), for which it needs the task's `max_len`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.kernels import grouped_mm, permute, unpermute
from models.kernels.dispatch import choose, describe, multiplied_rows
from models.kernels.permute import add_expert_bias
from models.layers.parts import PartAux, size
from models.layers.ranges import COMBINE, DISPATCH, EXPERT_GEMM, MOE_PHASES, ROUTER, phase
from models.uoe.decompose import MLPExperts, split_mlp
from models.uoe.recompute import recomputed
from models.uoe.release_init import parameter_count, unused_mlp_modules, xavier_slices
from models.uoe.routing import Router, RoutingConfig, dispatch


class UnionMLP(nn.Module):
    phases = MOE_PHASES

    def __init__(
        self,
        dim: int,
        hidden: int,
        routing: RoutingConfig,
        dropout: float,
        *,
        released_max_len: int = 0,
    ) -> None:
        """released_max_len > 0 builds the released U_MLP (module doc) for inputs of that
        padded length; 0 the project's dense-derived part."""
        super().__init__()
        self.router = Router(dim, routing)
        self.dropout = nn.Dropout(dropout)
        self.released = released_max_len > 0
        experts = routing.num_experts
        if hidden % experts:
            raise ValueError(
                f"MLP hidden size {hidden} cannot be split into {experts} equal experts; "
                "choose model.experts dividing model.ffn_dim"
            )
        if self.released:
            width = hidden // experts
            self.up_weight = nn.Parameter(xavier_slices(experts, dim, width))  # (E, D, Hs)
            self.up_bias = nn.Parameter(torch.zeros(experts, width))  # (E, Hs)
            self.down_weight = nn.Parameter(xavier_slices(experts, width, dim))  # (E, Hs, D)
            self.down_bias = nn.Parameter(torch.zeros(experts, dim))  # (E, D), one per expert
            self.released_unused = unused_mlp_modules(dim, released_max_len)
            return
        up, down = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        parts = split_mlp(up.weight, up.bias, down.weight, down.bias, routing.num_experts)
        self.up_weight = nn.Parameter(parts.up_weight)  # (E, D, Hs)
        self.up_bias = nn.Parameter(parts.up_bias)  # (E, Hs)
        self.down_weight = nn.Parameter(parts.down_weight)  # (E, Hs, D)
        self.down_bias = nn.Parameter(parts.down_bias)  # (D,)

    def load_experts(self, parts: MLPExperts) -> None:
        """Copy decomposed dense weights in (see `decompose.split_mlp`); released: each
        expert's down bias is b2 / E, so a token taken by every expert gets b2."""
        with torch.no_grad():
            for name in ("up_weight", "up_bias", "down_weight"):
                getattr(self, name).copy_(getattr(parts, name))
            if self.released:
                experts = self.down_bias.shape[0]
                self.down_bias.copy_((parts.down_bias / experts).expand_as(self.down_bias))
            else:
                self.down_bias.copy_(parts.down_bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """x (B, L, D), mask (B, L) bool -> (B, L, D), PartAux with routing statistics."""
        batch, length, dim = x.shape
        with phase(ROUTER):
            sel = self.router(x, mask)
        flat = x.reshape(batch * length, dim)  # (B L, D)
        with phase(DISPATCH):
            plan, row_weight = dispatch(sel, length)
            rows = permute(flat, plan)  # (A, D)
        impl = self.gemm_kernel(rows.shape[0])  # one kernel for both GEMMs
        with phase(EXPERT_GEMM):
            # The backward gathers the rows again from x (kept by the router) instead of
            # keeping them (`recompute`).
            with recomputed((rows, lambda: flat.index_select(0, plan.token_index))):
                hidden = grouped_mm(rows, self.up_weight, plan.offsets, impl=impl)  # (A, Hs)
            del rows  # made again in the backward: free it now (it is the largest)
            pre = add_expert_bias(hidden, self.up_bias, plan)  # (A, Hs), kept by GELU
            del hidden
            active = F.gelu(pre)
            hidden = self.dropout(active)  # `active` itself when the dropout is off
            # The gate scales each row's Hs hidden values before the down GEMM rather than
            # its D outputs after (the same sum, (g h) W = g (h W)): the backward then keeps
            # (A, Hs) for the gate, not (A, D). Released: after, as its per-expert bias needs.
            fold = row_weight is not None and not self.released
            recipes = [(active, lambda: F.gelu(pre))]
            with recomputed(*recipes):
                if fold:
                    gate = row_weight.to(hidden.dtype)[:, None]  # (A, 1)
                    if hidden is active:  # no dropout mask: the scaled rows follow from pre
                        recipes.append((hidden * gate, lambda: F.gelu(pre) * gate))
                        hidden = recipes[-1][0]  # (A, Hs)
                    else:
                        hidden = hidden * gate  # (A, Hs)
            with recomputed(*recipes):
                out = grouped_mm(hidden, self.down_weight, plan.offsets, impl=impl)  # (A, D)
            del active, hidden, recipes  # the backward makes them again: free them now
            if self.released:
                out = add_expert_bias(out, self.down_bias, plan)  # one bias per expert row
        with phase(COMBINE):
            y = unpermute(out, plan, None if fold else row_weight)  # (B L, D)
            if not self.released:
                y = y + self.down_bias

        loss = None
        if sel.aux_loss is not None:
            loss = self.router.cfg.balance_loss_weight * sel.aux_loss
        sizes = {"rows": multiplied_rows(impl, plan.counts)}  # bmm pads experts
        aux = PartAux(loss=loss, stats=sel.stats, sizes=sizes, kernel=impl)
        return y.view(batch, length, dim), aux

    def gemm_kernel(self, rows: int | None = None) -> str:
        """The grouped-GEMM implementation of both expert GEMMs of a call with `rows` (A) rows
        (`dispatch.choose`); without `rows` (the manifest, before any forward) the policy as
        one line (`dispatch.describe`), since the choice depends on the rows."""
        return describe(self.up_weight) if rows is None else choose(self.up_weight, rows=rows)

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        """Forward FLOPs of a call on x (B, L, D): 2 per multiply-add over the rows the call
        multiplied (`aux.sizes`; filler rows included in the released behaviour, where they are
        computed)."""
        batch, length, dim = x_shape
        experts, width = self.router.cfg.num_experts, self.up_weight.shape[2]
        rows = size(aux, "rows")
        gated = batch * (length if self.router.cfg.level == "token" else 1)
        return {
            "router": 2.0 * gated * dim * experts,
            "ffn_up": 2.0 * rows * dim * width,
            "ffn_down": 2.0 * rows * width * dim,
        }

    def inactive_parameter_count(self) -> int:
        """A token uses top_k of the E experts: the other (E - k) / E of the per-expert weights
        (up columns and biases, down rows; released: the per-expert down biases too) are
        inactive, and so is all of `released_unused`. Router and shared down bias always count."""
        cfg = self.router.cfg
        per_expert = self.up_weight.numel() + self.up_bias.numel() + self.down_weight.numel()
        unused = 0
        if self.released:
            per_expert += self.down_bias.numel()
            unused = parameter_count(self.released_unused)
        return per_expert * (cfg.num_experts - cfg.top_k) // cfg.num_experts + unused

"""UoME (union of MLP experts): the UoE feed-forward part, E slices of one dense MLP.

Expert e is the column slice e of the up projection and the row slice e of the down projection
(`decompose.split_mlp`); each token's output is the union (sum) of the experts that took it,
scaled by the gate in the corrected variant, plus the down bias once. The expert computation is
gather -> grouped GEMM -> GELU -> grouped GEMM -> scatter-add through `models.kernels`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.kernels import grouped_mm, permute, unpermute
from models.kernels.dispatch import choose, multiplied_rows
from models.layers.parts import PartAux, size
from models.layers.ranges import COMBINE, DISPATCH, EXPERT_GEMM, MOE_PHASES, ROUTER, phase
from models.uoe.decompose import MLPExperts, split_mlp
from models.uoe.routing import Router, RoutingConfig, dispatch


class UnionMLP(nn.Module):
    phases = MOE_PHASES

    def __init__(self, dim: int, hidden: int, routing: RoutingConfig, dropout: float) -> None:
        super().__init__()
        self.router = Router(dim, routing)
        up, down = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        parts = split_mlp(up.weight, up.bias, down.weight, down.bias, routing.num_experts)
        self.up_weight = nn.Parameter(parts.up_weight)  # (E, D, Hs)
        self.up_bias = nn.Parameter(parts.up_bias)  # (E, Hs)
        self.down_weight = nn.Parameter(parts.down_weight)  # (E, Hs, D)
        self.down_bias = nn.Parameter(parts.down_bias)  # (D,)
        self.dropout = nn.Dropout(dropout)

    def load_experts(self, parts: MLPExperts) -> None:
        """Copy decomposed dense weights in (see `decompose.split_mlp`)."""
        with torch.no_grad():
            for name in ("up_weight", "up_bias", "down_weight", "down_bias"):
                getattr(self, name).copy_(getattr(parts, name))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """x (B, L, D), mask (B, L) bool -> (B, L, D), PartAux with routing statistics."""
        batch, length, dim = x.shape
        with phase(ROUTER):
            sel = self.router(x, mask)
        with phase(DISPATCH):
            plan, row_weight = dispatch(sel, length)
            rows = permute(x.reshape(batch * length, dim), plan)  # (A, D)
        impl = self.gemm_kernel()  # one kernel for both GEMMs
        with phase(EXPERT_GEMM):
            hidden = grouped_mm(rows, self.up_weight, plan.offsets, impl=impl)  # (A, Hs)
            hidden = self.dropout(F.gelu(hidden + self.up_bias[plan.expert_index]))
            out = grouped_mm(hidden, self.down_weight, plan.offsets, impl=impl)  # (A, D)
        with phase(COMBINE):
            y = unpermute(out, plan, row_weight) + self.down_bias  # (B L, D)

        loss = None
        if sel.aux_loss is not None:
            loss = self.router.cfg.balance_loss_weight * sel.aux_loss
        sizes = {"rows": multiplied_rows(impl, plan.counts)}  # bmm pads experts
        return y.view(batch, length, dim), PartAux(loss=loss, stats=sel.stats, sizes=sizes)

    def gemm_kernel(self) -> str:
        """The grouped-GEMM implementation of both expert GEMMs (`dispatch.choose`)."""
        return choose(self.up_weight)

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        """Forward FLOPs of a call on x (B, L, D): 2 per multiply-add over the rows the call
        multiplied (`aux.sizes`; filler rows included in the released variant, where they are
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
        (up columns and biases, down rows) are inactive. Router and down bias always count."""
        cfg = self.router.cfg
        per_expert = self.up_weight.numel() + self.up_bias.numel() + self.down_weight.numel()
        return per_expert * (cfg.num_experts - cfg.top_k) // cfg.num_experts

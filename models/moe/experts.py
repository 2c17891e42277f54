"""The MoE FFN part: route the real tokens, run the chosen experts as grouped GEMMs, combine.

One module serves Switch (GELU experts, top-1 with capacity) and Mixtral (SwiGLU experts, top-k):
the router policy and the expert activation are the only differences. Expert weights live in the
(E, K, N) layout the grouped GEMM takes. Padding tokens are never routed: they get output 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.kernels import Dispatch, grouped_mm, permute, unpermute
from models.kernels.dispatch import choose, describe, multiplied_rows
from models.kernels.permute import add_expert_bias
from models.layers.lazy_stats import LazyStats
from models.layers.parts import PartAux, size
from models.layers.ranges import COMBINE, DISPATCH, EXPERT_GEMM, MOE_PHASES, ROUTER, phase
from models.moe.routing import (
    STAT_KEYS,
    Routing,
    balance_loss,
    capacity,
    load_stats,
    switch_top1,
    time_major_order,
    top_k_softmax,
    z_loss,
)


@dataclass(frozen=True)
class MoEConfig:
    """router: "switch" (top-1, capacity_factor applies) or "top_k" (dropless);
    activation: "gelu" (Linear-GELU-Linear experts with biases) or "swiglu" (no biases)."""

    dim: int
    hidden: int
    experts: int
    top_k: int
    router: str
    activation: str
    capacity_factor: float = 1.0
    balance_loss_weight: float = 0.0
    z_loss_weight: float = 0.0
    dropout: float = 0.0
    impl: str | None = None  # force a grouped_mm implementation (tests); None = dispatcher
    # Causal form (a language model): switch fills capacity position by position across the
    # batch (`routing.time_major_order`), so no token's drop depends on a later position.
    # Dropless top-k is causal as it is (a token's routing reads only its own logits).
    causal: bool = False

    def __post_init__(self) -> None:
        if self.router not in ("switch", "top_k"):
            raise ValueError(f"router must be 'switch' or 'top_k', got {self.router!r}")
        if self.activation not in ("gelu", "swiglu"):
            raise ValueError(f"activation must be 'gelu' or 'swiglu', got {self.activation!r}")
        if self.router == "switch" and self.top_k != 1:
            raise ValueError(f"the switch router is top-1; got top_k={self.top_k}")
        if not 1 <= self.top_k <= self.experts:
            raise ValueError(f"top_k={self.top_k} must be in 1..experts={self.experts}")


class MoEFFN(nn.Module):
    phases = MOE_PHASES

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        e, d, h = cfg.experts, cfg.dim, cfg.hidden
        up_width = 2 * h if cfg.activation == "swiglu" else h  # SwiGLU: [gate | up] columns
        self.router = nn.Linear(d, e, bias=False)
        self.w_up = nn.Parameter(torch.empty(e, d, up_width))  # (E, D, H or 2H)
        self.w_down = nn.Parameter(torch.empty(e, h, d))  # (E, H, D)
        with_bias = cfg.activation == "gelu"
        self.b_up = nn.Parameter(torch.zeros(e, up_width)) if with_bias else None
        self.b_down = nn.Parameter(torch.zeros(e, d)) if with_bias else None
        self.dropout = nn.Dropout(cfg.dropout)
        # nn.Linear's default init, per expert (fan-in d for up, h for down).
        nn.init.uniform_(self.w_up, -(d**-0.5), d**-0.5)
        nn.init.uniform_(self.w_down, -(h**-0.5), h**-0.5)

    def route(self, logits: torch.Tensor, fill_order: torch.Tensor | None = None) -> Routing:
        """(T, E) fp32 logits of the real tokens -> Routing; `fill_order` (T,) the order in
        which switch experts fill their capacity (None: the rows' order)."""
        if self.cfg.router == "switch":
            cap = capacity(logits.shape[0], self.cfg.experts, self.cfg.capacity_factor)
            return switch_top1(logits, cap, fill_order)
        return top_k_softmax(logits, self.cfg.top_k)

    def gemm_kernel(self, rows: int | None = None) -> str:
        """The grouped-GEMM implementation both expert GEMMs of a call with `rows` (A) rows use
        at the weights' current device, dtype and shape (`models.kernels.dispatch.choose`), or
        the one the config forces. Without `rows` (the manifest, before any forward): the
        policy as one line (`dispatch.describe`), since the choice depends on the rows."""
        if self.cfg.impl is not None:
            return self.cfg.impl
        return describe(self.w_up) if rows is None else choose(self.w_up, rows=rows)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """x (B, L, D), mask (B, L) True = real -> (B, L, D), PartAux(weighted aux, stats).

        Rows are gathered from, and summed back into, the (B L, D) input directly: padding is
        never routed and gets 0, and an unpadded batch needs no real-token round trip."""
        batch, length, dim = x.shape
        flat = x.reshape(batch * length, dim)  # (B L, D)
        with phase(ROUTER):
            # Only a padded batch needs its real tokens picked out (a host sync and a copy).
            real = None if bool(mask.all()) else mask.reshape(-1).nonzero().squeeze(1)  # (T,)
            tokens = flat if real is None else flat.index_select(0, real)  # (T, D)
            logits = self.router(tokens).float()  # (T, E); routing math in fp32
            fill_order = None
            if self.cfg.causal and self.cfg.router == "switch":
                ids = torch.arange(batch * length, device=x.device) if real is None else real
                fill_order = time_major_order(ids, batch, length)  # (T,)
            routing = self.route(logits, fill_order)
        with phase(DISPATCH):
            dispatch = Dispatch.top_k(
                routing.expert, self.cfg.experts, token_ids=real, num_tokens=batch * length
            )
            rows = permute(flat, dispatch)  # (A, D)
        impl = self.gemm_kernel(rows.shape[0])  # one choice for both GEMMs
        with phase(EXPERT_GEMM):
            out = self._experts(rows, dispatch, impl)  # (A, D)
        with phase(COMBINE):
            row_gate = routing.gate.reshape(-1)[dispatch.order]  # (A,), a permutation: no sum
            y = unpermute(out, dispatch, row_gate).to(x.dtype)  # (B L, D), padding rows 0
        with phase(ROUTER):  # the router's losses, only those with a weight
            loss, balance = self._router_loss(logits, routing)
        sizes = {
            "tokens": tokens.shape[0],
            "rows": multiplied_rows(impl, dispatch.counts),
        }
        experts = self.cfg.experts

        def stats() -> dict[str, torch.Tensor]:
            unweighted = balance if balance is not None else balance_loss(logits, routing.chosen)
            return load_stats(routing, experts, unweighted)

        aux = PartAux(loss=loss, stats=LazyStats(STAT_KEYS, stats), sizes=sizes, kernel=impl)
        return y.view(batch, length, dim), aux

    def _router_loss(
        self, logits: torch.Tensor, routing: Routing
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(weighted loss or None, unweighted balance loss or None): a loss whose weight is 0
        is not computed (the statistics compute the balance loss when they are read)."""
        loss = balance = None
        if self.cfg.balance_loss_weight:
            balance = balance_loss(logits, routing.chosen)
            loss = self.cfg.balance_loss_weight * balance
        if self.cfg.router == "switch" and self.cfg.z_loss_weight:
            z = self.cfg.z_loss_weight * z_loss(logits)
            loss = z if loss is None else loss + z
        return loss, balance

    def _experts(self, rows: torch.Tensor, dispatch: Dispatch, impl: str) -> torch.Tensor:
        """(A, D) rows grouped by expert -> (A, D): each row through its expert's FFN."""
        hidden = grouped_mm(rows, self.w_up, dispatch.offsets, impl=impl)  # (A, H|2H)
        if self.b_up is not None:
            hidden = add_expert_bias(hidden, self.b_up, dispatch)
        if self.cfg.activation == "swiglu":
            gate, up = hidden.chunk(2, dim=-1)  # (A, H) each
            hidden = F.silu(gate) * up
        else:
            hidden = F.gelu(hidden)
        out = grouped_mm(self.dropout(hidden), self.w_down, dispatch.offsets, impl=impl)
        if self.b_down is not None:
            out = add_expert_bias(out, self.b_down, dispatch)  # (A, D)
        return out

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        """Forward FLOPs of a call (2 per multiply-add): the router over the real tokens the
        call routed, the expert GEMMs over the rows it multiplied (`aux.sizes`): the kept
        assignments, or E x the largest expert's rows when the padded `bmm` kernel ran."""
        tokens, rows = size(aux, "tokens"), size(aux, "rows")
        d, h, up_width = self.cfg.dim, self.cfg.hidden, self.w_up.shape[2]
        return {
            "router": 2.0 * tokens * d * self.cfg.experts,
            "ffn_up": 2.0 * rows * d * up_width,
            "ffn_down": 2.0 * rows * h * d,
        }

    def inactive_parameter_count(self) -> int:
        """Expert parameters a token does not use: all experts but top_k (router always active)."""
        per_expert = sum(
            p[0].numel() for p in (self.w_up, self.w_down, self.b_up, self.b_down) if p is not None
        )
        return per_expert * (self.cfg.experts - self.cfg.top_k)

"""What the released UoE LRA code builds that our dense-derived parts do not: its expert
initialisation and the parameters it builds but never uses (reference/uoe.md §1.4).

Released init (`layers_v2/v3.ColumnParallelLinearWithMoE`, `RowParallelLinearWithMoE`): each
expert's (in, out) weight slice is Xavier-normal on its own, std sqrt(2 / (in + out)); every
bias is zero, including the per-expert output biases (E, D).

Built but unused, counted in the release's parameter totals (so in `uoe_paper`'s) and loaded by
`load_released_state_dict`, yet taking no part in the forward (no gradient, never updated):
  attention: `kv_norm` (RMSNorm(Dh), `use_norm = False`) and `layer_norm` (LayerNorm(D));
  MLP: `switch_gate.s_gate` (Linear(max_len -> max_len // D), the disabled patch gate) and
  `linear3` (Linear(D -> D)).
At the ListOps config (D 64, Dh 32, max_len 2048, 2 layers): 2 x (32 + 128 + 65,568 + 4,160)
= 139,776 parameters.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


def xavier_slices(experts: int, rows: int, cols: int) -> torch.Tensor:
    """(experts, rows, cols): each (rows, cols) slice Xavier-normal on its own, as released."""
    weight = torch.empty(experts, rows, cols)
    for e in range(experts):
        nn.init.xavier_normal_(weight[e])
    return weight


def unused_attention_modules(dim: int, head_dim: int) -> nn.ModuleDict:
    """The released SMHA's `kv_norm` and `layer_norm`: built, counted, never called."""
    return nn.ModuleDict({"kv_norm": nn.RMSNorm(head_dim), "layer_norm": nn.LayerNorm(dim)})


def unused_mlp_modules(dim: int, max_len: int) -> nn.ModuleDict:
    """The released U_MLP's `s_gate` and `linear3`: built, counted, never called."""
    with warnings.catch_warnings():  # max_len < dim gives an empty s_gate; init warns on it
        warnings.filterwarnings("ignore", "Initializing zero-element tensors")
        s_gate = nn.Linear(max_len, max_len // dim)
    return nn.ModuleDict({"s_gate": s_gate, "linear3": nn.Linear(dim, dim)})


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

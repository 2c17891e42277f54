"""The FLOPs of linear layers only: the convention of the UoE paper's figures (calflops).

calflops, the UoE authors' counter, sees `F.linear` only: not SDPA, the `@` operator, `torch.mm`
or `aten._grouped_mm`. `LinearFlopCounter` counts what it would have reported for our models, so
the paper's FLOP ratios can be set beside ours, which count every matmul (`counted`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


class LinearFlopCounter(TorchFunctionMode):
    """FLOPs of the `F.linear` calls (every nn.Linear) that run inside it: 2 x input.numel() x
    out_features per call, bias not counted (calflops' `_linear_flops_compute`)."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            x = args[0] if args else kwargs["input"]
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            self.flops += 2 * x.numel() * weight.shape[0]
        return func(*args, **kwargs)

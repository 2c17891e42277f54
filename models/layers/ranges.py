"""Named profiler ranges for the phases of a layer, so traces read the same for every model.

Parts wrap each phase in `phase(NAME)`; the names are fixed here so traces, tests and reports
agree on them. `torch.profiler.record_function` costs about a microsecond when no profiler runs.

    with phase(ROUTER): ...        # gate logits, top-k, capacity
    with phase(DISPATCH): ...      # permute rows by expert
    with phase(EXPERT_GEMM): ...   # the grouped GEMMs of the experts
    with phase(COMBINE): ...       # weighted scatter-add back to tokens
    with phase(ATTENTION): ...     # a token mixer's attention core
    with phase(FFN): ...           # a dense feed-forward part
"""

from __future__ import annotations

from torch.profiler import record_function

ROUTER = "router"
DISPATCH = "dispatch"
EXPERT_GEMM = "expert_gemm"
COMBINE = "combine"
ATTENTION = "attention"
FFN = "ffn"

MOE_PHASES = (ROUTER, DISPATCH, EXPERT_GEMM, COMBINE)
ALL_PHASES = (*MOE_PHASES, ATTENTION, FFN)


def phase(name: str) -> record_function:
    """A `record_function` range named `name`, one of ALL_PHASES (others would not be found by
    the reports, so they are refused)."""
    if name not in ALL_PHASES:
        raise ValueError(f"unknown phase {name!r}; use one of {', '.join(ALL_PHASES)}")
    return record_function(name)

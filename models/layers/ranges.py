"""Named profiler ranges, so a trace reads the same for every model.

Every block wraps each of its two parts in a slot range (`mixer`, `ffn`); inside it, the part
wraps each of its phases in `phase(NAME)` and lists them in its `phases` attribute (the part
contract, `models.layers.parts`). A trace of a UoE step thus shows `mixer > router`,
`mixer > attention`, `ffn > expert_gemm`, ... The names are fixed here so traces, tests and
reports agree. `torch.profiler.record_function` costs about a microsecond when no profiler runs.

    ROUTER       gate logits, top-k, capacity, data selection, balance loss
    DISPATCH     the dispatch plan and the gather of rows by expert
    EXPERT_GEMM  the grouped GEMMs of the experts (and what runs between them per row)
    COMBINE      the weighted scatter-add of expert rows back to tokens
    ATTENTION    a token mixer's attention core (softmax, or the linear-attention products)
    MLP          a dense feed-forward part
    SEQ_PROJ     Linformer's projection of keys and values along the sequence
    FEATURE_MAP  Performer's random-feature map of queries and keys
"""

from __future__ import annotations

from torch.profiler import record_function

MIXER, FFN = "mixer", "ffn"
SLOTS = (MIXER, FFN)

ROUTER = "router"
DISPATCH = "dispatch"
EXPERT_GEMM = "expert_gemm"
COMBINE = "combine"
ATTENTION = "attention"
MLP = "mlp"
SEQ_PROJ = "seq_proj"
FEATURE_MAP = "feature_map"

MOE_PHASES = (ROUTER, DISPATCH, EXPERT_GEMM, COMBINE)
ALL_PHASES = (*MOE_PHASES, ATTENTION, MLP, SEQ_PROJ, FEATURE_MAP)


def phase(name: str) -> record_function:
    """A `record_function` range named `name`, one of ALL_PHASES (others would not be found by
    the reports, so they are refused)."""
    if name not in ALL_PHASES:
        raise ValueError(f"unknown phase {name!r}; use one of {', '.join(ALL_PHASES)}")
    return record_function(name)


def slot(name: str) -> record_function:
    """The range a block puts around one of its parts: `mixer` or `ffn`."""
    if name not in SLOTS:
        raise ValueError(f"unknown slot {name!r}; use one of {', '.join(SLOTS)}")
    return record_function(name)

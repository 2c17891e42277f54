"""A token stream cut into language-modelling segments, and what the record says about them.

The evaluation protocol is the same for every split: the stream (documents concatenated in a
fixed order) is cut into non-overlapping segments of `max_len` inputs; position t of a segment
predicts the stream's next token, so every token but the stream's first is predicted exactly
once; no memory is carried from one segment to the next (Transformer-XL's segment recurrence is
not built), so a segment's first position is predicted with no context. The last segment is
shorter; its padded positions are ignored (target `IGNORE_INDEX`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import torch

from suites.data import Split, TaskData

IGNORE_INDEX = -100  # the target of a padded position: F.cross_entropy skips it
TOKEN_UNITS = ("byte", "word")


def protocol_text(max_len: int) -> str:
    """The evaluation protocol of `segments`, in one line, for records and reports."""
    return (
        f"non-overlapping segments of {max_len} tokens, no memory carried between segments "
        "(no Transformer-XL recurrence); each position predicts the next token of the stream; "
        "padding ignored"
    )


def segments(stream: torch.Tensor, max_len: int, max_segments: int) -> Split:
    """Cut the (T,) int64 `stream` into at most `max_segments` segments of `max_len` inputs.

    inputs (N, max_len): stream[i*L : i*L + L]; labels (N, max_len): the token after each input
    (stream[i*L + 1 : i*L + L + 1]), IGNORE_INDEX past the end; lengths (N,): real positions.
    """
    if stream.dim() != 1 or stream.numel() < 2:
        raise ValueError(f"a stream needs at least 2 tokens, got shape {tuple(stream.shape)}")
    if max_len < 1 or max_segments < 1:
        raise ValueError(f"max_len and the segment count must be >= 1: {max_len}, {max_segments}")
    scored = stream.numel() - 1  # positions that have a next token
    n = min(math.ceil(scored / max_len), max_segments)
    width = n * max_len
    inputs = torch.zeros(width, dtype=torch.int64)
    labels = torch.full((width,), IGNORE_INDEX, dtype=torch.int64)
    used = min(scored, width)
    inputs[:used] = stream[:used]
    labels[:used] = stream[1 : used + 1]
    lengths = (used - torch.arange(n) * max_len).clamp(max=max_len)  # (N,)
    return Split((inputs.view(n, max_len),), (lengths,), labels.view(n, max_len))


def scored_tokens(split: Split) -> int:
    """Positions whose next token is predicted (the denominator of the mean loss)."""
    return int((split.labels != IGNORE_INDEX).sum())


@dataclass(frozen=True)
class LMInfo:
    """What a language-modelling task's data is, for its records.

    token_unit: "byte" (bits per byte reported) or "word" (perplexity reported).
    corpus: name and provenance facts (hashes, sizes, versions) stored in the record as they are.
    bytes_per_token: UTF-8 bytes per token of the test split (1 for byte-level data).
    """

    token_unit: str
    protocol: str
    corpus: dict[str, Any]
    bytes_per_token: float = 1.0

    def __post_init__(self) -> None:
        if self.token_unit not in TOKEN_UNITS:
            raise ValueError(f"token_unit must be one of {TOKEN_UNITS}, got {self.token_unit!r}")

    def record_fields(self, data: TaskData) -> dict[str, Any]:
        """The `data` fields of a record: unit, protocol, corpus facts, scored tokens."""
        return {
            "token_unit": self.token_unit,
            "eval_protocol": self.protocol,
            "corpus": dict(self.corpus),
            "python_version": sys.version.split()[0],
            "scored_tokens": {
                "train": scored_tokens(data.train),
                "dev": scored_tokens(data.dev),
                "test": scored_tokens(data.test),
            },
        }


@dataclass(frozen=True)
class LMTaskData(TaskData):
    """A language-modelling task's splits (labels (N, L): next tokens) and their description."""

    info: LMInfo

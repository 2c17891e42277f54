"""Seeded synthetic tasks of the smoke suite: seconds per model, for CI and quick checks.

Each generator draws from its own `torch.Generator` seeded from (task, data seed), so a seed always
gives the same splits on every machine, and needs no download or cache.

- majority: a sequence of the two symbols a/b; the label is the more frequent one (odd lengths, so
  no ties). Mean pooling alone can solve it: it checks that training moves at all.
- first: a sequence over four symbols; the label is the first symbol. The pooled features carry it
  only through attention to position 0, so it exercises the mixer and the position embedding.
- match: two sequences (a dual-encoder task), each dominated by one of four symbols; the label says
  whether both are dominated by the same symbol (balanced classes). Exercises the two-input path.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import torch

from models.errors import InputError
from suites.data import DataRequest, Split, TaskData

MIN_LENGTH = 4
# Fraction of a `match` sequence drawn as its dominant symbol (the rest is uniform).
MATCH_DOMINANCE = 0.6

MAJORITY_VOCAB = 3  # PAD, a, b
FIRST_VOCAB = 5  # PAD, four symbols
MATCH_VOCAB = 5

Generate = Callable[[int, int, torch.Generator], Split]


def _lengths(n: int, max_len: int, g: torch.Generator, odd: bool = False) -> torch.Tensor:
    """(n,) int64 lengths uniform in [MIN_LENGTH, max_len] (odd ones only when `odd`)."""
    if max_len < MIN_LENGTH + 1:
        raise InputError(f"smoke tasks need data.max_len >= {MIN_LENGTH + 1}, got {max_len}")
    lengths = torch.randint(MIN_LENGTH, max_len + 1, (n,), generator=g)  # (n,)
    if odd:
        lengths = lengths - (lengths % 2 == 0).long()  # even -> the odd length below it
    return lengths


def _pad(tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero (PAD_ID) every position at or beyond each row's length. (n, L) -> (n, L)."""
    positions = torch.arange(tokens.shape[1])[None]  # (1, L)
    return tokens.masked_fill(positions >= lengths[:, None], 0)


def generate_majority(n: int, max_len: int, g: torch.Generator) -> Split:
    lengths = _lengths(n, max_len, g, odd=True)  # (n,)
    symbols = torch.randint(1, 3, (n, max_len), generator=g)  # (n, L) in {1, 2}
    tokens = _pad(symbols, lengths)
    count_b = (tokens == 2).sum(dim=1)  # (n,)
    labels = (2 * count_b > lengths).long()  # 1 when b is the majority
    return Split((tokens,), (lengths,), labels)


def generate_first(n: int, max_len: int, g: torch.Generator) -> Split:
    lengths = _lengths(n, max_len, g)
    tokens = _pad(torch.randint(1, FIRST_VOCAB, (n, max_len), generator=g), lengths)  # (n, L)
    return Split((tokens,), (lengths,), tokens[:, 0] - 1)


def _dominated(dominant: torch.Tensor, max_len: int, g: torch.Generator) -> Split:
    """Sequences where each position is `dominant[i]` with probability MATCH_DOMINANCE."""
    n = dominant.shape[0]
    lengths = _lengths(n, max_len, g)
    uniform = torch.randint(1, MATCH_VOCAB, (n, max_len), generator=g)  # (n, L)
    keep = torch.rand((n, max_len), generator=g) < MATCH_DOMINANCE  # (n, L)
    tokens = _pad(torch.where(keep, dominant[:, None], uniform), lengths)
    return Split((tokens,), (lengths,), dominant)


def generate_match(n: int, max_len: int, g: torch.Generator) -> Split:
    labels = torch.randint(0, 2, (n,), generator=g)  # (n,) 1 = same dominant symbol
    first = torch.randint(1, MATCH_VOCAB, (n,), generator=g)
    shift = torch.randint(1, MATCH_VOCAB - 1, (n,), generator=g)  # a different symbol when 0
    other = torch.where(labels == 1, first, (first - 1 + shift) % (MATCH_VOCAB - 1) + 1)
    a, b = _dominated(first, max_len, g), _dominated(other, max_len, g)
    return Split(a.inputs + b.inputs, a.lengths + b.lengths, labels)


def loader(task: str, generate: Generate) -> Callable[[DataRequest], TaskData]:
    """A TaskSpec loader drawing train, dev and test from one generator seeded by (task, seed)."""

    def load(request: DataRequest) -> TaskData:
        seed = zlib.crc32(f"smoke/{task}/{request.seed}".encode())
        g = torch.Generator().manual_seed(seed)
        splits = [
            generate(n, request.max_len, g)
            for n in (request.n_train, request.n_dev, request.n_test)
        ]
        source = f"generated: smoke/{task} data seed {request.seed}, max_len {request.max_len}"
        return TaskData(*splits, source=source)

    load.__doc__ = f"Generate the smoke/{task} splits (seeded, no cache)."
    return load

"""In-memory task data shared by every suite: padded token tensors with explicit lengths.

A task's loader returns a `TaskData` (train/dev/test `Split`s). Masks are always built from the
explicit `lengths`, never from "token id == 0" (a black pixel is a real 0 token in Image and
Pathfinder). A loader that cannot find its data raises `DataUnavailable` with a message that says
where it looked and what to run; the runner records that cell as `skipped`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

PAD_ID = 0


class DataUnavailable(Exception):
    """The task's data is absent or its code does not exist yet; the message names the fix."""


@dataclass(frozen=True)
class DataRequest:
    """What a runner asks a task loader for.

    Attributes:
        max_len: every sequence is padded to exactly this length; longer inputs are an error.
        n_train, n_dev, n_test: split sizes for generated data; an upper bound for files.
        seed: seed of generated data (independent of the training seed, so every run seed
            trains on the same data).
        cache_dir: where generated/prepared data is cached.
        data_dir: user-supplied directory with the task's official files, or None.
        generator: the generator of a generated task, by name ("" = its default); a task
            without named generators refuses any other value.
    """

    max_len: int
    n_train: int
    n_dev: int
    n_test: int
    seed: int
    cache_dir: Path
    data_dir: Path | None = None
    generator: str = ""


@dataclass(frozen=True)
class Split:
    """One split: `inputs[i]` (N, L) int64 token ids, `lengths[i]` (N,) int64, `labels` (N,).

    Tasks with two inputs per example (retrieval) have two entries in `inputs` and `lengths`.
    """

    inputs: tuple[torch.Tensor, ...]
    lengths: tuple[torch.Tensor, ...]
    labels: torch.Tensor

    def __post_init__(self) -> None:
        n = self.labels.shape[0]
        if len(self.inputs) != len(self.lengths) or not self.inputs:
            raise ValueError("a split needs one lengths tensor per input tensor")
        for tokens, lengths in zip(self.inputs, self.lengths, strict=True):
            if tokens.dim() != 2 or tokens.shape[0] != n or lengths.shape != (n,):
                raise ValueError(
                    f"split shapes disagree: tokens {tuple(tokens.shape)}, lengths "
                    f"{tuple(lengths.shape)}, labels {tuple(self.labels.shape)}"
                )
            if n and (int(lengths.min()) < 1 or int(lengths.max()) > tokens.shape[1]):
                raise ValueError("every length must be in [1, max_len]")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def select(self, index: torch.Tensor) -> Split:
        """The examples at `index` (a 1-D int64 tensor), in that order."""
        return Split(
            tuple(t[index] for t in self.inputs),
            tuple(n[index] for n in self.lengths),
            self.labels[index],
        )

    def majority_rate(self) -> float:
        """Fraction of the most frequent label: the accuracy of always guessing it."""
        if len(self) == 0:
            raise ValueError("majority rate of an empty split is undefined")
        return float(torch.bincount(self.labels).max()) / len(self)

    @cached_property
    def content_sha256(self) -> str:
        """SHA-256 of the examples (each input's lengths and tokens up to the longest length,
        then the labels, all little-endian int64), computed once per split: two splits with the
        same examples in the same order hash alike whatever their padded length, so per-example
        predictions of cells on the same split can be paired."""
        digest = hashlib.sha256(f"{len(self)} examples, {len(self.inputs)} inputs".encode())
        for tokens, lengths in zip(self.inputs, self.lengths, strict=True):
            longest = int(lengths.max()) if len(self) else 0
            digest.update(_le_int64(lengths))
            digest.update(_le_int64(tokens[:, :longest]))  # (N, longest)
        digest.update(_le_int64(self.labels))
        return digest.hexdigest()


def _le_int64(values: torch.Tensor) -> bytes:
    return values.to(torch.int64).contiguous().numpy().astype("<i8", copy=False).tobytes()


@dataclass(frozen=True)
class TaskData:
    """The three splits of a task and a one-line description of where they came from."""

    train: Split
    dev: Split
    test: Split
    source: str


def pad_sequences(sequences: list[list[int]], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token lists with PAD_ID to `max_len`: ((N, max_len) int64, (N,) int64 lengths).

    Raises ValueError for an empty sequence or one longer than `max_len` (silently truncating
    would change what the label means).
    """
    tokens = torch.full((len(sequences), max_len), PAD_ID, dtype=torch.int64)
    lengths = torch.empty(len(sequences), dtype=torch.int64)
    for i, seq in enumerate(sequences):
        if not 1 <= len(seq) <= max_len:
            raise ValueError(
                f"sequence {i} has {len(seq)} tokens; it must have between 1 and max_len={max_len}"
            )
        tokens[i, : len(seq)] = torch.tensor(seq, dtype=torch.int64)
        lengths[i] = len(seq)
    return tokens, lengths

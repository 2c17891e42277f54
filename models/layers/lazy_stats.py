"""Routing statistics computed only when someone reads them.

A routed part returns its statistics with every call, but the training loop reads those of the
last batch only, and evaluation and the latency measurements read none. `LazyStats` knows its
keys at once and runs the computation (under no_grad, once) on the first read of a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import torch


class LazyStats(Mapping[str, torch.Tensor]):
    """A read-only mapping of `keys` whose values `compute()` returns as a dict (same keys)."""

    def __init__(self, keys: tuple[str, ...], compute: Callable[[], dict[str, torch.Tensor]]):
        self._keys = keys
        self._compute: Callable[[], dict[str, torch.Tensor]] | None = compute
        self._values: dict[str, torch.Tensor] | None = None

    def _resolved(self) -> dict[str, torch.Tensor]:
        if self._values is None:
            assert self._compute is not None
            with torch.no_grad():
                values = self._compute()
            if tuple(values) != self._keys:
                raise KeyError(f"stats computed keys {tuple(values)}, declared {self._keys}")
            self._values, self._compute = values, None  # drop the closure's tensors
        return self._values

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self._keys:
            raise KeyError(f"no routing statistic {key!r}; there are {list(self._keys)}")
        return self._resolved()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

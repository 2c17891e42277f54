"""The identity of one cell of a run: (suite, task, model, scale, seed, sweep variant). Records,
plans and reports key cells by it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CellId:
    """The identity of one cell of a run."""

    suite: str
    task: str
    model: str
    scale: str
    seed: int
    variant: str = ""  # the sweep point, e.g. "experts=8,top_k=2"; "" outside a sweep

    def __str__(self) -> str:
        text = f"{self.suite}/{self.task}/{self.model}/{self.scale}/seed{self.seed}"
        return f"{text}/{self.variant}" if self.variant else text

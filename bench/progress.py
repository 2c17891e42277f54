"""A terminal progress bar per cell (loss and step rate), drawn with tqdm on stderr."""

from __future__ import annotations

from collections.abc import Callable

from tqdm import tqdm

from bench.records import CellId
from bench.train import ProgressFn


def tqdm_progress(cell: CellId, total_steps: int) -> tuple[ProgressFn, Callable[[], None]]:
    bar = tqdm(
        total=total_steps,
        desc=f"{cell.task}/{cell.model}/s{cell.seed}",
        unit="step",
        leave=False,  # the run log prints one line per finished cell,
        dynamic_ncols=True,
        disable=None,  # no bar when stderr is not a terminal (a log file, CI)
    )

    def on_step(step: int, loss: float) -> None:
        bar.update(step - bar.n)
        if step % 10 == 0 or step == total_steps:
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    return on_step, bar.close

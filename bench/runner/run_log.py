"""What `bench run` says on stderr while it runs: the plan before it starts (cells, the data each
task needs), each task's data as it is loaded or generated, one line per cell as it ends
(`[3/40] lra/listops/uoe/s0 ok  acc 34.4 %  11.3 s  ETA 6 min`, or the status and the reason
in full), and at the end the counts by status and the commands to run next.

The ETA appears once a cell of every task still to run has finished (cells of one task cost
alike; across tasks they differ by orders of magnitude). A cell that ran on a busy machine (load
average above the core count) says so, since every timing of it is then noise.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from bench.records import BUSY_KEY, CellId, Record
from suites.data import DataUnavailable


def _cell(cell: CellId) -> str:
    return f"{cell.suite}/{cell.task}/{cell.model}/s{cell.seed}"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class RunLog:
    """Prints the run's progress lines to `out` (stderr by default)."""

    def __init__(
        self, run_dir: Path, data_needs: dict[str, str], out: TextIO | None = None
    ) -> None:
        self.run_dir = run_dir
        self.data_needs = data_needs  # task -> what data it needs (bench.runner.dry_run)
        self.todo: list[CellId] = []  # cells still to run, in order
        self.total = self.index = 0
        self.seconds: dict[str, list[float]] = {}
        self.reasons: dict[str, str] = {}  # the last reason printed per task
        self.busy_said = False  # the busy-machine warning is printed in full once
        self.out = out or sys.stderr

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def begin(self, todo: Sequence[CellId], done: int) -> None:
        """The plan, before the first cell: `todo` still to run, `done` already ok."""
        self.todo, self.total, self.index = list(todo), len(todo) + done, done
        tasks = list(dict.fromkeys(c.task for c in self.todo))
        again = f", {done} already ok" if done else ""
        self.say(f"run {self.run_dir}: {len(todo)} cells to run over {len(tasks)} task(s){again}")
        for task in tasks:
            self.say(f"  data {task}: {self.data_needs.get(task, '?')}")

    def load(self, task: str, load: Callable[[], Any]) -> Any:
        """`load()` (a task's data, or the exception its loader raised), announced before and
        reported after with its time: generating a task's data can take minutes."""
        self.say(f"data {task}: loading (generated data is made once and cached; may take minutes)")
        t0 = time.perf_counter()
        data = load()
        if isinstance(data, DataUnavailable):
            outcome = "absent, its cells are recorded skipped"
        elif isinstance(data, Exception):
            outcome = f"failed: {type(data).__name__}: {data}"
        else:
            sizes = f"{len(data.train)}/{len(data.dev)}/{len(data.test)}"
            outcome = f"ready, {sizes} train/dev/test examples: {data.source}"
        self.say(f"data {task}: {outcome} ({duration(time.perf_counter() - t0)})")
        return data

    def cell_end(self, record: Record) -> None:
        self.index += 1
        cell = record.cell
        if cell in self.todo:
            self.todo.remove(cell)
        self.seconds.setdefault(cell.task, []).append(record.duration_s)
        parts = [f"[{self.index}/{self.total}] {_cell(cell)} {record.status}"]
        if record.status == "ok" and "accuracy" in record.metrics:
            parts.append(f"acc {100 * record.metrics['accuracy']:.1f} %")
        parts.append(duration(record.duration_s))
        eta = self.eta()
        if eta:
            parts.append(eta)
        line = "  ".join(parts)
        if record.reason and record.reason == self.reasons.get(cell.task):
            line += "  (reason as above)"  # a task's absent data: said once, in full
        elif record.reason:
            line += f"\n    {record.reason}"
            self.reasons[cell.task] = record.reason
        if record.measurement_error:
            line += f"\n    measurement failed: {record.measurement_error}"
        if BUSY_KEY in record.metrics and not self.busy_said:
            line += f"\n    busy machine: {record.metrics[BUSY_KEY]} (tagged `busy` below)"
            self.busy_said = True
        elif BUSY_KEY in record.metrics:
            line = line.replace("\n", "  busy\n", 1) if "\n" in line else f"{line}  busy"
        self.say(line)

    def eta(self) -> str:
        """`ETA 12 min` once each task still to run has a finished cell; else empty."""
        if not self.todo:
            return ""
        means = {t: sum(s) / len(s) for t, s in self.seconds.items() if s}
        if any(c.task not in means for c in self.todo):
            return ""
        return f"ETA {duration(sum(means[c.task] for c in self.todo))}"

    def finish(self, records: Sequence[Record], run_dir: Path, traces: Path | None = None) -> None:
        counts = Counter(r.status for r in records)
        unmeasured = sum(bool(r.measurement_error) for r in records)
        busy = sum(BUSY_KEY in r.metrics for r in records)
        text = ", ".join(f"{n} {status}" for status, n in counts.items())
        if unmeasured:
            text += f" ({unmeasured} ok but not measured)"
        self.say(f"done: {len(records)} cells: {text}")
        if busy:
            self.say(
                f"WARNING: {busy} cell(s) ran on a busy machine (load above the core count): "
                "their timings are noise; rerun them on an idle machine to time them"
            )
        if traces is not None:
            self.say(
                f"traces: {traces}/<task>-<model>-seed<N>/ (Chrome/Perfetto JSON: "
                f"https://ui.perfetto.dev; or tensorboard --logdir {traces})"
            )
        quoted = shlex.quote(str(run_dir))
        self.say(f"next: bench report {quoted}")
        if any(r.status != "ok" or r.measurement_error for r in records):
            self.say(f"      bench run --resume {quoted}   (reruns the cells not ok)")

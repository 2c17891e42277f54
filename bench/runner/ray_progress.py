"""The Ray launcher's progress on the terminal: per-step bars do not cross processes, so one bar
over cells (done / running / queued, ETA) and a line per finished cell naming where it ran."""

from __future__ import annotations

import sys

from bench.records import Record


class CellBar:
    """One progress bar over cells (done / running / queued, ETA) and a line per finished cell
    naming where it ran."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar = tqdm(total=total, unit="cell", desc="cells", dynamic_ncols=True)

    def counts(self, running: int, queued: int) -> None:
        self.bar.set_postfix(running=running, queued=queued)

    def finished(self, record: Record) -> None:
        p = record.placement
        gpu = f", GPU {p['gpu_index']}" if p.get("gpu_index") is not None else ""
        where = f"{p.get('hostname', '?')} ({p.get('device_name', p.get('device', '?'))}{gpu})"
        self._tqdm.write(f"{record.cell}: {record.status} on {where}", file=sys.stderr)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()

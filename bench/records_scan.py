"""Reading `records.jsonl` line by line when it may be damaged, and repairing it before a resume.

A line is *valid* when it is UTF-8, JSON and a readable record of this run (a record of another
run, `bench.record_origin`, is set aside like a garbled line); the file's last line counts even
without its final newline (a file cut by exactly that byte still holds a complete record). A line
that is not valid is *garbled*: readers skip it with a warning naming the file and line, and
`repair` (called by a resuming runner, which holds the run's lock) moves it to
`records.quarantine.jsonl` beside it, so its cell has no record and is rerun; it never writes
through a symbolic link (refused, naming it). Nothing is deleted: the quarantine file keeps every
byte taken out. Imports no torch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.record_origin import ForeignRecord

log = logging.getLogger(__name__)

QUARANTINE_FILE = "records.quarantine.jsonl"


@dataclass(frozen=True)
class Scan:
    """The records file split into valid records and garbled lines (1-based numbers)."""

    records: list[Any]
    garbled: list[tuple[int, bytes, str]]  # (line number, raw bytes, what is wrong with it)
    valid_lines: list[bytes]
    missing_final_newline: bool


def scan(path: Path, parse: Callable[[dict], Any]) -> Scan:
    """Split `path` into records (`parse` of each JSON object) and garbled lines."""
    data = path.read_bytes() if path.exists() else b""
    pieces = data.split(b"\n")
    missing_newline = bool(pieces and pieces[-1])
    if not missing_newline:
        pieces = pieces[:-1]
    records, garbled, valid = [], [], []
    for number, raw in enumerate(pieces, start=1):
        if not raw.strip():
            continue
        try:
            record = parse(json.loads(raw.decode("utf-8")))
        except UnicodeDecodeError as err:
            garbled.append((number, raw, f"garbled record (not UTF-8, byte {err.start})"))
        except ForeignRecord as err:
            garbled.append((number, raw, f"record of another run ({err})"))
        except (json.JSONDecodeError, TypeError, ValueError, AttributeError) as err:
            cut = number == len(pieces) and missing_newline
            why = "incomplete (a run was killed mid-write)" if cut else f"malformed: {err}"
            garbled.append((number, raw, f"garbled record ({why})"))
        else:
            records.append(record)
            valid.append(raw)
    return Scan(records, garbled, valid, missing_newline)


def warn_garbled(path: Path, result: Scan, action: str) -> None:
    for number, _, why in result.garbled:
        log.warning("%s:%d: %s; %s", path, number, why, action)


def repair(path: Path, parse: Callable[[dict], Any]) -> Path | None:
    """Make `path` hold only valid records, one per line, each ended by a newline. Garbled lines
    are appended to the quarantine file (returned, or None when there was none)."""
    from suites.atomic import write_atomic
    from suites.safe_files import open_append, refuse_link

    refuse_link(path)
    refuse_link(path.with_name(QUARANTINE_FILE))
    if not path.exists():
        return None
    result = scan(path, parse)
    if not result.garbled:
        if result.missing_final_newline:  # a complete record lacking only its newline: keep it
            with open_append(path) as f:
                f.write(b"\n")
        return None
    quarantine = path.with_name(QUARANTINE_FILE)
    with open_append(quarantine) as f:
        for _, raw, _ in result.garbled:
            f.write(raw + b"\n")
    warn_garbled(path, result, f"moved to {quarantine}; its cell will be rerun")
    write_atomic(path, lambda f: f.write(b"".join(line + b"\n" for line in result.valid_lines)))
    return quarantine

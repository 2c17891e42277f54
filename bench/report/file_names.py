"""The file names a report writes: every table and plot name holds suite, scale, task and model
names taken from records, which are data (a record can say `suite: "x/../../victim"`), so each
name becomes one shell-friendly file name inside `--out` before anything is written."""

from __future__ import annotations

import re


def file_stem(name: str) -> str:
    """A table or plot name as a shell-friendly file stem: a variant label's brackets become "_"
    and other characters outside [A-Za-z0-9._-] a "-" ("curves_lra_small_pathfinder
    [data.generator=intended]" -> "curves_lra_small_pathfinder_data.generator-intended");
    never a path, a hidden name, "." or ".." ("x/../../v" -> "x-..-..-v")."""
    stem = re.sub(r"\s*\[([^\]]*)\]", r"_\1", name)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-")
    stem = re.sub(r"^\.+", lambda dots: "_" * len(dots[0]), stem)  # no hidden file, "." or ".."
    return stem or "_"

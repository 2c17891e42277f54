"""Where `bench` caches generated data and downloads: `--cache-dir`, else `$BENCH_CACHE_DIR`,
else ~/.cache/uoe-bench, checked before anything runs.

An empty `BENCH_CACHE_DIR` is refused rather than read as unset: `Path("")` is the working
directory (a cache of gigabytes appeared wherever bench was started), and an empty value is most
often a variable meant to hold a path that did not (`BENCH_CACHE_DIR=$SCRATCH`); falling back
to the home cache would hide that mistake and fill the home disk instead. A cache directory that
exists as a file is refused up front, not left to fail each cell.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.errors import InputError

ENV = "BENCH_CACHE_DIR"
HOME_CACHE = Path.home() / ".cache" / "uoe-bench"


def resolve_cache_dir(given: Path | None) -> Path:
    """The cache directory to use: `given` (the `--cache-dir` argument), else the environment's,
    else HOME_CACHE; InputError when BENCH_CACHE_DIR is empty or the directory is a file."""
    if given is not None:
        return check_cache_dir(Path(given), f"--cache-dir {given}")
    value = os.environ.get(ENV)
    if value is None:
        return check_cache_dir(HOME_CACHE, f"the default cache directory {HOME_CACHE}")
    if not value.strip():
        raise InputError(
            f"{ENV} is set but empty (it would put the cache in the working directory); "
            "unset it, set it to a directory, or pass --cache-dir DIR"
        )
    return check_cache_dir(Path(value), f"{ENV}={value}")


def check_cache_dir(path: Path, what: str) -> Path:
    """`path`, unless something other than a directory is there (refused, naming `what`)."""
    if path.exists() and not path.is_dir():
        raise InputError(
            f"{what} is a file, not a directory; pass a directory (it is created if missing)"
        )
    return path

"""A byte-count progress bar on stderr for downloads (size, rate, time left when the server
states the length)."""

from __future__ import annotations

from tqdm import tqdm


def byte_progress(total: int | None, name: str) -> tqdm:
    """A tqdm bar over `total` bytes (open-ended when None), used as a context manager."""
    return tqdm(
        total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, dynamic_ncols=True
    )

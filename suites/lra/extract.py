"""Unpacking a downloaded archive without trusting it, and installing the result atomically.

Every member is validated here before tarfile sees it, whatever Python's own `filter="data"`
does (on Python 3.11.7 a symlink chain longer than PATH_MAX slips past that filter, the
CVE-2025-4517 class; the filter still runs as a second line):

* its path is relative, without `..`, and resolves inside the target folder;
* it is a regular file, a folder, or a link: device files, FIFOs and other types are refused;
* a symlink's target, resolved strictly on disk (every link on the way followed, any error
  - a loop, ENAMETOOLONG, a dangling link - refused), stays inside the target folder;
* a hard link names an earlier regular member;
* nothing is ever written through a symlink: each folder on a member's path must be a real
  folder, and a member may not replace a link.

Members are unpacked into a temporary folder beside the destination; only when the archive is
complete and its data verified is that folder renamed into place (the old one replaced), so a
refused member or a kill never leaves a partial unpack where the loaders look. Leftover
temporary folders (`.TASK.partial-*`) are what `bench data status` reports as `partial`. Each
is named with the pid of the process unpacking (`.TASK.partial-PID-xxxx`); the next unpack of
TASK removes those whose process is gone (a kill mid-unpack left hundreds of MB behind), and
keeps those of a process still running (a concurrent download on this machine). Folders named
before the pid was in the name are removed too. On a cache shared by several machines a pid
is only this machine's: the rule assumes one machine unpacks into a cache at a time.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from models.errors import InputError
from suites.safe_files import make_temp_dir

PARTIAL_PREFIX = ".partial-"


class UnsafeArchive(InputError):
    """A member would leave the target folder, or is of a type never unpacked."""


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _check_member(member: tarfile.TarInfo, root: str, regular: set[str]) -> str | None:
    """The normalised member name (None: the archive's own root folder, `./`, skipped), or
    UnsafeArchive naming the member and why."""
    name = member.name
    if member.isdir() and os.path.normpath(name) == "." and not os.path.isabs(name):
        return None
    parts = Path(name).parts
    if "\0" in name or os.path.isabs(name) or ".." in parts or not parts:
        raise UnsafeArchive(f"member {name!r}: an absolute or '..' path (it would leave {root})")
    target = os.path.normpath(os.path.join(root, name))
    if not _inside(target, root) or target == root:
        raise UnsafeArchive(f"member {name!r} resolves outside {root}")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeArchive(f"member {name!r} is a device file, FIFO or other special file")
    _check_no_link_on_path(root, target, name)
    if member.issym():
        link = member.linkname
        if os.path.isabs(link) or "\0" in link:
            raise UnsafeArchive(f"symlink {name!r} -> {link!r}: an absolute target")
        try:  # strict: follows every link on disk; a loop, overlong or dangling path is refused
            resolved = os.path.realpath(os.path.join(os.path.dirname(target), link), strict=True)
        except (OSError, RuntimeError) as err:
            raise UnsafeArchive(
                f"symlink {name!r} -> {link!r} does not resolve to an unpacked member ({err})"
            ) from None
        if not _inside(resolved, root):
            raise UnsafeArchive(f"symlink {name!r} -> {link!r} points outside {root}")
    if member.islnk():
        link = os.path.normpath(member.linkname)
        if link not in regular:
            raise UnsafeArchive(
                f"hard link {name!r} -> {member.linkname!r} names no earlier regular member"
            )
    return os.path.normpath(name)


def _check_no_link_on_path(root: str, target: str, name: str) -> None:
    """Every folder between root and target must be a real folder (never written through a
    symlink), and target itself must not already be a link."""
    rel = Path(os.path.relpath(target, root)).parts
    current = root
    for i, part in enumerate(rel):
        current = os.path.join(current, part)
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return
        except OSError as err:
            raise UnsafeArchive(f"member {name!r}: cannot check {current} ({err})") from None
        if stat.S_ISLNK(mode):
            raise UnsafeArchive(f"member {name!r} would be written through the link {current}")
        if i < len(rel) - 1 and not stat.S_ISDIR(mode):
            raise UnsafeArchive(f"member {name!r}: {current} is not a folder")


def unpack_staged(
    archive: Path, patterns: tuple[str, ...], dest: Path, log: Callable[[str], None] = print
) -> tuple[Path, int]:
    """Unpack the members of `archive` matching `patterns` (all if empty) into a new temporary
    folder beside `dest` (stale ones of dest removed first, each said through `log`); return it
    and the number of files. On any refusal or error the
    temporary folder is removed and UnsafeArchive / ValueError raised (nothing half-unpacked
    stays)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(dest, log)
    # mode 0o777 less the umask (mkdtemp's 0o700 would make the installed data unreadable to others)
    staging = make_temp_dir(dest.parent, f".{dest.name}{PARTIAL_PREFIX}{os.getpid()}-")
    root = os.path.realpath(staging)
    count = 0
    regular: set[str] = set()
    try:
        with tarfile.open(archive, "r|*") as tar:
            for member in tar:
                if patterns and not any(fnmatch.fnmatch(member.name, p) for p in patterns):
                    continue
                name = _check_member(member, root, regular)
                if name is None:
                    continue
                tar.extract(member, root, filter="data")
                if member.isfile():
                    regular.add(name)
                    count += 1
    except (tarfile.TarError, UnsafeArchive) as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise UnsafeArchive(
            f"{archive}: archive refused, nothing was unpacked into {dest}: {err}"
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, count


def install(staging: Path, dest: Path) -> None:
    """Rename `staging` to `dest`, replacing what was there (moved aside, then removed)."""
    old = None
    if dest.exists() or dest.is_symlink():
        old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old-"))
        os.replace(dest, old / "data")
    os.replace(staging, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def leftovers(dest: Path) -> list[Path]:
    """Temporary folders of unpacks of `dest` that never completed (killed)."""
    parent = dest.parent
    if not parent.is_dir():
        return []
    return sorted(parent.glob(f".{dest.name}{PARTIAL_PREFIX}*"))


def remove_stale(dest: Path, log: Callable[[str], None] = print) -> list[Path]:
    """Remove the temporary folders of unpacks of `dest` whose process is gone (`leftovers`
    whose name holds no pid, or the pid of no running process); say each through `log`."""
    removed = []
    for folder in leftovers(dest):
        pid = folder.name.removeprefix(f".{dest.name}{PARTIAL_PREFIX}").split("-", 1)[0]
        if pid.isdigit() and _running(int(pid)):
            continue
        shutil.rmtree(folder)
        log(f"removed {folder}, left by an unpack that was stopped")
        removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: running
        return True
    except OverflowError:  # not a pid at all
        return False
    return True

"""`bench data download TASK` and `bench data status`: fetch, verify, unpack and report LRA data.

An archive is streamed to cache_dir/downloads/ while its SHA-256 is computed, checked against
the known digest (or `--sha256`), then unpacked (only the members the task needs, with tarfile's
"data" filter) into cache_dir/data/TASK, where the loaders look after --data-dir. The URL can be
overridden (`--url`, any urllib scheme, file:// included), so tests run end to end offline.
Unpacking never trusts the archive (every member validated, a temporary folder moved into place
only when complete: `suites.lra.extract`); a complete unpack is marked with the digest it was
verified against, which `bench data status` reports (present / unverified / partial / absent).

Digests: IMDB and CIFAR-10 are pinned below (the published SHA-256 of each archive). No digest
for the LRA release (lra_release.gz, ~8 GB, used for retrieval and the ListOps TSVs) is known to
this project, so those downloads require `--sha256` instead of skipping the check.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from models.errors import InputError
from suites.atomic import write_atomic, write_text_atomic
from suites.data import DataRequest, DataUnavailable
from suites.lra import extract
from suites.lra.byte_progress import byte_progress
from suites.lra.files import download_dir

_LRA_RELEASE = "https://storage.googleapis.com/long-range-arena/lra_release.gz"
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Archive:
    """A public archive holding one task's files."""

    url: str
    filename: str
    sha256: str | None  # None: unknown here, the user must pass one
    members: tuple[str, ...]  # fnmatch patterns of the members to unpack; () = all


ARCHIVES: dict[str, Archive] = {
    "text": Archive(
        "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
        "aclImdb_v1.tar.gz",
        "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
        ("aclImdb/train/pos/*", "aclImdb/train/neg/*", "aclImdb/test/pos/*", "aclImdb/test/neg/*"),
    ),
    "image": Archive(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar-10-python.tar.gz",
        "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        (),
    ),
    "retrieval": Archive(_LRA_RELEASE, "lra_release.gz", None, ("*tsv_data/new_aan_pairs.*.tsv",)),
    "listops": Archive(_LRA_RELEASE, "lra_release.gz", None, ("*listops-1000/basic_*.tsv",)),
}


def unreachable_message(task: str, url: str, archive: Path, exc: OSError) -> str:
    """One line: what failed, the URL, and how to place the file by hand."""
    reason = getattr(exc, "reason", None) or exc
    return (
        f"{task}: could not fetch {url} ({reason}); no network here? Fetch that file on a "
        f"machine that has one, copy it here and run: bench data download {task} --url "
        f"file:///PATH/TO/{archive.name}"
    )


class ChecksumMismatch(InputError):
    """The downloaded bytes do not have the expected SHA-256."""


def _fetch(url: str, dest: Path, expected: str) -> None:
    """Stream `url` to `dest`, verifying its SHA-256; a mismatch removes the file and raises."""

    def stream(out: IO[bytes]) -> None:
        digest = hashlib.sha256()
        with urllib.request.urlopen(url) as response:
            size = response.headers.get("Content-Length")
            with byte_progress(int(size) if size and size.isdigit() else None, dest.name) as bar:
                while block := response.read(_BLOCK):
                    digest.update(block)
                    out.write(block)
                    bar.update(len(block))
        got = digest.hexdigest()
        if got != expected.lower():  # raising here discards the partial file
            raise ChecksumMismatch(
                f"SHA-256 mismatch for {url}: expected {expected}, got {got}; the download was "
                "discarded. Retry, or if you trust this file, pass --sha256 with its digest"
            )

    write_atomic(dest, stream)


def _finders() -> dict[str, Callable[[DataRequest], Path]]:
    from suites.lra.image import find_cifar
    from suites.lra.listops.tsv import find_tsv_dir
    from suites.lra.retrieval import find_aan
    from suites.lra.text import find_imdb

    def listops(request: DataRequest) -> Path:
        if request.data_dir is not None:
            return find_tsv_dir(Path(request.data_dir))
        root = download_dir(request.cache_dir, "listops")
        found = sorted(root.rglob("basic_train.tsv")) if root.is_dir() else []
        return find_tsv_dir(found[0].parent if found else root)

    return {
        "text": find_imdb,
        "image": find_cifar,
        "retrieval": find_aan,
        "listops (official TSVs)": listops,
    }


def _request(cache_dir: Path, data_dir: Path | None) -> DataRequest:
    return DataRequest(0, 0, 0, 0, 0, cache_dir=Path(cache_dir), data_dir=data_dir)


def download(
    task: str,
    cache_dir: Path,
    *,
    url: str | None = None,
    sha256: str | None = None,
    keep_archive: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Fetch, verify and unpack TASK's archive into the cache; returns the ready data path."""
    if task not in ARCHIVES:
        raise InputError(
            f"no download for task {task!r}; downloadable: {', '.join(ARCHIVES)} (pathfinder "
            "is generated on first use)"
        )
    spec = ARCHIVES[task]
    expected = sha256 or spec.sha256
    if expected is None:
        raise InputError(
            f"{task}: no SHA-256 of {spec.filename} is known to uoe-bench, and downloads are "
            f"always verified; pass --sha256 HEX (the digest of a copy you trust)"
        )
    archive = Path(cache_dir) / "downloads" / spec.filename
    source = url or spec.url
    log(f"downloading {source} -> {archive}")
    try:
        _fetch(source, archive, expected)
    except OSError as exc:  # no network, DNS, HTTP error, unreadable file:// path
        raise InputError(unreachable_message(task, source, archive, exc)) from None
    dest = download_dir(cache_dir, task)
    log(f"verified SHA-256 {expected}; unpacking into {dest}")
    ready, count = _unpack_verified(task, archive, spec, dest, expected, source, log)
    if not keep_archive:
        archive.unlink()
    log(f"{task}: ready at {ready} ({count} files)")
    if task == "listops":  # the generator stays the default; the official files are opt-in
        log(f"use the official ListOps files with: bench run --data-dir {ready} ...")
    return ready


def marker_file(dest: Path) -> Path:
    """Beside cache_dir/data/TASK: the digest and source its files were verified against."""
    return dest.parent / f".{dest.name}.verified.json"


def _unpack_verified(
    task: str,
    archive: Path,
    spec: Archive,
    dest: Path,
    sha256: str,
    source: str,
    log: Callable[[str], None] = print,
) -> tuple[Path, int]:
    """Unpack into a temporary folder (every member validated: suites.lra.extract), check that
    the task's data is complete there, mark it verified, then move it into place at `dest`.
    Returns the data path under `dest` and the number of files."""
    staging, count = extract.unpack_staged(archive, spec.members, dest, log)
    try:
        found = _find_in(task, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    marker = marker_file(dest)
    marker.unlink(missing_ok=True)  # never left naming the digest of the data replaced here
    extract.install(staging, dest)
    record = {"sha256": sha256, "source": source, "files": count}
    write_text_atomic(marker, json.dumps(record) + "\n")
    return dest / found.relative_to(staging), count


def _find_in(task: str, root: Path) -> Path:
    """TASK's data inside `root` (a fresh unpack), or ValueError saying what is missing."""
    try:
        if task == "listops":
            from suites.lra.listops.tsv import find_tsv_dir

            found = sorted(root.rglob("basic_train.tsv"))
            path = find_tsv_dir(found[0].parent if found else root)
        else:
            path = _finders()[task](_request(root / ".none", root))
    except (DataUnavailable, ValueError) as err:
        raise InputError(f"{task}: the archive's data is incomplete: {err}") from None
    if not path.is_relative_to(root):
        raise InputError(f"{task}: the archive holds none of the task's data (found {path})")
    return path


@dataclass(frozen=True)
class TaskStatus:
    task: str
    present: bool
    where: str  # the data path, or where we looked and what to run
    size_bytes: int | None
    # present (a verified download) | unverified (files found, not from a verified download:
    # --data-dir or copied by hand) | partial (incomplete or an unpack cut short) | absent
    state: str = ""


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def status(cache_dir: Path, data_dir: Path | None = None) -> list[TaskStatus]:
    """Each LRA task's data: present, unverified, partial or absent, where, size in bytes
    (generated sets: the cache)."""
    rows = []
    for task, find in _finders().items():
        name = "listops" if task.startswith("listops") else task
        dest = download_dir(cache_dir, name)
        cut_short = extract.leftovers(dest)
        try:
            path = find(_request(cache_dir, data_dir))
        except (DataUnavailable, ValueError) as err:
            partial = bool(cut_short) or isinstance(err, ValueError)
            where = str(err)
            if cut_short:
                where = f"an unpack was cut short ({cut_short[0]}); rerun bench data download "
                where += f"{name}. {err}"
            rows.append(TaskStatus(task, False, where, None, "partial" if partial else "absent"))
            continue
        verified = path.is_relative_to(dest) and marker_file(dest).is_file()
        state = "present" if verified else "unverified"
        where = str(path)
        if not verified:
            where += " (not from a verified download: no digest checked)"
        if cut_short:
            where += f"; a later unpack was cut short and left {cut_short[0]} (remove it)"
        rows.append(TaskStatus(task, True, where, _size(path), state))
    for task in ("listops", "pathfinder"):
        cache = Path(cache_dir) / task
        files = sorted(cache.glob("*.pt")) if cache.is_dir() else []
        where = f"generated on first use; {len(files)} cached set(s) in {cache} (digests are "
        where += "checked on load)"
        state = "present" if files else "absent"
        rows.append(
            TaskStatus(f"{task} (generated)", bool(files), where, sum(map(_size, files)), state)
        )
    return rows

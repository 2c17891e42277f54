"""`bench data download wikitext103 | enwik8`: fetch, verify and unpack a language-modelling
corpus, with the same checks as the LRA downloads (`suites.lra.download`): the archive is
streamed to cache_dir/downloads/ while its SHA-256 is computed and compared (no digest of either
zip is known to this project, so `--sha256` is required: a download is never unchecked); an
unreachable source is one line naming the URL and how to place the file by hand (`--url
file:///...`); only the named members are read from the zip, each written under our own name into
a temporary folder that is moved into place at cache_dir/data/TASK only when complete, and marked
with the digest it was verified against.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.errors import InputError
from suites.atomic import write_text_atomic
from suites.lra import extract
from suites.lra.download import _fetch, marker_file, unreachable_message
from suites.lra.files import download_dir
from suites.safe_files import make_temp_dir

_BLOCK = 1 << 20


@dataclass(frozen=True)
class ZipCorpus:
    """A public zip holding one corpus: {member in the zip: the file name we store}."""

    url: str
    filename: str
    members: dict[str, str]


ZIPS: dict[str, ZipCorpus] = {
    "wikitext103": ZipCorpus(
        "https://wikitext.smerity.com/wikitext-103-v1.zip",
        "wikitext-103-v1.zip",
        {f"wikitext-103/wiki.{s}.tokens": f"wiki.{s}.tokens" for s in ("train", "valid", "test")},
    ),
    "enwik8": ZipCorpus("http://mattmahoney.net/dc/enwik8.zip", "enwik8.zip", {"enwik8": "enwik8"}),
}


def download(
    task: str,
    cache_dir: Path,
    *,
    url: str | None = None,
    sha256: str | None = None,
    keep_archive: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Fetch, verify and unpack TASK's zip into cache_dir/data/TASK; returns that folder."""
    spec = ZIPS[task]
    if not sha256:
        raise InputError(
            f"{task}: no SHA-256 of {spec.filename} is known to uoe-bench, and downloads are "
            "always verified; pass --sha256 HEX (the digest of a copy you trust)"
        )
    archive = Path(cache_dir) / "downloads" / spec.filename
    source = url or spec.url
    log(f"downloading {source} -> {archive}")
    try:
        _fetch(source, archive, sha256)
    except OSError as exc:  # no network, DNS, HTTP error, unreadable file:// path
        raise InputError(unreachable_message(task, source, archive, exc)) from None
    dest = download_dir(cache_dir, task)
    log(f"verified SHA-256 {sha256}; unpacking into {dest}")
    count = _unpack(task, archive, spec, dest, log)
    marker = marker_file(dest)
    write_text_atomic(
        marker, json.dumps({"sha256": sha256, "source": source, "files": count}) + "\n"
    )
    if not keep_archive:
        archive.unlink()
    log(f"{task}: ready at {dest} ({count} files)")
    return dest


def _unpack(
    task: str, archive: Path, spec: ZipCorpus, dest: Path, log: Callable[[str], None]
) -> int:
    """The named members into a temporary folder beside `dest`, then moved into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    extract.remove_stale(dest, log)
    staging = make_temp_dir(dest.parent, f".{dest.name}{extract.PARTIAL_PREFIX}{os.getpid()}-")
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                names = set(zf.namelist())
                missing = sorted(set(spec.members) - names)
                if missing:
                    raise InputError(
                        f"{task}: the archive's data is incomplete: {archive} lacks "
                        f"{', '.join(missing)}"
                    )
                for member, ours in spec.members.items():
                    with zf.open(member) as src, (staging / ours).open("wb") as out:
                        shutil.copyfileobj(src, out, _BLOCK)
        except zipfile.BadZipFile as err:
            raise InputError(
                f"{archive}: not a zip archive ({err}); nothing was unpacked"
            ) from None
        marker_file(dest).unlink(missing_ok=True)
        extract.install(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(spec.members)


def status_rows(
    cache_dir: Path, data_dir: Path | None
) -> list[tuple[str, bool, str, int | None, str]]:
    """(task, present, where, bytes, state) of each corpus, as `bench data status` prints."""
    from suites.data import DataRequest, DataUnavailable
    from suites.lm.corpora import ENWIK8_FILE, WIKITEXT_FILES, find_files

    rows = []
    for task, names in (("wikitext103", WIKITEXT_FILES), ("enwik8", (ENWIK8_FILE,))):
        request = DataRequest(0, 0, 0, 0, 0, cache_dir=Path(cache_dir), data_dir=data_dir)
        try:
            folder = find_files(task, request, names)
        except (DataUnavailable, ValueError) as err:
            rows.append((task, False, str(err), None, "absent"))
            continue
        dest = download_dir(cache_dir, task)
        verified = folder == dest and marker_file(dest).is_file()
        size = sum((folder / n).stat().st_size for n in names)
        where = str(folder) + ("" if verified else " (not from a verified download)")
        rows.append((task, True, where, size, "present" if verified else "unverified"))
    rows.append(
        ("stdlib (lm)", True, "the Python standard library's source: no download", None, "present")
    )
    return rows

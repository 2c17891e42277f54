"""LRA ListOps, the official files: the release's `basic_{train,val,test}.tsv` (header
`Source<TAB>Target`, the Source with `(`/`)` around each operator node), read into examples and
loaded as the task's splits when `--data-dir` points at them."""

from __future__ import annotations

import logging
from pathlib import Path

from suites.data import DataRequest, DataUnavailable, Split, TaskData
from suites.lra.files import check_not_partial, check_regular_files
from suites.lra.listops.generate import LISTOPS_NUM_CLASSES, TOKEN_IDS, Example, encode_split

logger = logging.getLogger(__name__)

_TSV_FILES = {"train": "basic_train.tsv", "dev": "basic_val.tsv", "test": "basic_test.tsv"}
_TSV_SUBDIR = "listops-1000"
_TSV_HEADER = ["Source", "Target"]


def _parse_tsv_row(line: str, path: Path, lineno: int) -> Example:
    """One `Source<TAB>Target` row: tokens without the parentheses, and the label."""
    fields = line.split("\t")
    if len(fields) != 2:
        raise ValueError(f"{path}:{lineno}: expected 2 tab-separated fields, got {len(fields)}")
    source, target = fields
    tokens = [tok for tok in source.split() if tok not in ("(", ")")]
    if not tokens:
        raise ValueError(f"{path}:{lineno}: empty Source")
    unknown = [tok for tok in tokens if tok not in TOKEN_IDS]
    if unknown:
        raise ValueError(f"{path}:{lineno}: unknown token {unknown[0]!r} in Source")
    try:
        label = int(target)
    except ValueError:
        raise ValueError(f"{path}:{lineno}: Target {target!r} is not an integer") from None
    if not 0 <= label < LISTOPS_NUM_CLASSES:
        raise ValueError(f"{path}:{lineno}: Target {label} is outside 0..9")
    return tokens, label


def read_listops_tsv(path: Path, limit: int | None = None) -> list[Example]:
    """Read an official LRA ListOps TSV (header `Source\\tTarget`) as (tokens, label) rows:
    the first `limit` non-blank rows after the header (all of them when None), in file order.

    Reading stops once `limit` rows are kept: the rows after them are never read or parsed
    (LRA's 96,000-row train file for a 200-row split). The `(` and `)` tokens of the Source are
    dropped, leaving e.g. ["[MAX", "2", "9", "]"]. Blank lines are skipped; a malformed row
    raises ValueError naming the file and line, and so does a file without any row (even
    with limit 0).
    """
    path = Path(path)
    rows: list[Example] = []
    enough = None if limit is None else max(limit, 1)  # one row proves the file is not empty
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"{path}:{lineno}: not UTF-8 (byte {err.start} of the line: "
                    f"{raw[err.start : err.start + 1]!r})"
                ) from None
            if lineno == 1:
                if line.split("\t") != _TSV_HEADER:
                    raise ValueError(
                        f"{path}:1: expected the header 'Source<TAB>Target', got {line!r}"
                    )
            elif line.strip():
                rows.append(_parse_tsv_row(line, path, lineno))
                if enough is not None and len(rows) >= enough:
                    break
    if not rows:
        raise ValueError(f"{path}: no examples after the header (the file is empty)")
    return rows if limit is None else rows[:limit]


def find_tsv_dir(data_dir: Path) -> Path:
    """The directory holding the three basic_*.tsv files: `data_dir` or `data_dir/listops-1000`."""
    candidates = [data_dir, data_dir / _TSV_SUBDIR]
    for directory in candidates:
        if all((directory / name).is_file() for name in _TSV_FILES.values()):
            return directory
    for directory in candidates:
        check_regular_files("listops", [directory / name for name in _TSV_FILES.values()])
    check_not_partial("listops", [(d, [d / n for n in _TSV_FILES.values()]) for d in candidates])
    looked = ", ".join(str(d / name) for d in candidates for name in _TSV_FILES.values())
    raise DataUnavailable(
        f"listops: official TSV files not found; looked for {looked}. They come with the LRA "
        f"release (lra_release/listops-1000/); or drop --data-dir to use the built-in generator."
    )


def _check_fits(examples: list[Example], max_len: int, where: Path) -> None:
    """Raise ValueError (saying how to raise max_len) if an example is longer than max_len."""
    longest = max((len(toks) for toks, _ in examples), default=0)
    if longest > max_len:
        suggested = 1 << (longest - 1).bit_length()
        raise ValueError(
            f"{where} has an example of {longest} tokens, longer than max_len={max_len}; raise "
            f"max_len, e.g. --set listops.data.max_len={suggested}"
        )


def load_tsv(request: DataRequest, data_dir: Path) -> TaskData:
    """Read, truncate to the requested sizes, encode and pad the official files."""
    directory = find_tsv_dir(data_dir)
    limits = {"train": request.n_train, "dev": request.n_dev, "test": request.n_test}
    splits: dict[str, Split] = {}
    for split, name in _TSV_FILES.items():
        path = directory / name
        examples = read_listops_tsv(path, limit=limits[split])
        _check_fits(examples, request.max_len, path)
        splits[split] = encode_split(examples, request.max_len)
    logger.info("read ListOps TSVs from %s", directory)
    return TaskData(splits["train"], splits["dev"], splits["test"], f"lra-tsv:{directory}")

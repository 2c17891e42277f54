"""LRA ListOps: a seeded re-implementation of the LRA generator, a reader for the official TSVs,
and the task loader.

An example is a nested prefix expression such as ``[MAX 2 [SM 5 7 ] 9 ]`` whose label is its value
(0..9). The generator follows the LRA release (``lra_benchmarks/data/listops.py``, described in
shared/reference/lra.md, "ListOps"):

* a node at depth < max_depth draws r ~ U(0, 1) (at max_depth, r = 1); r > value_p gives a leaf
  digit uniform in 0..9, otherwise an operator node with a number of arguments uniform in
  [2, max_args], each argument sampled at depth + 1, then an operator uniform over MIN, MAX,
  MED, SM;
* the root is sampled at depth 1 (as LRA), so at most max_depth - 1 operator levels;
* values: MIN, MAX, MED = int(numpy.median(args)) (a .5 median is truncated), SM = sum mod 10;
* rejection sampling keeps trees with min_length < token count < max_length (strict) and drops
  repeated token sequences.

The random draws are made in the same order and with the same `random` methods as LRA (`random()`,
`choice` of a digit, `randint` for the argument count, children, then `choice` of the operator),
so `random.Random(seed)` yields the same stream of trees that LRA's sampler yields after
`random.seed(seed)`. Rejected trees are sampled in full rather than abandoned once they pass
max_length: abandoning them would change every later draw and saves only ~5 % of the work.

Two differences from LRA, both deliberate: the generator is seeded (LRA never seeds `random`), and
the examples keep their generation order (LRA splits by iterating a Python `set`, whose order
depends on PYTHONHASHSEED), so a seed always gives the same splits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import random
import time
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType

import torch

from suites.data import DataRequest, DataUnavailable, Split, TaskData, pad_sequences
from suites.lra.files import save_atomic

logger = logging.getLogger(__name__)

LISTOPS_TOKENS: tuple[str, ...] = (
    *(str(d) for d in range(10)),
    "[MIN",
    "[MAX",
    "[MED",
    "[SM",
    "]",
)
# Ids 1..15; id 0 is suites.data.PAD_ID.
_TOKEN_IDS = MappingProxyType({tok: i + 1 for i, tok in enumerate(LISTOPS_TOKENS)})
LISTOPS_VOCAB_SIZE = len(LISTOPS_TOKENS) + 1  # 16: the tokens plus PAD_ID
LISTOPS_NUM_CLASSES = 10

# Bump whenever a change to the generator changes its output, so stale caches are not reused.
LISTOPS_GENERATOR_VERSION = 1

# LRA defaults.
LISTOPS_MAX_DEPTH = 10
LISTOPS_MAX_ARGS = 10
LISTOPS_VALUE_P = 0.25
LRA_MAX_LENGTH = 2000  # LRA keeps 500 < length < 2000

_OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
_DIGIT_VALUES = range(10)
_DIGITS = tuple(str(d) for d in range(10))
_END = "]"
_ROOT_DEPTH = 1  # LRA samples the root at depth 1
# Refuse parameters whose expected tree length is this large: sampling would not finish.
_MAX_EXPECTED_LENGTH = 100_000
# Give up after this many draws in a row without a new example (bounds too narrow for n).
_MAX_STALLED_DRAWS = 200_000

_TSV_FILES = {"train": "basic_train.tsv", "dev": "basic_val.tsv", "test": "basic_test.tsv"}
_TSV_SUBDIR = "listops-1000"
_TSV_HEADER = ["Source", "Target"]

Example = tuple[list[str], int]


def encode_tokens(tokens: list[str]) -> list[int]:
    """Token ids (1..15) of a ListOps token list; raises ValueError naming an unknown token."""
    try:
        return [_TOKEN_IDS[tok] for tok in tokens]
    except KeyError as err:
        raise ValueError(
            f"unknown ListOps token {err.args[0]!r}; known tokens: {' '.join(LISTOPS_TOKENS)}"
        ) from None


# --------------------------------------------------------------------------------------------
# Generator


def _median_int(args: Sequence[int]) -> int:
    """int(numpy.median(args)) for non-negative ints: the mean of the middle two is truncated."""
    ordered = sorted(args)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) // 2


def _apply(op: str, args: list[int]) -> int:
    """The value of operator `op` on its argument values."""
    if op == "[MIN":
        return min(args)
    if op == "[MAX":
        return max(args)
    if op == "[MED":
        return _median_int(args)
    return sum(args) % 10  # "[SM"


def _sample_operator(
    rng: random.Random, depth: int, max_depth: int, max_args: int, value_p: float, out: list[str]
) -> int:
    """Append the tokens of an operator node at `depth` to `out`; return its value.

    Leaf arguments are drawn inline (no call per leaf); operator arguments recurse, so the Python
    recursion depth is at most max_depth.
    """
    op_index = len(out)
    out.append("")  # the operator is drawn after the arguments, as in LRA
    child_depth = depth + 1
    values: list[int] = []
    for _ in range(rng.randint(2, max_args)):
        r = rng.random() if child_depth < max_depth else 1.0
        if r > value_p:
            digit = rng.choice(_DIGIT_VALUES)
            out.append(_DIGITS[digit])
            values.append(digit)
        else:
            values.append(_sample_operator(rng, child_depth, max_depth, max_args, value_p, out))
    op = rng.choice(_OPERATORS)
    out[op_index] = op
    out.append(_END)
    return _apply(op, values)


def _sample_tree(rng: random.Random, max_depth: int, max_args: int, value_p: float) -> Example:
    """One tree from the LRA sampler, as (tokens, value)."""
    r = rng.random() if max_depth > _ROOT_DEPTH else 1.0
    if r > value_p:
        digit = rng.choice(_DIGIT_VALUES)
        return [_DIGITS[digit]], digit
    tokens: list[str] = []
    value = _sample_operator(rng, _ROOT_DEPTH, max_depth, max_args, value_p, tokens)
    return tokens, value


def _expected_tree_length(max_depth: int, max_args: int, value_p: float) -> float:
    """Expected token count of a tree sampled at the root depth (no length bounds)."""
    mean_args = (2 + max_args) / 2
    length = 1.0  # a node at max_depth is always a leaf
    for _ in range(max_depth - _ROOT_DEPTH):
        length = (1 - value_p) + value_p * (2 + mean_args * length)
    return length


def _check_generator_args(
    n: int, min_length: int, max_length: int, max_depth: int, max_args: int, value_p: float
) -> None:
    """Raise ValueError for parameters that cannot produce n examples in reasonable time."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if max_depth < 1 or max_args < 2 or not 0.0 <= value_p <= 1.0:
        raise ValueError(
            f"need max_depth >= 1, max_args >= 2 and 0 <= value_p <= 1; got max_depth={max_depth},"
            f" max_args={max_args}, value_p={value_p}"
        )
    # A tree has 1 token (a digit) or at least 4 (an operator, two digits and "]").
    leaf_fits = min_length < 1 < max_length
    operator_fits = max_depth > _ROOT_DEPTH and value_p > 0 and max(min_length + 1, 4) < max_length
    if n and not (leaf_fits or operator_fits):
        raise ValueError(
            f"no ListOps tree has a length strictly between min_length={min_length} and "
            f"max_length={max_length}"
        )
    expected = _expected_tree_length(max_depth, max_args, value_p)
    if expected > _MAX_EXPECTED_LENGTH:
        raise ValueError(
            f"max_depth={max_depth}, max_args={max_args}, value_p={value_p} give trees of "
            f"{expected:.3g} tokens on average; sampling them would not finish"
        )


def generate_listops(
    n: int,
    *,
    seed: int,
    min_length: int,
    max_length: int,
    max_depth: int = LISTOPS_MAX_DEPTH,
    max_args: int = LISTOPS_MAX_ARGS,
    value_p: float = LISTOPS_VALUE_P,
) -> list[Example]:
    """`n` distinct ListOps examples (tokens, label) with min_length < len(tokens) < max_length.

    Deterministic in its arguments: the examples come in generation order of a
    `random.Random(seed)`. Raises ValueError for impossible bounds and RuntimeError when
    _MAX_STALLED_DRAWS draws in a row give no new example (fewer distinct trees fit the bounds).
    """
    _check_generator_args(n, min_length, max_length, max_depth, max_args, value_p)
    rng = random.Random(seed)
    seen: set[tuple[str, ...]] = set()  # membership only; never iterated
    examples: list[Example] = []
    draws = stalled = 0
    start = time.perf_counter()
    while len(examples) < n:
        tokens, value = _sample_tree(rng, max_depth, max_args, value_p)
        draws += 1
        stalled += 1
        if min_length < len(tokens) < max_length:
            key = tuple(tokens)
            if key not in seen:
                seen.add(key)
                examples.append((tokens, value))
                stalled = 0
        if stalled >= _MAX_STALLED_DRAWS:
            raise RuntimeError(
                f"ListOps generator found only {len(examples)} of {n} distinct examples with "
                f"{min_length} < length < {max_length}; no new one in {stalled} draws"
            )
    logger.info(
        "generated %d ListOps examples (%d < length < %d, seed %d) from %d draws in %.1f s",
        n,
        min_length,
        max_length,
        seed,
        draws,
        time.perf_counter() - start,
    )
    return examples


# --------------------------------------------------------------------------------------------
# Official TSV files


def _parse_tsv_row(line: str, path: Path, lineno: int) -> Example:
    """One `Source<TAB>Target` row: tokens without the parentheses, and the label."""
    fields = line.split("\t")
    if len(fields) != 2:
        raise ValueError(f"{path}:{lineno}: expected 2 tab-separated fields, got {len(fields)}")
    source, target = fields
    tokens = [tok for tok in source.split() if tok not in ("(", ")")]
    if not tokens:
        raise ValueError(f"{path}:{lineno}: empty Source")
    unknown = [tok for tok in tokens if tok not in _TOKEN_IDS]
    if unknown:
        raise ValueError(f"{path}:{lineno}: unknown token {unknown[0]!r} in Source")
    try:
        label = int(target)
    except ValueError:
        raise ValueError(f"{path}:{lineno}: Target {target!r} is not an integer") from None
    if not 0 <= label < LISTOPS_NUM_CLASSES:
        raise ValueError(f"{path}:{lineno}: Target {label} is outside 0..9")
    return tokens, label


def read_listops_tsv(path: Path) -> list[Example]:
    """Read an official LRA ListOps TSV (header `Source\\tTarget`) as (tokens, label) rows.

    The `(` and `)` tokens of the Source are dropped, leaving e.g. ["[MAX", "2", "9", "]"].
    Blank lines are skipped; a malformed row raises ValueError naming the file and line.
    """
    path = Path(path)
    rows: list[Example] = []
    with path.open(encoding="utf-8") as f:
        header = f.readline().rstrip("\r\n")
        if header.split("\t") != _TSV_HEADER:
            raise ValueError(f"{path}:1: expected the header 'Source<TAB>Target', got {header!r}")
        for lineno, raw in enumerate(f, start=2):
            line = raw.rstrip("\r\n")
            if line.strip():
                rows.append(_parse_tsv_row(line, path, lineno))
    return rows


def _find_tsv_dir(data_dir: Path) -> Path:
    """The directory holding the three basic_*.tsv files: `data_dir` or `data_dir/listops-1000`."""
    candidates = [data_dir, data_dir / _TSV_SUBDIR]
    for directory in candidates:
        if all((directory / name).is_file() for name in _TSV_FILES.values()):
            return directory
    looked = ", ".join(str(d / name) for d in candidates for name in _TSV_FILES.values())
    raise DataUnavailable(
        f"listops: official TSV files not found; looked for {looked}. They come with the LRA "
        f"release (lra_release/listops-1000/); or drop --data-dir to use the built-in generator."
    )


def _encode_split(examples: list[Example], max_len: int) -> Split:
    """Encode and pad (tokens, label) examples to a Split; the caller has checked the lengths."""
    tokens, lengths = pad_sequences([encode_tokens(toks) for toks, _ in examples], max_len)
    labels = torch.tensor([label for _, label in examples], dtype=torch.int64)
    return Split(inputs=(tokens,), lengths=(lengths,), labels=labels)


def _check_fits(examples: list[Example], max_len: int, where: Path) -> None:
    """Raise ValueError (saying how to raise max_len) if an example is longer than max_len."""
    longest = max((len(toks) for toks, _ in examples), default=0)
    if longest > max_len:
        suggested = 1 << (longest - 1).bit_length()
        raise ValueError(
            f"{where} has an example of {longest} tokens, longer than max_len={max_len}; raise "
            f"max_len, e.g. --set listops.data.max_len={suggested}"
        )


def _load_tsv(request: DataRequest, data_dir: Path) -> TaskData:
    """Read, truncate to the requested sizes, encode and pad the official files."""
    directory = _find_tsv_dir(data_dir)
    limits = {"train": request.n_train, "dev": request.n_dev, "test": request.n_test}
    splits: dict[str, Split] = {}
    for split, name in _TSV_FILES.items():
        path = directory / name
        examples = read_listops_tsv(path)[: limits[split]]
        _check_fits(examples, request.max_len, path)
        splits[split] = _encode_split(examples, request.max_len)
    logger.info("read ListOps TSVs from %s", directory)
    return TaskData(splits["train"], splits["dev"], splits["test"], f"lra-tsv:{directory}")


# --------------------------------------------------------------------------------------------
# Generated data and its cache


def listops_length_bounds(max_len: int) -> tuple[int, int]:
    """(min_length, max_length) of generated data for a padded length `max_len`.

    max_length = min(max_len, 2000) and min_length = max_length // 4, both exclusive: at
    max_len 2048 these are LRA's 500 < length < 2000; shorter max_len scale both down.
    """
    max_length = min(max_len, LRA_MAX_LENGTH)
    return max_length // 4, max_length


def _generation_params(request: DataRequest) -> dict[str, int | float]:
    """Every parameter that determines the generated tensors."""
    min_length, max_length = listops_length_bounds(request.max_len)
    return {
        "version": LISTOPS_GENERATOR_VERSION,
        "n_train": request.n_train,
        "n_dev": request.n_dev,
        "n_test": request.n_test,
        "seed": request.seed,
        "min_length": min_length,
        "max_length": max_length,
        "max_depth": LISTOPS_MAX_DEPTH,
        "max_args": LISTOPS_MAX_ARGS,
        "value_p": LISTOPS_VALUE_P,
        "max_len": request.max_len,
    }


def listops_cache_path(request: DataRequest) -> Path:
    """Cache file of the generated data for `request`: cache_dir/listops/<params hash>.pt."""
    canonical = json.dumps(_generation_params(request), sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    return Path(request.cache_dir) / "listops" / f"{key}.pt"


def _to_tensors(data: TaskData) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name in ("train", "dev", "test"):
        split: Split = getattr(data, name)
        out[f"{name}.tokens"] = split.inputs[0]
        out[f"{name}.lengths"] = split.lengths[0]
        out[f"{name}.labels"] = split.labels
    return out


def _from_tensors(tensors: dict[str, torch.Tensor], source: str) -> TaskData:
    splits = [
        Split(
            inputs=(tensors[f"{name}.tokens"],),
            lengths=(tensors[f"{name}.lengths"],),
            labels=tensors[f"{name}.labels"],
        )
        for name in ("train", "dev", "test")
    ]
    return TaskData(*splits, source)


def _load_cache(path: Path, request: DataRequest) -> TaskData | None:
    """The cached data at `path`, or None if it is missing or unreadable (then regenerated)."""
    if not path.is_file():
        return None
    try:
        data = _from_tensors(torch.load(path, weights_only=True), f"generated:{path}")
    except (OSError, RuntimeError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as err:
        logger.warning("ignoring unreadable ListOps cache %s (%s); regenerating", path, err)
        return None
    sizes = (len(data.train), len(data.dev), len(data.test))
    if sizes != (request.n_train, request.n_dev, request.n_test):
        logger.warning("ignoring ListOps cache %s with split sizes %s; regenerating", path, sizes)
        return None
    logger.info("loaded generated ListOps from cache %s", path)
    return data


def _generate(request: DataRequest, path: Path) -> TaskData:
    """Generate all splits at once (so no example is in two splits) and cache them."""
    min_length, max_length = listops_length_bounds(request.max_len)
    n_train, n_dev = request.n_train, request.n_dev
    examples = generate_listops(
        n_train + n_dev + request.n_test,
        seed=request.seed,
        min_length=min_length,
        max_length=max_length,
    )
    data = TaskData(
        _encode_split(examples[:n_train], request.max_len),
        _encode_split(examples[n_train : n_train + n_dev], request.max_len),
        _encode_split(examples[n_train + n_dev :], request.max_len),
        f"generated:{path}",
    )
    save_atomic(_to_tensors(data), path)
    return data


def load_listops(request: DataRequest) -> TaskData:
    """ListOps for `request`: the official TSVs if `request.data_dir` is set, else generated.

    Generated data uses listops_length_bounds(request.max_len) and request.seed and is cached at
    listops_cache_path(request). TSV data takes the first n_train / n_dev / n_test rows of
    basic_train / basic_val / basic_test.
    """
    if request.data_dir is not None:
        return _load_tsv(request, Path(request.data_dir))
    path = listops_cache_path(request)
    cached = _load_cache(path, request)
    return cached if cached is not None else _generate(request, path)

"""LRA ListOps, the generator: a seeded re-implementation of the LRA sampler, and the vocabulary.

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

import logging
import random
import time
from collections.abc import Sequence
from types import MappingProxyType

import torch

from suites.data import Split, pad_sequences

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
TOKEN_IDS = MappingProxyType({tok: i + 1 for i, tok in enumerate(LISTOPS_TOKENS)})
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

Example = tuple[list[str], int]


def encode_tokens(tokens: list[str]) -> list[int]:
    """Token ids (1..15) of a ListOps token list; raises ValueError naming an unknown token."""
    try:
        return [TOKEN_IDS[tok] for tok in tokens]
    except KeyError as err:
        raise ValueError(
            f"unknown ListOps token {err.args[0]!r}; known tokens: {' '.join(LISTOPS_TOKENS)}"
        ) from None


def encode_split(examples: list[Example], max_len: int) -> Split:
    """Encode and pad (tokens, label) examples to a Split; the caller has checked the lengths."""
    tokens, lengths = pad_sequences([encode_tokens(toks) for toks, _ in examples], max_len)
    labels = torch.tensor([label for _, label in examples], dtype=torch.int64)
    return Split(inputs=(tokens,), lengths=(lengths,), labels=labels)


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

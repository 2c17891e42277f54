"""Measured choice of the grouped-GEMM path: a short autotune per shape class on the machine it
runs on, kept in a table keyed by that machine, instead of a rule measured on another one.

The fixed rule (`dispatch.rule_choice`) was measured on one AMD EPYC with AVX2 and misfires on
others (issue 29: on an AVX-512 EPYC it took `torch` at 0.76 of dense where `mm_concurrent` gave
1.06). Here each call's shape class (device, dtype, experts, K, N, rows per expert rounded to a
power of two) is timed once for every path that can run it, forward + backward of one grouped
GEMM on synthetic operands of the class, interleaved over a few rounds; the fastest median wins,
unless it beats the rule's own choice by less than TIE_MARGIN (then the rule's choice stays: two
runs on a noisy machine then agree, and the goal, within 5 % of the best path, still holds).

A table is valid only for the machine key it was made under (`MachineKey`: CPU model, a digest
of its flags, torch's CPU capability, torch version, intra-op threads, GPU name): a table of
another key is refused (`TableRefused`), as is one that is not a table. Reading and writing the
file is the application's (`bench.kernel_tuning`: the cache directory, atomic writes); this
module holds the policy, the timing and the JSON form. The timer is injectable, so tests check
the choice against fake timings.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import _disable_current_modes

FORMAT = "uoe-bench grouped_mm autotune"
FORMAT_VERSION = 1
# A path must be this much faster than the rule's choice to displace it (fraction of its time).
TIE_MARGIN = 0.03
ROUNDS = 5


class TableRefused(ValueError):
    """A tuning table that cannot be used: `kind` is 'corrupt' or 'foreign' (another machine)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class MachineKey:
    """What a timing depends on besides the shape: where the table is valid."""

    device: str  # "cpu", or the CUDA device's name
    cpu: str
    cpu_flags: str  # sha256 prefix of the sorted CPU flags
    cpu_capability: str  # the vector ISA torch's CPU kernels use
    torch: str
    threads: int

    def digest(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MachineKey:
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__})


def _cpu_facts() -> tuple[str, str]:
    """(model name, sha256 prefix of the sorted flags) from /proc/cpuinfo where there is one."""
    found: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            found.setdefault(key.strip(), value.strip())  # the first processor's
    name = found.get("model name") or platform.processor() or platform.machine()
    flags = " ".join(sorted((found.get("flags") or found.get("Features") or "").split()))
    return name, hashlib.sha256(flags.encode()).hexdigest()[:16]


def machine_key(device: torch.device | str = "cpu") -> MachineKey:
    """The key of this process: its CPU, torch build, intra-op threads and (CUDA) device."""
    device = torch.device(device)
    name, flags = _cpu_facts()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return MachineKey(
        device=gpu,
        cpu=name,
        cpu_flags=flags,
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
    )


@dataclass(frozen=True)
class ShapeClass:
    """The calls that share one choice: rows per expert rounded to a power of two."""

    device: str  # "cpu" or "cuda"
    dtype: str
    experts: int
    k: int
    n: int
    rows_per_expert: int

    @property
    def key(self) -> str:
        return (
            f"{self.device} {self.dtype} E{self.experts} K{self.k} N{self.n} "
            f"r{self.rows_per_expert}"
        )

    @property
    def rows(self) -> int:
        return self.experts * self.rows_per_expert


def shape_class(weight: torch.Tensor, rows: int) -> ShapeClass:
    """The class of a call multiplying `rows` rows by weight (E, K, N)."""
    experts, k, n = weight.shape
    per_expert = max(1.0, rows / max(experts, 1))
    return ShapeClass(
        device=weight.device.type,
        dtype=str(weight.dtype).removeprefix("torch."),
        experts=experts,
        k=k,
        n=n,
        rows_per_expert=2 ** round(math.log2(per_expert)),
    )


@dataclass(frozen=True)
class Choice:
    """The path chosen for a class and the median seconds of every candidate timed."""

    impl: str
    seconds: Mapping[str, float]
    load: float | None = None  # the 1-minute load average when it was timed

    def to_dict(self) -> dict[str, Any]:
        return {"impl": self.impl, "seconds": dict(self.seconds), "load": self.load}


@dataclass(frozen=True)
class TuningTable:
    """The choices made on one machine key, by shape-class key."""

    machine: MachineKey
    choices: Mapping[str, Choice] = field(default_factory=dict)

    def with_choice(self, key: str, choice: Choice) -> TuningTable:
        return TuningTable(self.machine, {**self.choices, key: choice})

    def merged(self, other: TuningTable) -> TuningTable:
        """This table plus the classes only `other` has (a choice once made is kept)."""
        return TuningTable(self.machine, {**other.choices, **self.choices})

    def to_json(self) -> str:
        body = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "machine": self.machine.to_dict(),
            "digest": self.machine.digest(),
            "choices": {k: c.to_dict() for k, c in sorted(self.choices.items())},
        }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, expected: MachineKey, paths: Collection[str]) -> TuningTable:
        """The table in `text`; TableRefused unless it is a table of the `expected` key whose
        choices are all among `paths` (the dispatcher's implementations)."""
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict) or raw.get("format") != FORMAT:
                raise ValueError("not a grouped_mm autotune table")
            if raw.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {raw.get('version')}, not {FORMAT_VERSION}")
            machine = MachineKey.from_dict(raw["machine"])
            choices = {
                str(key): Choice(
                    impl=str(c["impl"]),
                    seconds={str(p): float(s) for p, s in c["seconds"].items()},
                    load=None if c.get("load") is None else float(c["load"]),
                )
                for key, c in raw["choices"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise TableRefused("corrupt", f"not a readable tuning table ({err})") from None
        if machine != expected or raw.get("digest") != expected.digest():
            raise TableRefused(
                "foreign", f"made on another machine key ({machine}), not this one ({expected})"
            )
        unknown = sorted({c.impl for c in choices.values()} - set(paths))
        if unknown:
            raise TableRefused("corrupt", f"names unknown paths {', '.join(unknown)}")
        return cls(machine, choices)


# seconds of one forward + backward of `impl` on operands of the class
Timer = Callable[[str, ShapeClass], float]
# grouped_mm(x, weight, offsets, impl=NAME)
GroupedMmByName = Callable[..., torch.Tensor]


def operands(cls: ShapeClass, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """x (A, K), weight (E, K, N), offsets (E,) int32, grad (A, N). The A rows go to experts by
    a seeded uniform draw, as random routing spreads them (binomial counts, not an even split):
    an even split hides the padding the `bmm` path pays for its fullest expert, so it won the
    tuning at E64 and lost at 0.85 of the best path under real routing."""
    gen = torch.Generator().manual_seed(seed)
    dtype = getattr(torch, cls.dtype)
    scale = cls.k**-0.5

    def rand(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale).to(dtype).to(cls.device)

    x = rand(cls.rows, cls.k)  # (A, K)
    weight = rand(cls.experts, cls.k, cls.n)  # (E, K, N)
    expert_of_row = torch.randint(0, cls.experts, (cls.rows,), generator=gen)  # (A,)
    counts = torch.bincount(expert_of_row, minlength=cls.experts)  # (E,) rows of each expert
    offsets = counts.cumsum(0).to(torch.int32).to(cls.device)  # (E,)
    return x, weight, offsets, rand(cls.rows, cls.n)


def wall_seconds(run: GroupedMmByName, impl: str, cls: ShapeClass) -> float:
    """Seconds of one forward + backward of `run(..., impl=impl)` on the class's operands
    (synchronised on CUDA); `dispatch.wall_timer` is this with its `grouped_mm`."""
    x, weight, offsets, grad = operands(cls)
    leaves = [x.requires_grad_(), weight.requires_grad_()]
    cuda = cls.device == "cuda"
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = run(leaves[0], leaves[1], offsets, impl=impl)  # (A, N)
    torch.autograd.grad(out, leaves, grad)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def autotune(
    cls: ShapeClass, candidates: tuple[str, ...], timer: Timer, rounds: int = ROUNDS
) -> Choice:
    """Time every candidate `rounds` times, interleaved after one warm-up call each, and pick
    the fastest median; candidates[0] (the rule's choice) stays unless another is faster by
    more than TIE_MARGIN of its time. Ties between the others go to the earlier one."""
    if not candidates:
        raise ValueError(f"no grouped_mm path can run {cls.key}")
    for impl in candidates:
        timer(impl, cls)  # warm-up: first-call allocation, thread pools, kernel compilation
    samples: dict[str, list[float]] = {impl: [] for impl in candidates}
    for _ in range(rounds):
        for impl in candidates:
            samples[impl].append(timer(impl, cls))
    medians = {impl: statistics.median(s) for impl, s in samples.items()}
    best = min(candidates, key=lambda impl: (medians[impl], candidates.index(impl)))
    if medians[best] >= medians[candidates[0]] * (1 - TIE_MARGIN):
        best = candidates[0]
    return Choice(best, medians, _load())


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


class Autotuner:
    """The process's measured policy: a table, grown by tuning each new class on first use.

    `persist(table)` is called after each new choice: the application writes the file and
    returns the table to go on with (its own merged with choices other processes made);
    `candidates(weight)` lists the paths that can run a weight, the rule's choice first.
    """

    def __init__(
        self,
        table: TuningTable,
        candidates: Callable[[torch.Tensor, int], tuple[str, ...]],
        *,
        timer: Timer,
        persist: Callable[[TuningTable], TuningTable] | None = None,
        rounds: int = ROUNDS,
    ) -> None:
        self.table = table
        self._candidates = candidates
        self._timer = timer
        self._persist = persist
        self._rounds = rounds
        self._lock = threading.Lock()

    def choose(self, weight: torch.Tensor, rows: int) -> str:
        cls = shape_class(weight, rows)
        with self._lock:
            known = self.table.choices.get(cls.key)
            if known is not None:
                return known.impl
            options = self._candidates(weight, cls.rows)
            # Tuning times fresh tensors, not the caller's: outside any dispatch mode (a FLOP
            # counter must not count it), with grad on (eval forwards run under no_grad).
            with _disable_current_modes(), torch.inference_mode(False), torch.enable_grad():
                choice = autotune(cls, options, self._timer, self._rounds)
            self.table = self.table.with_choice(cls.key, choice)
            if self._persist is not None:
                self.table = self._persist(self.table)
            return self.table.choices[cls.key].impl

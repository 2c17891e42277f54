"""What each layer phase (router, dispatch, expert_gemm, combine, attention, mlp, ...) costs of a
profiled training step, forward and backward, read from the profiler's events.

The phases are `record_function` ranges (`models.layers.ranges`) and exist in the forward only:
the autograd engine runs the backward outside them, so a plain range sum leaves the backward
(about a fifth of a UoE step, issue 29) outside every phase. The backward is attributed through
the profiler's forward-backward link instead: every op recorded under grad mode carries a
sequence number, and the engine's `autograd::engine::evaluate_function: XBackward` event for its
gradient carries the same number (and the forward's thread id). So a backward node belongs to the
phase its forward op ran in. Chosen over wrapping each phase in an autograd.Function that opens a
range in the backward: that needs a hook at each phase's inputs and outputs (and cannot see
gradients of tensors a phase reads without returning), costs time when no profiler runs, and
mis-attributes interleaved branches (a residual's gradient runs while a phase's is open); the
link is exact per node and free outside a profile.

Forward time of a phase is the wall time of its outermost ranges; backward time the wall time of
the top-level backward nodes linked to it (nested phases count for the outer one, so nothing is
counted twice). `other` is the rest of the step: embeddings, norms, loss, optimizer, and backward
nodes of ops outside every phase.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from models.layers.ranges import ALL_PHASES

BACKWARD_PREFIX = "autograd::engine::evaluate_function: "
STEP_PREFIX = "ProfilerStep"  # "ProfilerStep#N", or "ProfilerStep*" in event lists
# Always listed (the routing cost and its dense counterparts), even at zero; others when seen.
SUMMARY_PHASES = ("router", "dispatch", "expert_gemm", "combine", "attention", "mlp")


@dataclass(frozen=True)
class PhaseTime:
    phase: str
    forward_s: float
    backward_s: float

    @property
    def total_s(self) -> float:
        return self.forward_s + self.backward_s


@dataclass(frozen=True)
class PhaseSummary:
    """Seconds of the profiled steps (all of them together) and of each phase in them."""

    steps: int
    step_s: float
    phases: tuple[PhaseTime, ...]
    backward_s: float  # every top-level backward node, attributed or not
    unattributed_backward_nodes: int  # nodes linked to no phase (they are in `other`)

    @property
    def other_s(self) -> float:
        return self.step_s - sum(p.total_s for p in self.phases)

    def percent(self, seconds: float) -> float:
        return 100.0 * seconds / self.step_s if self.step_s > 0 else 0.0

    def rows(self) -> list[dict[str, Any]]:
        """One row per phase and 'other': % of the step forward, backward and in all."""
        out = [
            {
                "phase": p.phase,
                "fwd %": round(self.percent(p.forward_s), 1),
                "bwd %": round(self.percent(p.backward_s), 1),
                "total %": round(self.percent(p.total_s), 1),
                "ms per step": round(1e3 * p.total_s / max(self.steps, 1), 3),
            }
            for p in self.phases
        ]
        out.append(
            {
                "phase": "other",
                "fwd %": None,
                "bwd %": None,
                "total %": round(self.percent(self.other_s), 1),
                "ms per step": round(1e3 * self.other_s / max(self.steps, 1), 3),
            }
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "step_s": self.step_s,
            "backward_s": self.backward_s,
            "unattributed_backward_nodes": self.unattributed_backward_nodes,
            "phases": {
                p.phase: {"forward_s": p.forward_s, "backward_s": p.backward_s} for p in self.phases
            },
            "other_s": self.other_s,
        }

    def text(self) -> str:
        from tabulate import tabulate

        head = (
            f"phases: {self.steps} step(s), {1e3 * self.step_s / max(self.steps, 1):.2f} ms "
            f"per step; backward {self.percent(self.backward_s):.1f} % of the step, "
            f"{self.unattributed_backward_nodes} backward node(s) outside every phase (in other)"
        )
        return head + "\n" + tabulate(self.rows(), headers="keys", tablefmt="github")


def _seconds(event: Any) -> float:
    return (event.time_range.end - event.time_range.start) * 1e-6  # profiler times are in us


def _outer_phase(event: Any) -> str | None:
    """The outermost phase range around `event` (itself included), or None."""
    found = None
    node = event
    while node is not None:
        if node.name in ALL_PHASES:
            found = node.name
        node = node.cpu_parent
    return found


def _inside_backward_node(event: Any) -> bool:
    node = event.cpu_parent
    while node is not None:
        if node.name.startswith(BACKWARD_PREFIX):
            return True
        node = node.cpu_parent
    return False


def _in_steps(event: Any, windows: Sequence[tuple[float, float]]) -> bool:
    start = event.time_range.start
    return any(low <= start < high for low, high in windows)


@dataclass(frozen=True)
class BackwardNode:
    """One top-level backward node: the engine's name for it, its phase (None: outside every
    phase) and its wall seconds."""

    name: str
    phase: str | None
    seconds: float


def _recorded(events: Iterable[Any]) -> tuple[list[Any], list[Any]]:
    """(the step ranges, the events starting inside one); with no step range, all events."""
    events = list(events)
    steps = [e for e in events if e.name.startswith(STEP_PREFIX)]
    windows = [(e.time_range.start, e.time_range.end) for e in steps]
    return steps, [e for e in events if _in_steps(e, windows)] if windows else events


def backward_nodes(events: Iterable[Any]) -> list[BackwardNode]:
    """Every top-level backward node among the profiler's `FunctionEvent`s, with the phase of
    the forward op that created it (the module doc: linked by sequence number)."""
    _steps, events = _recorded(events)
    # (forward thread, sequence number) -> (start, phase) of the latest op carrying it: ops
    # record the number the next autograd node will get, so those before the node's creator
    # share it; the creator (or one of its children, in the same phase) starts last.
    latest: dict[tuple[int, int], tuple[float, str | None]] = {}
    nodes = []
    for event in events:
        if event.name.startswith(BACKWARD_PREFIX):
            if not _inside_backward_node(event):
                nodes.append(event)
        elif event.sequence_nr >= 0 and not _inside_backward_node(event):
            key, start = (event.thread, event.sequence_nr), event.time_range.start
            if key not in latest or latest[key][0] <= start:
                latest[key] = (start, _outer_phase(event))
    return [
        BackwardNode(
            node.name.removeprefix(BACKWARD_PREFIX),
            latest.get((node.fwd_thread, node.sequence_nr), (0.0, None))[1],
            _seconds(node),
        )
        for node in nodes
    ]


def summarize(events: Iterable[Any]) -> PhaseSummary:
    """The summary of the profiler's `FunctionEvent`s (`prof.events()`) of the recorded steps.
    Only events starting inside a `ProfilerStep` range count; with no step range, all do (and
    the step is the span from the first event to the last)."""
    events = list(events)
    steps, inside = _recorded(events)
    if steps:
        step_s = sum(_seconds(e) for e in steps)
    elif inside:
        step_s = max(e.time_range.end for e in inside) - min(e.time_range.start for e in inside)
        step_s *= 1e-6
    else:
        step_s = 0.0
    forward = dict.fromkeys(ALL_PHASES, 0.0)
    backward = dict.fromkeys(ALL_PHASES, 0.0)
    for event in inside:
        if event.name in ALL_PHASES and _outer_phase(event.cpu_parent) is None:
            forward[event.name] += _seconds(event)
    nodes = backward_nodes(events)
    for node in nodes:
        if node.phase is not None:
            backward[node.phase] += node.seconds
    shown = [p for p in ALL_PHASES if p in SUMMARY_PHASES or forward[p] or backward[p]]
    return PhaseSummary(
        steps=len(steps),
        step_s=step_s,
        phases=tuple(PhaseTime(p, forward[p], backward[p]) for p in shown),
        backward_s=sum(n.seconds for n in nodes),
        unattributed_backward_nodes=sum(n.phase is None for n in nodes),
    )

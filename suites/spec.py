"""What a suite and its tasks declare: the specs the runner and the reports read, and the
model-facing `ModelTask` a task hands to a model builder."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from models.config import ModelTask
from suites.config import Scale
from suites.data import DataRequest, TaskData
from suites.metric import Metric


@dataclass(frozen=True)
class TaskSpec:
    """A classification or (causal) language-modelling task: its input shape and its loader.

    `load` returns the task's data or raises `suites.data.DataUnavailable` with the fix.
    """

    name: str  # short name, used in records and tables: "listops"
    suite: str
    description: str
    num_classes: int
    vocab_size: int  # including the padding id 0
    num_inputs: int  # 1, or 2 for a dual-encoder task (retrieval)
    load: Callable[[DataRequest], TaskData]
    # the `data.generator` names its loader can draw with; the first is the default (an empty
    # `data.generator` resolves to it, so the manifest and records name it)
    generators: tuple[str, ...] = ()
    # a next-token language-modelling task: its models are built in their causal form and its
    # labels are (N, L) next tokens (suites/lm)
    causal: bool = False

    @property
    def key(self) -> str:
        """The registry name, `suite/task`."""
        return f"{self.suite}/{self.name}"

    def model_task(self, max_len: int) -> ModelTask:
        """What a model builder needs of this task, at the padded length `max_len`."""
        return ModelTask(
            self.num_classes, self.vocab_size, self.num_inputs, max_len, causal=self.causal
        )


SUITE_KINDS = ("accuracy", "efficiency")


@dataclass(frozen=True)
class SuiteSpec:
    """A named set of tasks, in table order, with its scale presets.

    kind: "accuracy" cells train, evaluate, then measure; "efficiency" cells only measure
    (training step speed, memory, FLOPs) on the task's data, with no training to convergence.
    reference_model: the model relative figures are ratios to (computed by the reports from
    the records of one run, never stored in a record).
    metrics: the figures this suite's cells write beyond the harness's own (`bench.metrics`),
        each declared with its unit, direction and kind; the run's manifest stores them, so
        reports and `bench compare` know them without importing the suite.
    """

    name: str
    description: str
    tasks: tuple[str, ...]  # short task names
    scales: Mapping[str, Scale]
    kind: str = "accuracy"
    reference_model: str = "full_attention"
    metrics: tuple[Metric, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in SUITE_KINDS:
            raise ValueError(f"suite {self.name!r}: kind must be one of {SUITE_KINDS}")
        for scale in self.scales.values():
            unknown = sorted(set(scale.tasks) - set(self.tasks))
            if unknown:
                raise ValueError(
                    f"suite {self.name!r}: scale {scale.name!r} lists tasks it lacks: {unknown}"
                )

"""A task's data for a run, loaded the same way by every launcher (in the driver's process by the
in-process launcher, on the worker by the Ray one): the plan's data request for the task (at a
sweep point), or the loader's exception, which every cell of the task records."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from bench.runner.plan import ResolvedPlan
from suites.data import DataRequest, DataUnavailable, TaskData

log = logging.getLogger(__name__)


def load_task_data(resolved: ResolvedPlan, task: str, variant: str = "") -> TaskData | Exception:
    """The task's data (at sweep point `variant`), or the loader's exception (recorded in every
    cell of the task, with the traceback logged; DataUnavailable makes the cells `skipped`)."""
    cfg = resolved.config(task, variant).data
    plan = resolved.plan
    request = DataRequest(
        max_len=cfg.max_len,
        n_train=cfg.n_train,
        n_dev=cfg.n_dev,
        n_test=cfg.n_test,
        seed=cfg.seed,
        cache_dir=Path(plan.cache_dir),
        data_dir=Path(plan.data_dir_for(task)) if plan.data_dir_for(task) else None,
        generator=cfg.generator,
    )
    try:
        return resolved.tasks[task].load(request)
    except DataUnavailable as exc:
        return exc
    except Exception as exc:  # recorded in every cell of the task, not swallowed
        log.error("loading %s failed:\n%s", task, traceback.format_exc())
        return exc

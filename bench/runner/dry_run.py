"""`bench run --dry-run`, and the data lines of a run's plan: the cells a plan covers, each
task's resolved config on one line, and the data each task needs (length, split sizes, where it
comes from), without loading data or building a model."""

from __future__ import annotations

from bench.measure.numerics import numerics
from bench.runner.plan import ResolvedPlan


def config_line(resolved: ResolvedPlan, task: str) -> str:
    """Every field of the task's resolved config, `section.field=value`, on one line; then the
    own fields of each planned model that has any, `; models: model.field=value`, the models
    with the same values together."""
    config = resolved.configs[task].to_dict()
    line = " ".join(f"{s}.{k}={v}" for s, fields in config.items() for k, v in fields.items())
    groups: dict[str, list[str]] = {}
    for model, fields in resolved.planned_model_fields(task).items():
        text = " ".join(f"model.{k}={v}" for k, v in fields.items())
        groups.setdefault(text, []).append(model)
    return line + "".join(f"; {', '.join(models)}: {text}" for text, models in groups.items())


def data_needs(resolved: ResolvedPlan) -> dict[str, str]:
    """task -> what data it needs and where it will come from."""
    plan = resolved.plan
    needs = {}
    for task in plan.tasks:
        data = resolved.configs[task].data
        directory = plan.data_dir_for(task)
        source = f"files in {directory}" if directory else f"cache {plan.cache_dir}"
        needs[task] = (
            f"L={data.max_len}, up to {data.n_train}/{data.n_dev}/{data.n_test} train/dev/test "
            f"examples, data seed {data.seed}; {source}"
        )
    return needs


def dry_run_text(resolved: ResolvedPlan) -> str:
    plan = resolved.plan
    cells = plan.cells()
    threads = plan.threads if plan.threads is not None else "torch default"
    lines = [
        f"{plan.suite} at scale {plan.scale}: {len(cells)} cells ({len(plan.tasks)} tasks x "
        f"{len(plan.models)} models x {len(plan.seeds)} seeds), device {plan.device}, "
        f"threads {threads}",
        "numerics: " + " ".join(f"{k}={v}" for k, v in numerics().items()),
    ]
    needs = data_needs(resolved)
    for task in plan.tasks:
        lines.append(f"{task}:")
        lines.append(f"  config: {config_line(resolved, task)}")
        lines.append(f"  data:   {needs[task]}")
        lines += [f"  cell:   {cell}" for cell in cells if cell.task == task]
    return "\n".join(lines)

"""The `bench` commands that read rather than run: `list` (the registries and the metric
catalog), `report`, `compare`, `check-model` and `data`. Like `bench.commands`, each imports the
harness inside itself, so `bench --help` stays fast."""

from __future__ import annotations

import argparse
import sys


def list_registries(args: argparse.Namespace) -> int:
    from bench import registries

    if args.what == "metrics":
        return list_metrics(markdown=args.markdown)
    registries.discover()
    by_kind = {
        "models": registries.MODELS,
        "suites": registries.SUITES,
        "tasks": registries.TASKS,
    }
    for what in [args.what] if args.what else list(by_kind):
        print(f"{what}:")
        entries = list(by_kind[what].entries())
        width = max((len(e.name) for e in entries), default=0)
        for entry in entries:
            print(f"  {entry.name:<{width}}  {entry.description}")
    return 0


def list_metrics(markdown: bool) -> int:
    """The metric catalog: every figure a record can carry (suites' own figures after it)."""
    from bench import registries
    from bench.metric_catalog import HARNESS

    if markdown:
        print(HARNESS.markdown_table())
        return 0
    registries.discover()
    suites = [(s.name, s.metrics) for s in (e.obj for e in registries.SUITES.entries())]
    entries = [("", m) for m in HARNESS] + [(n, m) for n, ms in suites for m in ms]
    width = max(len(m.name) for _, m in entries)
    for suite, m in entries:
        unit = f"[{m.unit}]" if m.unit else ""
        own = f" (suite {suite})" if suite else ""
        print(f"  {m.name:<{width}}  {unit:<9} {m.direction:<7} {m.kind:<13} {m.description}{own}")
    return 0


def report(args: argparse.Namespace) -> int:
    from bench.report.build import build_report

    report = build_report(
        args.run_dirs,
        args.format,
        args.out,
        plots=not args.no_plots,
        published=args.published,
        vs=args.vs,
    )
    if args.out is None:
        print(report.text)
    for path in report.files:
        print(path)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def compare(args: argparse.Namespace) -> int:
    from bench.report.compare import Tolerances
    from bench.report.compare_view import render
    from bench.report.comparison import compare_dirs

    tolerances = Tolerances(
        factor=args.factor,
        acc_tol=args.acc_tol,
        rel_tol=args.rel_tol,
        ratio_factor=args.ratio_factor,
    )
    comparison = compare_dirs(
        args.base,
        args.new,
        tolerances,
        models=_names(args.models),
        tasks=_names(args.tasks),
        require_all=args.require_all,
        reference=args.timing_reference,
    )
    print(render(comparison, args.format, verbose=args.verbose))
    return 1 if comparison.regressed else 0


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip()) if text else ()


def check_model(args: argparse.Namespace) -> int:
    from bench.check_model import check_model

    return check_model(args.model)


def data(args: argparse.Namespace) -> int:
    from bench.cache_dir import resolve_cache_dir
    from suites.lra import download

    cache_dir = resolve_cache_dir(args.cache_dir)
    from suites.lm import download as lm_download

    if args.data_command == "download" and args.task in lm_download.ZIPS:
        lm_download.download(
            args.task, cache_dir, url=args.url, sha256=args.sha256, keep_archive=args.keep_archive
        )
        return 0
    if args.data_command == "download":
        download.download(
            args.task,
            cache_dir,
            url=args.url,
            sha256=args.sha256,
            keep_archive=args.keep_archive,
        )
        return 0
    rows = download.status(cache_dir, args.data_dir)
    rows += [download.TaskStatus(*row) for row in lm_download.status_rows(cache_dir, args.data_dir)]
    width = max(len(r.task) for r in rows)
    for r in rows:
        size = f"{r.size_bytes} bytes" if r.size_bytes is not None else "-"
        state = r.state or ("present" if r.present else "absent")
        print(f"{r.task:<{width}}  {state:<10}  {size:>16}  {r.where}")
    return 0

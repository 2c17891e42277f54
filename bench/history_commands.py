"""`bench history add | show | dashboard`: the history of runs across commits (bench/history/).
The parser is built here so `bench/cli.py` only hands it its subparsers; each command imports
the history modules inside itself, so `bench --help` stays fast."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_HISTORY = Path("results") / "history"


def add_parser(sub: argparse._SubParsersAction) -> None:
    history = sub.add_parser(
        "history", help="runs across commits: add runs, show series and steps, a dashboard"
    )
    history_sub = history.add_subparsers(dest="history_command", required=True)
    add = history_sub.add_parser("add", help="add run directories to the history (idempotent)")
    add.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    add.add_argument(
        "--allow-dirty",
        action="store_true",
        help="add a run made from a checkout with uncommitted changes (marked dirty)",
    )
    add.set_defaults(func=add_runs)
    show = history_sub.add_parser(
        "show", help="per figure, its series across commits and the steps detected in it"
    )
    show.add_argument("--figure", help="one figure (bench list metrics)")
    show.add_argument("--model", help="one model")
    show.add_argument("--task", help="one task")
    show.set_defaults(func=show_history)
    board = history_sub.add_parser(
        "dashboard", help="write a static HTML dashboard (index.html) of the history"
    )
    board.add_argument("--out", type=Path, required=True, help="directory for index.html")
    board.add_argument(
        "--commit-url",
        help="link of a commit, {sha} standing for it (default: the GitHub URL of `git remote` "
        "origin when there is one, else no link)",
    )
    board.set_defaults(func=dashboard)
    for parser in (add, show, board):
        parser.add_argument(
            "--history",
            type=Path,
            default=DEFAULT_HISTORY,
            help=f"the history directory (default: {DEFAULT_HISTORY})",
        )
        parser.add_argument(
            "--repo",
            type=Path,
            help="git repository of the runs' commits, for their dates and order (default: the "
            "one holding the current directory)",
        )


def _repo(args: argparse.Namespace) -> Path | None:
    from bench.history.order import default_repo

    return default_repo(args.repo or Path.cwd())


def add_runs(args: argparse.Namespace) -> int:
    from bench.history.store import add_run

    repo = _repo(args)
    for run_dir in args.run_dirs:
        path, what = add_run(args.history, run_dir, repo, allow_dirty=args.allow_dirty)
        print(f"{what}: {run_dir} -> {path}")
    return 0


def show_history(args: argparse.Namespace) -> int:
    from bench.history.analysis import analyse
    from bench.history.show import render

    print(render(analyse(args.history, _repo(args), args.figure, args.model, args.task)))
    return 0


def dashboard(args: argparse.Namespace) -> int:
    from bench.history.analysis import analyse
    from bench.history.dashboard import commit_url_template, write_dashboard

    repo = _repo(args)
    history = analyse(args.history, repo)
    template = args.commit_url if args.commit_url is not None else commit_url_template(repo)
    path = write_dashboard(history, args.out, template)
    current = history.regressions(current_only=True)
    print(f"dashboard: {path} ({len(current)} current regression(s))")
    return 0

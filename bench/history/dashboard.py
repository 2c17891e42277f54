"""`bench history dashboard --out DIR`: one static, self-contained `index.html` (inline CSS, SVG
and a few lines of plain JS; nothing is fetched, no server is needed). First the current
regressions (each series' last step when it is a regression and the series reaches its machine's
latest commit), then per suite and figure the trend of every series across commits with its
sample band and its steps, each step linked to its first changed commit; selectors filter the
page by model, task and machine (preset by the page's query: index.html?model=uoe&task=first).

asv's publisher was considered first: its page loads jQuery, flot and bootstrap from CDNs and
reads its JSON with XHR (so it needs a server), and asv's benchmarks have no better direction
(asv#958), so accuracy would read as a regression when it rises.
"""

from __future__ import annotations

import html
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench.history.analysis import History, series_label
from bench.history.show import formatter, step_size, step_values
from bench.history.steps import SERIES_KEY, Step
from bench.history.svg import chart
from suites.atomic import write_text_atomic

INDEX = "index.html"
CSS = """
body{font:14px sans-serif;margin:1em 2em;color:#222}
h1{font-size:1.5em}h2{margin-top:1.5em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
.regression{color:#c62828}.improvement{color:#2e7d32}.change{color:#757575}
.grid{display:flex;flex-wrap:wrap;gap:8px}
.card{border:1px solid #ddd;padding:4px;font-size:12px}
.trend text{font-size:9px;fill:#555}
.band{fill:#90caf9;fill-opacity:.45;stroke:none}
.line{fill:none;stroke:#1565c0;stroke-width:1.2}
.dot{fill:#1565c0}.dot.busy{fill:#fff;stroke:#ef6c00}
.step{stroke-width:2;stroke-dasharray:4 2}
#filters select{margin-right:1em}
.none{color:#2e7d32}
"""
SCRIPT = """
function applyFilters() {
  var want = {};
  document.querySelectorAll('#filters select').forEach(function (s) { want[s.name] = s.value; });
  function shown(el) {
    return Object.keys(want).every(function (k) { return !want[k] || el.dataset[k] === want[k]; });
  }
  document.querySelectorAll('[data-model]').forEach(function (el) {
    el.style.display = shown(el) ? '' : 'none';
  });
  document.querySelectorAll('details.figure').forEach(function (d) {
    var any = Array.prototype.some.call(d.querySelectorAll('.card'), function (c) {
      return c.style.display !== 'none';
    });
    d.style.display = any ? '' : 'none';
  });
  var visible = document.querySelectorAll('.card:not([style*="none"])').length;
  document.getElementById('count').textContent = visible + ' series shown';
}
var query = new URLSearchParams(window.location.search);
document.querySelectorAll('#filters select').forEach(function (s) {
  if (query.has(s.name)) { s.value = query.get(s.name); }
  s.addEventListener('change', applyFilters);
});
applyFilters();
"""


def commit_url_template(repo: Path | None) -> str | None:
    """'https://github.com/OWNER/NAME/commit/{sha}' when `repo`'s origin is on GitHub."""
    if repo is None:
        return None
    done = subprocess.run(
        ["git", "-C", str(repo), "remote", "get-url", "origin"], capture_output=True, text=True
    )
    found = re.search(r"github\.com[:/]([^/]+)/(.+?)(\.git)?/?$", done.stdout.strip())
    if done.returncode != 0 or not found:
        return None
    return f"https://github.com/{found.group(1)}/{found.group(2)}/commit/{{sha}}"


def write_dashboard(history: History, out: Path, url_template: str | None) -> Path:
    """Write `out/index.html` atomically; its path."""

    def link(sha: str) -> str | None:
        return url_template.replace("{sha}", sha) if url_template else None

    path = Path(out) / INDEX
    write_text_atomic(path, page(history, link))
    path.chmod(0o644)  # a published page: readable by the web server, like any other file
    return path


def _commit(sha: str, link: Callable[[str], str | None]) -> str:
    url = link(sha)
    text = f"<code>{html.escape(sha[:8])}</code>"
    return f'<a href="{html.escape(url)}">{text}</a>' if url else text


def _data(key: tuple) -> str:
    machine, _, _, _, task, model = key[:6]
    return (
        f'data-model="{html.escape(model)}" data-task="{html.escape(task)}" '
        f'data-machine="{html.escape(machine)}"'
    )


def _step_row(step: Step, history: History, link: Callable[[str], str | None]) -> str:
    metric = history.catalog.get(step.series[-1])
    values = step_values(step, metric).replace("->", "→")
    machines = len(history.latest) > 1
    return (
        f'<tr {_data(step.series)}><td class="{step.verdict}">{step.verdict}</td>'
        f"<td>{html.escape(metric.label)} <code>{html.escape(step.series[-1])}</code></td>"
        f"<td>{html.escape(series_label(step.series, machines))}</td>"
        f"<td>{html.escape(step_size(step, metric))}</td><td>{html.escape(values)}</td>"
        f"<td>{_commit(step.last_good, link)} (last good) → {_commit(step.first_bad, link)}"
        "</td></tr>"
    )


def _cause_list(current: list[Step], link: Callable[[str], str | None]) -> str:
    """One line per (model, commit range) above the table of regressions: a cause that moved
    many figures (a slower model moves its times, rates and ratios in every task) reads as one
    line, with its tasks and the number of figures."""
    groups: dict[tuple[str, str, str, str, str], list[Step]] = {}
    for step in current:
        _, suite, scale, _, _, model = step.series[:6]
        groups.setdefault((model, suite, scale, step.last_good, step.first_bad), []).append(step)
    items = []
    for (model, suite, scale, good, bad), steps in groups.items():
        tasks = ", ".join(sorted({s.series[4] for s in steps}))
        figures = len({s.series[-1] for s in steps})
        items.append(
            f"<li><b>{html.escape(model)}</b> ({html.escape(f'{suite}/{scale}')}; tasks "
            f"{html.escape(tasks)}): {len(steps)} series, {figures} figure(s), between "
            f"{_commit(good, link)} (last good) and {_commit(bad, link)}</li>"
        )
    return f'<ul id="causes">{"".join(items)}</ul>'


def _select(name: str, values: list[str]) -> str:
    options = "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values)
    every = '<option value="">all</option>'
    return f'<label>{name} <select name="{name}">{every}{options}</select></label>'


def page(history: History, link: Callable[[str], str | None]) -> str:
    points, order = history.points, history.order
    steps_of: dict[tuple, list[Step]] = {}
    for step in history.steps:
        steps_of.setdefault(step.series, []).append(step)
    current = history.regressions(current_only=True)
    head = ["<th>" + h + "</th>" for h in ("", "figure", "series", "size", "values", "commits")]
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>uoe-bench history</title>',
        f"<style>{CSS}</style></head><body>",
        "<h1>uoe-bench history</h1>",
        f"<p>{history.runs['run_id'].nunique()} runs, {len(order.shas)} commits "
        f"({_commit(order.shas[0], link)} … {_commit(order.shas[-1], link)}), "
        f"{len(history.latest)} machine(s); commits ordered by {html.escape(order.method)}. "
        "Band: lowest to highest timed sample; hollow dot: a run on a busy machine (its absolute "
        "timings are not used for steps; its timings' ratios to the reference model are).</p>",
        f'<h2 id="current">Current regressions ({len(current)})</h2>',
    ]
    if current:
        body.append(_cause_list(current, link))
        rows = "".join(_step_row(s, history, link) for s in current)
        body.append(f'<table id="regressions"><tr>{"".join(head)}</tr>{rows}</table>')
    else:
        body.append('<p class="none">None: no series\'s latest level is a regression.</p>')
    filters = [
        _select("model", sorted(points["model"].unique())),
        _select("task", sorted(points["task"].unique())),
        _select("machine", sorted(points["machine_key"].unique())),
    ]
    body.append(f'<p id="filters">{"".join(filters)}<span id="count"></span></p>')
    for suite in sorted(points["suite"].unique()):
        body.append(f"<h2>Suite {html.escape(suite)}</h2>")
        in_suite = points[points["suite"] == suite]
        for figure in history.catalog.order(in_suite["figure"].unique()):
            metric = history.catalog.get(figure)
            rows = in_suite[in_suite["figure"] == figure].sort_values("relative_to", kind="stable")
            units = {
                relative: formatter(metric, relative, group["value"])
                for relative, group in rows.groupby("relative_to")
            }
            cards, figure_steps = [], []
            for key, series in rows.groupby(list(SERIES_KEY), sort=False, dropna=False):
                plain, unit = units[key[-2]]

                def fmt(v: float, plain=plain, unit=unit, ratio=bool(key[-2])) -> str:
                    if ratio:  # the card's title names the reference; the axis has no room
                        return f"{plain(v)}x"
                    return plain(v) + (f" {unit}" if unit else "")

                steps = steps_of.get(key, [])
                figure_steps += steps
                svg = chart(series, steps, order.shas, fmt, link)
                title = html.escape(series_label(key, len(history.latest) > 1))
                cards.append(f'<div class="card" {_data(key)}><div>{title}</div>{svg}</div>')
            marks = f" — {len(figure_steps)} step(s)" if figure_steps else ""
            opened = " open" if figure_steps else ""
            body.append(
                f'<details class="figure"{opened}><summary><b>{html.escape(metric.label)}</b> '
                f"<code>{html.escape(figure)}</code>, {metric.direction} is better{marks}"
                "</summary>"
            )
            if figure_steps:
                rows_html = "".join(_step_row(s, history, link) for s in figure_steps)
                body.append(f"<table>{rows_html}</table>")
            body.append(f'<div class="grid">{"".join(cards)}</div></details>')
    body.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(body)

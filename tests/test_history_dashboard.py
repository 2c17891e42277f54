"""The history dashboard in a real headless browser (Debian's chromium): the page of a history
with a planted regression loads without a console message, its first section lists exactly the
planted regressions with links to their commits, its filters (plain JS, preset from the query)
hide the other series, it fetches nothing, and a screenshot is written. Skipped when chromium is
not installed (`apt-get install chromium`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from history_fixtures import COUNTED, TIMED, make_repo, make_run

from bench.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)
COMMITS, PLANTED = 12, 6
URL = "https://github.com/example/uoe-bench/commit/{sha}"


def _chromium(url: str, *args: str) -> tuple[str, str]:
    done = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", "--window-size=1280,1600", *args, url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> tuple[Path, list[str]]:
    tmp = tmp_path_factory.mktemp("board")
    shas = make_repo(tmp / "repo", COMMITS)
    rng = np.random.default_rng(7)
    runs = []
    for i, sha in enumerate(shas):
        plant = {"timing_factor": 2.0, "flops_factor": 2.0} if i >= PLANTED else {}
        runs.append(str(make_run(tmp / "runs", f"run{i:02d}", sha, rng, **plant)))
    common = ["--history", str(tmp / "history"), "--repo", str(tmp / "repo")]
    assert main(["history", "add", *runs, *common]) == 0
    out = tmp / "dashboard"
    assert main(["history", "dashboard", "--out", str(out), "--commit-url", URL, *common]) == 0
    return out / "index.html", shas


def test_the_page_loads_cleanly_and_leads_with_the_planted_regression(board) -> None:
    page, shas = board
    text = page.read_text()
    assert not re.search(r"<script[^>]+src=|<link |@import|url\(", text), "nothing is fetched"
    dom, log = _chromium(page.as_uri(), "--dump-dom")
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    assert re.search(r"\d+ series shown", dom), "the page's script ran"
    current = dom.split('id="current"', 1)[1].split("</table>", 1)[0]
    # per seed (2): the step time and training time of TIMED, and their ratios to full_attention,
    # and the forward FLOPs of COUNTED
    assert "Current regressions (10)" in dom
    rows = re.findall(r"<tr data-model=\"(\w+)\" data-task=\"(\w+)\".*?</tr>", current, re.S)
    assert sorted(set(rows)) == sorted({TIMED[::-1], COUNTED[::-1]})
    table = current.split('id="regressions"', 1)[1]
    assert table.count(URL.format(sha=shas[PLANTED])) == 10, "each links its first changed commit"
    # above the table, one line per cause: the two planted models, each linking its commit
    causes = current.split('id="causes"', 1)[1].split("</ul>", 1)[0]
    assert causes.count("<li>") == 2 and causes.count(URL.format(sha=shas[PLANTED])) == 2
    assert table.count(URL.format(sha=shas[PLANTED - 1])) == 10, "and its last good one"
    assert dom.index('id="current"') < dom.index("Suite lra"), "regressions come first"


def test_filters_preset_from_the_query_hide_other_series(board) -> None:
    page, _ = board
    everything, _ = _chromium(page.as_uri(), "--dump-dom")
    total = int(re.search(r"(\d+) series shown", everything).group(1))
    one, log = _chromium(f"{page.as_uri()}?model={TIMED[1]}&task={TIMED[0]}", "--dump-dom")
    assert [line for line in log.splitlines() if ":CONSOLE" in line] == []
    shown = int(re.search(r"(\d+) series shown", one).group(1))
    cards = re.findall(r'class="card" data-model="(\w+)" data-task="(\w+)"', everything)
    assert shown == cards.count((TIMED[1], TIMED[0])) and 0 < shown < total


def test_a_screenshot_is_written(board) -> None:
    page, _ = board
    shot = page.parent / "screenshot.png"
    _chromium(page.as_uri(), f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

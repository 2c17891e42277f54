#!/usr/bin/env bash
# Refresh the committed CI reference and the README's report ON PURPOSE (see results/README.md):
# reruns the smoke suite for every registered model into results/reference/smoke, then renders
# its tables and plots into results/report and its accuracy table into README.md. Review
# `git diff results/ README.md` before committing; say in the commit message why figures moved.
#
#   results/refresh.sh                # uses .venv/bin/bench and .venv/bin/python, or $BENCH and $PYTHON
#   results/refresh.sh --report-only  # only re-render results/report and the README table from
#                                     # the committed reference (a report change, no new figures)
set -euo pipefail
cd "$(dirname "$0")/.."
bench="${BENCH:-.venv/bin/bench}"
python="${PYTHON:-.venv/bin/python}"
start=$(date +%s)

if [ "${1:-}" != "--report-only" ]; then
    # Run into results/runs (ignored by git) and move the run into place afterwards: removing the
    # old reference first would make the checkout dirty, and the new manifest would say so.
    rm -rf results/runs/smoke
    # --kernels rule: the fixed dispatcher rule, as .ci/run uses (not the machine's autotune)
    "$bench" run --suite smoke --scale tiny --out results/runs --run-id smoke --kernels rule \
        --no-progress
    rm -rf results/reference/smoke
    mv results/runs/smoke results/reference/smoke
fi

rm -rf results/report
"$bench" report results/reference/smoke --out results/report --format md
rm -f results/report/*.pdf  # PNG and Markdown are committed; PDFs are for papers, made on demand

# The README shows the accuracy table between its report:accuracy markers.
"$python" - <<'PY'
from pathlib import Path

readme = Path("README.md")
begin, end = "<!-- report:accuracy:begin -->", "<!-- report:accuracy:end -->"
text = readme.read_text(encoding="utf-8")
if begin not in text or end not in text:
    raise SystemExit(f"README.md lacks the {begin} ... {end} markers; put them back first")
table = Path("results/report/accuracy_smoke_tiny.md").read_text(encoding="utf-8").strip()
head, rest = text.split(begin, 1)
readme.write_text(f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}", encoding="utf-8")
PY

echo "refreshed in $(( $(date +%s) - start )) s; now review: git diff --stat results/"

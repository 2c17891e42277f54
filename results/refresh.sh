#!/usr/bin/env bash
# Refresh the committed CI reference and the README's report ON PURPOSE (see results/README.md):
# reruns the smoke suite for every registered model into results/reference/smoke, then renders
# its tables and plots into results/report. Review `git diff results/` before committing, and
# say in the commit message why the figures moved.
#
#   results/refresh.sh            # uses .venv/bin/bench, or $BENCH if set
set -euo pipefail
cd "$(dirname "$0")/.."
bench="${BENCH:-.venv/bin/bench}"
start=$(date +%s)

rm -rf results/reference/smoke
"$bench" run --suite smoke --scale tiny --out results/reference --run-id smoke --no-progress

rm -rf results/report
"$bench" report results/reference/smoke --out results/report --format md
rm -f results/report/*.pdf  # PNG and Markdown are committed; PDFs are for papers, made on demand

echo "refreshed in $(( $(date +%s) - start )) s; now review: git diff --stat results/"

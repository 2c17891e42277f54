"""`bench compare --format json|junit`: the comparison for machines. JSON holds the cause, the
summary, the cells (compared, one run only) and every finding with its verdict; JUnit XML (for
CI test reporters) has one testcase per compared cell, failed by its regressions, plus one per
lost cell when every BASE cell is required.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from bench.report.compare import Finding
from bench.report.compare_render import summary_parts
from bench.report.comparison import Comparison


def render_json(c: Comparison) -> str:
    t = c.tolerances
    out: dict[str, Any] = {
        "base": c.base_dir,
        "new": c.new_dir,
        "cause": {"differences": list(c.cause.differences), "same": c.cause.same},
        "summary": summary_parts(c),
        "tolerances": {
            "factor": t.factor,
            "acc_tol": t.acc_tol,
            "rel_tol": t.rel_tol,
            "ratio_factor": t.ratio_factor,
        },
        "timing_reference": c.timing_reference,
        "cells_compared": list(c.compared),
        "only_base": c.only_base,
        "only_new": c.only_new,
        "notes": list(c.notes),
        "regressed": c.regressed,
        "findings": [_finding(f) for f in c.findings],
    }
    return json.dumps(out, indent=2)


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "cell": f.cell,
        "figure": f.figure,
        "relative_to": f.relative_to or None,
        "base": f.base,
        "new": f.new,
        "verdict": f.verdict,
        "regression": f.regression,
        "improvement": f.improvement,
    }


def render_junit(c: Comparison) -> str:
    """<testsuites><testsuite name="bench compare"> with a <testcase> per cell."""
    by_cell: dict[str, list[Finding]] = {cell: [] for cell in c.compared}
    for f in c.findings:
        by_cell.setdefault(f.cell, []).append(f)
    suite = ET.Element("testsuite", name="bench compare", tests=str(len(by_cell)))
    failures = 0
    for cell, findings in by_cell.items():
        suite_name, _, rest = cell.partition("/")
        task = rest.split("/", 1)[0]
        case = ET.SubElement(suite, "testcase", classname=f"{suite_name}.{task}", name=cell)
        regressions = [f for f in findings if f.regression]
        if regressions:
            failures += 1
            failure = ET.SubElement(
                case, "failure", message=f"{len(regressions)} figure(s) regressed"
            )
            failure.text = "\n".join(_line(f) for f in regressions)
    suite.set("failures", str(failures))
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _line(f: Finding) -> str:
    figure = f"{f.figure} / {f.relative_to}'s" if f.relative_to else f.figure
    if f.base is None and f.new is None:
        return f"{figure} {f.verdict}"
    return f"{figure} {f.verdict}: {f.base!r} -> {f.new!r}"

"""The benchmarks' quick mode, its cheapest parts: they still run end to end and still write well-formed tables.

Nothing about speed is asserted (the machine is shared and noisy; the figures are `make bench`'s business). This runs
the HAM-size preprocessing cases, two cold-start cases and 5 uploads through a local stack (about 15 s);
`make bench-quick` runs all of it.
"""

import re

import pytest

from benchmarks import report
from benchmarks.__main__ import measure, write
from benchmarks.preprocess import HAM

SECTIONS = ("## Targets", "## 1. Preprocessing", "## 2. Cold start", "## 3. End to end", "## 4. Cost per million")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    results = measure(quick=True, images=[HAM], cold_cases=["infer", "infer (naive)", "interpreter only"],
                      sizes=(5,))
    doc = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    return results, write(results, doc)


def tables(text: str) -> list[list[str]]:
    blocks, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return blocks


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_every_section_is_written(quick):
    _, text = quick
    for section in SECTIONS:
        assert section in text


def test_every_table_is_well_formed(quick):
    _, text = quick
    found = tables(text)
    assert len(found) >= 8
    for block in found:
        width = len(cells(block[0]))
        assert re.fullmatch(r"\|(---\|)+", block[1]) and block[1].count("---") == width, block[:2]
        assert all(len(cells(row)) == width for row in block[2:]), block[0]
        assert len(block) > 2, f"a table without rows: {block[0]}"


def test_targets_and_costs_are_judged(quick):
    results, text = quick
    judged = report.targets(results)
    assert judged and all(isinstance(t["met"], bool) for t in judged)
    totals = results["cost"]["totals"]
    assert set(totals) == {"LesionFlow STANDARD", "LesionFlow EXPRESS", "single Lambda (system B)"}
    assert all(total > 0 for total in totals.values())
    assert "LesionFlow benchmarks (quick)" in report.summary(results)


def test_the_local_run_hears_every_function_and_counts_the_pipelines_requests(quick):
    # The local stack's on_invoke and middleware hooks are what the cost model's counts come from
    results, _ = quick
    run = results["end_to_end"][-1]
    assert {"DispatchFunction", "ValidateFunction", "InferFunction"} <= set(run["handler_ms"])
    counted = {(r["caller"], r["service"], r["operation"]) for r in run["requests"]}
    assert {("pipeline", "sagemaker", "InvokeEndpoint"), ("pipeline", "s3", "GetObject")} <= counted

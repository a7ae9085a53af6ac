"""The benchmarks' quick mode, its cheapest parts: they still run end to end and still write well-formed tables.

Nothing about speed is asserted (the machine is shared and noisy; the figures are `make bench`'s business). This runs
the HAM-size preprocessing cases, two cold-start cases, 5 uploads through a local stack and 3 more with a contract
whose model input is handed over through S3, each after a timing run of 4 uploads one at a time (about a minute);
`make bench-quick` runs all of it.
"""

import math
import re
import statistics

import pytest

from benchmarks import report
from benchmarks.__main__ import measure, write
from benchmarks.cost import DISPATCHER, workflow_functions
from benchmarks.end_to_end import STAGES
from benchmarks.preprocess import HAM
from lesionflow_local.template import load

SECTIONS = ("## Targets", "## 1. Preprocessing", "## 2. Cold start", "## 3. End to end", "## 4. Cost per million")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    results = measure(quick=True, images=[HAM], cold_cases=["invoke_model", "invoke_model (naive)", "interpreter only"],
                      sizes=(5,), s3_uploads=3)
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
    stages = {"DispatchFunction"} | set(workflow_functions()) - {"RecordFailureFunction"}
    assert stages <= set(run["handler_ms"])
    counted = {(r["caller"], r["service"], r["operation"]) for r in run["requests"]}
    assert {("pipeline", "sagemaker", "InvokeEndpoint"), ("pipeline", "s3", "GetObject")} <= counted


def test_every_stage_reports_its_latency(quick):
    # Given the quick run's default contract
    results, _ = quick
    # When the handlers' EMF latencies are read from its log
    stage_ms = results["end_to_end"][-1]["stage_ms"]
    # Then every stage of the state machine has one per upload
    assert all(len(stage_ms[stage]) == results["end_to_end"][-1]["records"] for stage in STAGES)


def test_memory_sizes_are_the_templates(quick):
    # Given the template's MemorySize of each function (a parameter's default where it is a Ref)
    template = load()
    parameters = template["Parameters"]

    def memory(name):
        size = template["Resources"][name]["Properties"].get("MemorySize",
                                                             template["Globals"]["Function"]["MemorySize"])
        return int(parameters[size["Ref"]]["Default"]) if isinstance(size, dict) else int(size)
    # When the cost model prices the run
    results, _ = quick
    priced = results["cost"]["counts"]["memory_mb"]
    # Then it priced each function at that size
    assert priced == {name: memory(name) for name in priced}


def test_the_default_contract_hands_over_inline_and_the_other_through_s3(quick):
    # Given the default contract's run and the run with a contract whose input is larger than the inline limit
    results, _ = quick
    inline, s3 = results["cost"]["counts"]["handover"], results["cost"]["s3_path"]["counts"]["handover"]
    # Then the first made no S3 request under the hand-over prefix
    assert inline == {"get": 0, "put": 0, "delete": 0}
    # And the second one PUT, one GET and one DELETE per image
    assert s3 == {"get": 1, "put": 1, "delete": 1}


def test_the_split_is_priced_at_both_latencies(quick):
    # Given the quick run's cost model
    results, text = quick
    latencies = results["cost"]["latencies"]
    # Then the split, its retries and the memory choices are priced at the measured and the assumed latency
    assert set(latencies) == {"measured", "assumed"}
    for priced in latencies.values():
        assert priced["split"] and priced["retries"] and priced["memory"]
    # And the document says the assumed latency is an assumption
    assert "### What the four stages cost and save" in text and "**assumed**" in text


def test_the_cost_prices_lambda_time_from_the_timing_run(quick):
    # Given the priced run, which put 4 uploads through one at a time before its counted ones
    results, text = quick
    run = results["end_to_end"][-1]
    timing = run["timing"]
    assert (timing["uploads"], timing["window"], timing["records"]) == (4, 1, 4)
    assert {DISPATCHER} | set(workflow_functions()) - {"RecordFailureFunction"} <= set(timing["handler_ms"])
    assert len(timing["endpoint_ms"]) == 4
    # When the cost model prices it
    cost = results["cost"]
    c = cost["counts"]
    assert c["durations"] == "alone"
    # Then each function's GB-seconds are its timing-run median per invocation, rounded up to the ms, times its
    # invocations per image in the counted run; the dispatcher's times 1 message per image
    for name, values in run["handler_ms"].items():
        calls = 1.0 if name == DISPATCHER else len(values) / run["records"]
        expected = math.ceil(statistics.median(timing["handler_ms"][name])) * calls / 1000 * c["memory_mb"][name] / 1024
        assert c["lambda_gb_seconds"][name] == pytest.approx(expected), name
    # And the reference's endpoint call is the timing run's too
    assert c["endpoint_ms_p50"] == pytest.approx(statistics.median(timing["endpoint_ms"]))
    # And the counted run's contended durations are priced beside it, every count the same
    contended = cost["contended"]
    assert contended["counts"]["durations"] == "contended"
    for key in ("lambda_invocations", "transitions", "sqs_requests", "s3_get", "s3_put", "dynamodb_wru", "log_bytes"):
        assert contended["counts"][key] == c[key], key
    # And the document's targets name both ratios
    both = (f"{cost['express_vs_reference']:.2f}x (Lambda time alone; "
            f"contended: {contended['express_vs_reference']:.2f}x)")
    assert any(both in line for line in text.splitlines() if line.startswith("| Express within 2.5x"))


def test_the_dispatchers_head_of_each_upload_is_counted_and_priced(quick):
    # Given the quick run (each upload announced by S3 once, some delivered twice by the local SQS)
    results, text = quick

    # Then the cost model found at least one HeadObject per image on upload keys, priced it, and the document says so
    head = results["cost"]["dispatch_head"]
    assert head["prefix"] == "uploads/" and head["heads_per_image"] >= 1
    assert head["usd_per_million"] > 0
    assert "`HeadObject` per image" in text

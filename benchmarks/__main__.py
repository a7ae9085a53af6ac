"""``python -m benchmarks [--quick]``: every benchmark, then docs/benchmarks.md and a summary on stdout.

The full run is ``make bench`` (a few minutes: 1,000 uploads through the local stack take most of it); ``--quick``
(``make bench-quick``) runs the same code on small sizes with 2 rounds, so that the benchmarks cannot rot unnoticed.
Raw results go to .lesionflow/bench/results.json for anyone who wants other cuts of them.
"""

import argparse
import json
import time
from pathlib import Path

from benchmarks import cold_start, cost, end_to_end, preprocess, report
from benchmarks.measure import ROOT, as_data, machine
from benchmarks.preprocess import B, HAM


def measure(quick: bool, images: list[str] | None = None, memory: bool = True, cold_cases: list[str] | None = None,
            sizes: tuple[int, ...] | None = None, s3_uploads: int | None = None) -> dict:
    """Run every part (or the named subsets of each: the quick test uses them) and price the largest run; then
    ``s3_uploads`` (default 10 quick, 100 full) with ``end_to_end.S3_CONTRACT``, whose model input goes through S3,
    to price the hand-over's other path."""
    started = time.monotonic()
    results = {"quick": quick, "machine": machine()}
    print("preprocessing ...", flush=True)
    results["preprocess"] = preprocess.run(quick, images=images, memory=memory)
    print("cold starts ...", flush=True)
    results["cold_start"] = cold_start.run(quick, only=cold_cases)
    print("end to end on the local stack ...", flush=True)
    results["end_to_end"] = end_to_end.run(quick, sizes=sizes)
    s3_uploads = s3_uploads if s3_uploads is not None else (10 if quick else 100)
    results["end_to_end_s3"] = end_to_end.run(quick, sizes=(s3_uploads,), contract=end_to_end.S3_CONTRACT)[-1] \
        if s3_uploads else None
    baseline_b_ms = results["preprocess"]["images"][HAM]["methods"][B]["time"].median * 1000
    results["cost"] = cost.run(results["end_to_end"][-1], baseline_b_ms, cost.load_prices(),
                               s3_run=results["end_to_end_s3"])
    results["seconds"] = time.monotonic() - started
    return results


def write(results: dict, doc: Path, raw: Path | None = None) -> str:
    """Write the document (and, if asked, the raw results as JSON); return the document."""
    results["doc"] = str(doc.relative_to(ROOT) if doc.is_relative_to(ROOT) else doc)
    text = report.document(results, cost.load_prices())
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    if raw:
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(json.dumps(as_data(results), default=str))
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 rounds: a smoke run of the same code")
    parser.add_argument("--doc", type=Path, default=None,
                        help="where to write the document (default docs/benchmarks.md; quick: .lesionflow/bench/)")
    arguments = parser.parse_args()
    default = end_to_end.LOG_DIR / "benchmarks-quick.md" if arguments.quick else ROOT / "docs" / "benchmarks.md"
    results = measure(arguments.quick)
    raw = end_to_end.LOG_DIR / ("results-quick.json" if arguments.quick else "results.json")
    write(results, (arguments.doc or default).resolve(), raw)
    print(report.summary(results))


if __name__ == "__main__":
    main()

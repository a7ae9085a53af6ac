"""Cold-start cost of the handlers' shared setup: a fresh interpreter importing it, median of several runs.

Compares LesionFlow's observability module (Powertools Logger + Metrics) with the same plus Powertools' Tracer,
which the template does not use (see src/lesionflow/observability.py).
"""

import platform
import statistics
import subprocess
import sys
import time

RUNS = 9
CASES = {
    "python -c pass": "pass",
    "lesionflow.observability (Logger, Metrics)": "import lesionflow.observability",
    "... plus Powertools Tracer()": "import lesionflow.observability\nfrom aws_lambda_powertools import Tracer\nTracer()",
}


def median_seconds(code: str) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env={"POWERTOOLS_TRACE_DISABLED": "true"})
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    results = {name: median_seconds(code) for name, code in CASES.items()}
    base = results["python -c pass"]
    print(f"cold start, median of {RUNS} fresh processes; Python {platform.python_version()} on {platform.machine()}")
    for name, seconds in results.items():
        print(f"  {name:<45} {seconds * 1000:7.0f} ms  (+{(seconds - base) * 1000:.0f} ms over the interpreter)")
    own = results["lesionflow.observability (Logger, Metrics)"] - base
    traced = results["... plus Powertools Tracer()"] - base
    print(f"  the Tracer multiplies that initialisation by {traced / own:.1f}x")


if __name__ == "__main__":
    main()

"""Cold start: each function's import and initialisation in a fresh interpreter, as Lambda's INIT plus the setup its
first invocation does, against the same handler written naively (everything imported at module level).

What a fresh process measures, from inside (so interpreter start-up, identical for every case, is reported once):
- import: loading ``functions/<name>/app.py`` as Lambda does, with the environment the template gives the function;
- setup: what the first invocation builds before its own work and warm invocations reuse: the boto3 clients
  (``lesionflow.clients``; the dispatcher's Secrets Manager provider), the model contract, Pillow's format plugins.
The naive twin imports what a handler written without care imports (boto3, numpy, Pillow, pydantic, Powertools'
Logger, Metrics, batch and parameters utilities, and a ``Tracer()``), then the same handler and the same setup, so
the difference is imports alone. Tracing stays disabled (no X-Ray daemon here): the Tracer's cost is its import.
"""

import os
import subprocess
import sys

from benchmarks.measure import ROOT, Stats, run_fresh
from lesionflow_local.stack import resolver
from lesionflow_local.template import function_properties, load

FUNCTIONS = {"dispatch": "DispatchFunction", "validate": "ValidateFunction", "preprocess": "PreprocessFunction",
             "invoke_model": "InvokeModelFunction", "record_failure": "RecordFailureFunction"}
# Issue 8's targets: the dispatcher 200 ms, the per-image functions 350 ms (Infer's target applies to each of the two
# functions it became). RecordFailure runs on the failure path only: measured, without a target.
TARGET_MS = {"dispatch": 200, "validate": 350, "preprocess": 350, "invoke_model": 350}

_TIMED = """
import json, sys, time
started = time.perf_counter()
{imports}
imported = time.perf_counter()
{setup}
done = time.perf_counter()
print(json.dumps({{"import": imported - started, "setup": done - imported}}))
"""
_HANDLER = "sys.path.insert(0, {code_dir!r})\nimport app"
_NAIVE = """import boto3
import numpy
import pydantic
from PIL import Image
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch import BatchProcessor
logger, metrics, tracer = Logger(), Metrics(), Tracer()
"""
_SETUP = {
    "dispatch": """from lesionflow import clients
from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider
clients.stepfunctions(); SecretsProvider()""",
    "validate": """import os
from PIL import Image
from lesionflow import clients
from lesionflow.errors import parse
parse(app.Settings, os.environ, "settings"); clients.s3(); Image.preinit()""",
    "preprocess": """import os
from PIL import Image
from lesionflow import clients
from lesionflow.contracts import load_contract
from lesionflow.errors import parse
parse(app.Settings, os.environ, "settings"); clients.s3(); load_contract(os.environ["MODEL_CONTRACT"])
Image.preinit()""",
    "invoke_model": """import os
from lesionflow import clients
from lesionflow.contracts import load_contract
from lesionflow.errors import parse
parse(app.Settings, os.environ, "settings"); clients.s3()
clients.sagemaker_runtime(int(os.environ["INVOKE_TIMEOUT_SECONDS"])); load_contract(os.environ["MODEL_CONTRACT"])""",
    "record_failure": "pass",  # it builds a record from the state it is given: no client, no contract
}
# The shared observability module with and without Powertools' Tracer (README: "nearly doubles").
_OBSERVABILITY = "import lesionflow.observability"
_TRACER = "import lesionflow.observability\nfrom aws_lambda_powertools import Tracer\nTracer()"


def function_environment(logical_id: str) -> dict[str, str]:
    """The variables Lambda would set for the function: the template's (resolved as the local stack resolves them),
    the runtime's own, and credentials (dummy: no request is sent) so that boto3 never searches for any."""
    template = load()
    variables = resolver(template, {})(function_properties(template, logical_id))["Environment"]["Variables"]
    return {name: str(value) for name, value in variables.items()} | {
        "PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "cold", "AWS_SECRET_ACCESS_KEY": "cold",
        "AWS_SESSION_TOKEN": "cold", "AWS_LAMBDA_FUNCTION_NAME": logical_id, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def cases() -> dict[str, tuple[str, dict[str, str]]]:
    """Case name -> (code for a fresh interpreter, its environment)."""
    found = {}
    for name, logical_id in FUNCTIONS.items():
        env = function_environment(logical_id)
        handler = _HANDLER.format(code_dir=str(ROOT / "functions" / name))
        found[name] = (_TIMED.format(imports=handler, setup=_SETUP[name]), env)
        found[f"{name} (naive)"] = (_TIMED.format(imports=_NAIVE + handler, setup=_SETUP[name]), env)
    env = function_environment("ValidateFunction")
    found["observability: Logger, Metrics"] = (_TIMED.format(imports=_OBSERVABILITY, setup="pass"), env)
    found["observability + Tracer()"] = (_TIMED.format(imports=_TRACER, setup="pass"), env)
    found["interpreter only"] = (_TIMED.format(imports="pass", setup="pass"), env)
    return found


PACKAGES = ("boto3", "pydantic", "numpy", "PIL", "aws_lambda_powertools")


def import_breakdown(code: str, env: dict[str, str]) -> dict[str, float]:
    """Where a function's import time goes: ``python -X importtime``, the cumulative milliseconds of each big package
    where it is first imported. Nested imports overlap (Powertools imports boto3 in the dispatcher), so the figures
    do not add up; they say which packages are worth importing later, or not at all."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, check=True)
    spent = {}
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() in PACKAGES and parts[1].strip().isdigit():
            spent[parts[2].strip()] = int(parts[1]) / 1000
    return spent


def run(quick: bool = False, only: list[str] | None = None) -> dict:
    """Per case: import, setup and their total (inside the process), and the process's wall time; side by side."""
    rounds = 2 if quick else 9
    todo = {name: case for name, case in cases().items() if only is None or name in only}
    names = list(todo)
    samples: dict[str, dict[str, list[float]]] = {name: {"import": [], "setup": [], "total": [], "wall": []}
                                                  for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            code, env = todo[name]
            measured, wall = run_fresh(code, env=env)
            for key, value in (("import", measured["import"]), ("setup", measured["setup"]),
                               ("total", measured["import"] + measured["setup"]), ("wall", wall)):
                samples[name][key].append(value)
    return {"rounds": rounds, "python": sys.version.split()[0], "targets_ms": TARGET_MS, "functions": list(FUNCTIONS),
            "breakdown": {name: import_breakdown(*todo[name]) for name in FUNCTIONS if name in todo},
            "cases": {name: {key: Stats.of(values) for key, values in parts.items()}
                      for name, parts in samples.items()}}

"""`lesionflow check` and a missing endpoint, end to end on the local stack started as a person starts it: once as
it comes, once with the pipeline configured (EndpointName) to call an endpoint the local endpoint does not serve."""

import subprocess
import sys

import pytest

from tests.e2e.local import ROOT, client, started_local_stack, upload, wait_for
from tests.support import jpeg

MISSING = "lesionflow-gone"


@pytest.fixture(scope="module")
def healthy_stack():
    with started_local_stack() as details:
        yield details


@pytest.fixture(scope="module")
def misconfigured_stack():
    with started_local_stack("--parameter-overrides", f"EndpointName={MISSING}") as details:
        yield details


def lesionflow_check(stack: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lesionflow_cli", "--endpoint-url", stack["endpoint_url"], "check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def line_of(output: str, check: str) -> str:
    [line] = [line for line in output.splitlines() if line.strip().startswith(check)]
    return line


def test_the_misconfigured_stack_calls_a_name_its_endpoint_does_not_serve(misconfigured_stack):
    assert misconfigured_stack["endpoint_name"] == MISSING
    assert misconfigured_stack["served_endpoint_name"] != MISSING


def test_check_passes_on_a_healthy_local_stack(healthy_stack):
    # When `lesionflow --local check` runs against the local stack as it comes
    result = lesionflow_check(healthy_stack)

    # Then it exits 0, having really invoked the endpoint and read the dead-letter queue
    assert result.returncode == 0, result.stdout + result.stderr
    answer = line_of(result.stdout, "answer")
    assert f"invoking endpoint {healthy_stack['endpoint_name']} once with a generated image ... ok" in answer
    assert "ok" in line_of(result.stdout, "dead letters")
    assert "ok" in line_of(result.stdout, "execution data")
    assert "skipped (local)" in line_of(result.stdout, "stack")


def test_check_fails_naming_the_endpoint_when_the_pipeline_calls_one_that_does_not_exist(misconfigured_stack):
    result = lesionflow_check(misconfigured_stack)
    assert result.returncode == 1, result.stdout + result.stderr
    answer = line_of(result.stdout, "answer")
    assert "FAIL" in answer and f"the model endpoint {MISSING} does not exist" in answer and "EndpointName" in answer


def test_an_upload_to_a_pipeline_calling_a_missing_endpoint_ends_in_one_failed_record_naming_it(misconfigured_stack):
    # Given the pipeline calls an endpoint that does not exist
    key = f"{misconfigured_stack['upload_prefix']}missing-endpoint/photo.jpg"

    # When an image is uploaded
    upload(lambda service: client(misconfigured_stack, service), misconfigured_stack, key, jpeg(600, 450))

    # Then it ends in exactly one FAILED record whose reason names the endpoint and what to run
    [record] = wait_for(misconfigured_stack, [key])[key]
    assert record["status"] == "FAILED"
    assert MISSING in record["reason"] and "lesionflow check" in record["reason"], record["reason"]
    # and its execution failed, which is what the failure alarms count
    execution = client(misconfigured_stack, "stepfunctions").describe_execution(executionArn=record["execution_arn"])
    assert execution["status"] == "FAILED" and execution["error"] == "PipelineFailed"


def test_check_piped_into_a_reader_that_stops_early_ends_quietly(healthy_stack):
    # Given the check's output piped into a reader that takes the first line and closes the pipe
    command = [sys.executable, "-m", "lesionflow_cli", "--endpoint-url", healthy_stack["endpoint_url"], "check"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as check:
        first = check.stdout.readline()
        check.stdout.close()
        stderr = check.stderr.read().decode()
        status = check.wait(timeout=120)
    # Then it stops with status 0 and no traceback, as `| head -1` expects
    assert first.startswith(b"lesionflow check:")
    assert (status, stderr) == (0, "")

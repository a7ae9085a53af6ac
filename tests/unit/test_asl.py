"""statemachine/pipeline.asl.json, checked structurally: the shape every run relies on."""

import json
from pathlib import Path

import pytest

from lesionflow import clients
from lesionflow_local.template import function_properties, load

TEMPLATE = load()
ASL = json.loads((Path(__file__).resolve().parents[2] / "statemachine" / "pipeline.asl.json").read_text())
STATES = ASL["States"]
LAMBDA_TASKS = [name for name, s in STATES.items() if s.get("Resource") == "arn:aws:states:::lambda:invoke"]
PERMANENT_ERRORS = {"States.ALL", "States.TaskFailed", "ImageRejected", "ModelResponseInvalid", "ModelRequestRejected",
                    "DynamoDB.ConditionalCheckFailedException"}


def targets(state: dict) -> list[str]:
    found = [state[key] for key in ("Next", "Default") if key in state]
    found += [choice["Next"] for choice in state.get("Choices", [])]
    found += [catch["Next"] for catch in state.get("Catch", [])]
    return found


def test_every_transition_names_an_existing_state_and_every_state_is_reachable():
    seen, todo = set(), [ASL["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += targets(STATES[name])
    assert seen == set(STATES)
    for name, state in STATES.items():
        assert state["Type"] in {"Succeed", "Fail"} or state.get("End") or targets(state), name


def test_the_definition_uses_jsonpath_only():
    assert "QueryLanguage" not in json.dumps(ASL)


def test_the_pipeline_runs_validate_then_infer_and_names_its_outputs_from_the_upload_id():
    assert (ASL["StartAt"], STATES["Validate"]["Next"], STATES["ValidateVerdict"]["Default"]) == (
        "Validate", "ValidateVerdict", "Infer")
    document = STATES["Validate"]["Parameters"]["Payload"]
    assert document["prediction_key.$"] == "States.Format('${PredictionPrefix}{}.json', $.upload.upload_id)"


def test_a_successful_image_enters_five_states_each_a_billed_transition_of_a_standard_workflow():
    path, name = [], ASL["StartAt"]
    while name:
        path.append(name)
        state = STATES[name]
        name = state.get("Default") or state.get("Next")
    assert path == ["Validate", "ValidateVerdict", "Infer", "RecordVerdict", "WritePredictionJson"]
    assert STATES["WritePredictionJson"]["End"] is True


@pytest.mark.parametrize("task", [name for name, s in STATES.items() if s["Type"] == "Task"])
def test_every_task_retries_transient_errors_with_exponential_backoff_and_full_jitter(task):
    retries = STATES[task]["Retry"]
    assert retries
    for retry in retries:
        assert retry["JitterStrategy"] == "FULL" and retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 2


@pytest.mark.parametrize("task", LAMBDA_TASKS)
def test_lambda_tasks_retry_lambda_service_errors_but_never_permanent_ones(task):
    retried = {error for retry in STATES[task]["Retry"] for error in retry["ErrorEquals"]}
    assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= retried
    assert not retried & PERMANENT_ERRORS


def test_the_infer_task_retries_endpoint_throttling_outages_and_cold_models():
    retried = {error for retry in STATES["Infer"]["Retry"] for error in retry["ErrorEquals"]}
    assert {"EndpointThrottled", "EndpointUnavailable", "ModelNotReady"} <= retried


@pytest.mark.parametrize("task", LAMBDA_TASKS)
def test_any_unrecoverable_error_of_a_lambda_task_is_recorded_as_failed_with_a_reason(task):
    assert STATES[task]["Catch"][-1] == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure",
                                         "Next": "ExplainFailure"}
    for explained in {catch["Next"] for catch in STATES[task]["Catch"]}:
        assert (STATES[explained]["ResultPath"], STATES[explained]["Next"]) == ("$.explained", "RecordFailure")
    assert STATES["RecordFailure"]["Parameters"]["record"]["status"] == "FAILED"
    assert STATES["RecordFailure"]["Parameters"]["record"]["reason.$"] == "$.explained.reason"
    assert STATES["RecordFailure"]["Parameters"]["item"]["reason"] == {"S.$": "$.explained.reason"}
    assert STATES["RecordFailure"]["Next"] == "RecordFailedVerdict"


def test_an_endpoint_that_does_not_exist_is_named_in_the_failed_record_with_what_to_do():
    # Given Infer's catchers, the specific one first (Step Functions takes the first that matches)
    [missing, _] = STATES["Infer"]["Catch"]
    assert missing["ErrorEquals"] == ["EndpointMissing"]
    # Then its reason names the endpoint the template substitutes and the command that checks it
    reason = STATES[missing["Next"]]["Result"]["reason"]
    assert "${EndpointName}" in reason and "lesionflow check" in reason
    assert TEMPLATE["Resources"]["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]["EndpointName"] == {
        "Ref": "EndpointName"}


# Step Functions names an AWS SDK integration's errors ServiceName.ErrorName from the service's API model. S3's model
# declares no exception for throttling (503 SlowDown), 5xx or AccessDenied, so all of them arrive as S3.S3Exception
# (as recorded in real executions; on the list to confirm on first deploy). They cannot be told apart by name, so the
# S3 writes retry that name briefly, enough for a throttle, and an AccessDenied still fails within seconds.
S3_RETRIED = {"S3.S3Exception", "S3.SdkClientException", "States.Timeout"}
S3_WRITES = [name for name, s in STATES.items() if s.get("Resource") == "arn:aws:states:::aws-sdk:s3:putObject"]


@pytest.mark.parametrize("task", S3_WRITES)
def test_s3_writes_retry_s3_errors_briefly_and_never_a_catch_all(task):
    retries = STATES[task]["Retry"]
    retried = {error for retry in retries for error in retry["ErrorEquals"]}
    assert retried == S3_RETRIED
    assert not retried & {"States.ALL", "States.TaskFailed"}
    # an AccessDenied (also S3.S3Exception) costs at most two more tries and a few seconds, not a long schedule
    [s3_errors] = [retry for retry in retries if "S3.S3Exception" in retry["ErrorEquals"]]
    assert s3_errors["MaxAttempts"] <= 2 and retry_delays(s3_errors) <= 5


# ---------------------------------------------------------------------------------------------------- Express's limit
EXPRESS_LIMIT_SECONDS = 300  # an Express execution runs at most 5 minutes, then times out without a record
MARGIN = 0.8  # the worst case must leave a fifth of it: cold starts, the SQS poll and Step Functions' own latency


def attempt_seconds(name: str, state: dict) -> float:
    """The longest one attempt of a task can take: its TimeoutSeconds, which every task must set (the default is a
    year), and which a Lambda task's function Timeout must not exceed, so that the function's own timeout fires first
    and names itself."""
    assert "TimeoutSeconds" in state, f"{name} has no TimeoutSeconds: one stuck call would hold the execution"
    if state["Resource"] == "arn:aws:states:::lambda:invoke":
        function = state["Parameters"]["FunctionName"].removeprefix("${").removesuffix("Arn}")
        assert function_properties(TEMPLATE, function)["Timeout"] <= state["TimeoutSeconds"], name
    return state["TimeoutSeconds"]


def retry_delays(retry: dict) -> float:
    """The longest a retrier waits in all: every interval at its cap (full jitter only shortens them)."""
    return sum(min(retry["IntervalSeconds"] * retry["BackoffRate"] ** n, retry.get("MaxDelaySeconds", float("inf")))
               for n in range(retry["MaxAttempts"]))


def worst_case_seconds(name: str) -> float:
    """The longest path from this state to the end: every task exhausting every retrier, each attempt running to its
    timeout, then leaving by whichever of its transitions leads to the longest rest (a Catch after the last try)."""
    state = STATES[name]
    own = 0.0
    if state["Type"] == "Task":
        attempts = 1 + sum(retry["MaxAttempts"] for retry in state.get("Retry", []))
        own = attempts * attempt_seconds(name, state) + sum(map(retry_delays, state.get("Retry", [])))
    return own + max((worst_case_seconds(target) for target in targets(state)), default=0.0)


def test_the_worst_case_of_every_retry_schedule_fits_an_express_workflow_with_margin():
    # Given every task's timeout and retriers, and each Lambda function's Timeout from the template
    worst = worst_case_seconds(ASL["StartAt"])
    # Then even a run that exhausts them all ends, and writes its record, well inside Express's limit
    assert worst <= MARGIN * EXPRESS_LIMIT_SECONDS, f"worst case {worst:.0f} s"


def test_one_endpoint_attempt_fits_the_infer_functions_timeout_beside_the_read_and_decode():
    # Given the longest InvokeTimeoutSeconds the template allows and the SageMaker client Infer uses
    longest = TEMPLATE["Parameters"]["InvokeTimeoutSeconds"]["MaxValue"]
    config = clients.sagemaker_runtime(longest).meta.config
    # Then its SDK attempts, each a connect and a read, leave 10 s of the function's Timeout to read and decode the
    # largest upload (make bench measures the decode; the state machine, not the SDK, retries the endpoint)
    sdk_attempts = config.retries["total_max_attempts"]
    endpoint = sdk_attempts * (config.connect_timeout + config.read_timeout)
    assert endpoint + 10 <= function_properties(TEMPLATE, "InferFunction")["Timeout"]

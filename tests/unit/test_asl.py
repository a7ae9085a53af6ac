"""statemachine/pipeline.asl.json, checked structurally: the shape every run relies on."""

import json
from pathlib import Path

import pytest

from lesionflow import clients
from lesionflow_local.template import ROOT, function_properties, load

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


def test_the_outputs_are_named_from_the_upload_id_never_from_the_object_key():
    for document in (STATES["Validate"]["Parameters"]["Payload"], STATES["RecordFailure"]["Parameters"]["Payload"]):
        assert document["prediction_key.$"] == "States.Format('${PredictionPrefix}{}.json', $.upload.upload_id)"
    assert STATES["PersistJson"]["Parameters"]["Key.$"] == "$.prediction_key"


def happy_path() -> list[str]:
    path, name = [], ASL["StartAt"]
    while name:
        path.append(name)
        state = STATES[name]
        name = state.get("Default") or state.get("Next")
    return path


def test_the_happy_path_is_the_four_stages_validate_preprocess_invoke_model_persist():
    # Given the path a usable image takes (each Choice's default)
    path = happy_path()
    # Then the four stages come in the user's order, each a state of its own, with only verdict checks between
    assert [name for name in path if STATES[name]["Type"] == "Task"] == [
        "Validate", "Preprocess", "InvokeModel", "Persist", "PersistJson"]
    assert path == ["Validate", "ValidateVerdict", "Preprocess", "PreprocessVerdict", "InvokeModel", "Persist",
                    "PersistJson"]
    # and Persist is the two direct service integrations, DynamoDB first, no Lambda
    assert (STATES["Persist"]["Resource"], STATES["PersistJson"]["Resource"]) == (
        "arn:aws:states:::dynamodb:putItem", "arn:aws:states:::aws-sdk:s3:putObject")
    assert STATES["PersistJson"]["End"] is True
    # and the definition's comment says how many billed transitions that is
    assert f"A successful image enters {len(path)} states" in ASL["Comment"]


@pytest.mark.parametrize("verdict", ["ValidateVerdict", "PreprocessVerdict"])
def test_a_rejected_image_skips_to_persist(verdict):
    assert STATES[verdict]["Choices"] == [{"Variable": "$.result", "IsPresent": True, "Next": "Persist"}]


def test_preprocess_hands_the_whole_document_to_invoke_model_which_never_decodes():
    # InvokeModel gets Preprocess's output, model input included; its function has no Pillow to decode with
    assert STATES["Preprocess"]["Next"] == "PreprocessVerdict" and STATES["PreprocessVerdict"]["Default"] == "InvokeModel"
    assert STATES["InvokeModel"]["Parameters"]["Payload.$"] == "$"
    requirements = Path(ROOT, function_properties(TEMPLATE, "InvokeModelFunction")["CodeUri"], "requirements.txt")
    assert "pillow" not in requirements.read_text().lower()


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


def test_the_invoke_model_task_retries_endpoint_throttling_outages_and_cold_models():
    retried = {error for retry in STATES["InvokeModel"]["Retry"] for error in retry["ErrorEquals"]}
    assert {"EndpointThrottled", "EndpointUnavailable", "ModelNotReady"} <= retried


STAGES = ["Validate", "Preprocess", "InvokeModel", "Persist", "PersistJson"]


@pytest.mark.parametrize("task", STAGES)
def test_any_unrecoverable_error_of_a_stage_is_recorded_as_failed_with_a_reason(task):
    assert STATES[task]["Catch"][-1] == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure",
                                         "Next": "ExplainFailure"}
    for catch in STATES[task]["Catch"]:
        if catch["Next"] != "AlreadyRecorded":
            explained = STATES[catch["Next"]]
            assert (explained["ResultPath"], explained["Next"]) == ("$.explained", "RecordFailure")
    # RecordFailure (Python) builds the record; if it cannot run, the state machine builds it directly
    assert STATES["RecordFailure"]["Parameters"]["Payload"]["reason.$"] == "$.explained.reason"
    assert STATES["RecordFailure"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.record_failure", "Next": "RecordFailureDirectly"}]
    direct = STATES["RecordFailureDirectly"]["Parameters"]["result"]
    assert direct["record"]["status"] == "FAILED" and direct["record"]["reason.$"] == "$.explained.reason"
    assert direct["item"]["reason"] == {"S.$": "$.explained.reason"}
    assert STATES["RecordFailure"]["Next"] == STATES["RecordFailureDirectly"]["Next"] == "PersistFailure"
    # and the failure path ends by failing the execution, for the alarm
    assert STATES["PersistFailure"]["Next"] == "PersistFailureJson"
    assert STATES["PersistFailureJson"]["Next"] == "PipelineFailed" and STATES["PipelineFailed"]["Type"] == "Fail"


def test_the_direct_failure_record_has_the_same_fields_in_both_forms():
    direct = STATES["RecordFailureDirectly"]["Parameters"]["result"]
    assert {name.removesuffix(".$") for name in direct["record"]} == set(direct["item"])


def test_the_failure_path_persists_exactly_as_the_verdict_path():
    for verdict, failure in (("Persist", "PersistFailure"), ("PersistJson", "PersistFailureJson")):
        assert STATES[verdict]["Parameters"] == STATES[failure]["Parameters"]
        assert STATES[verdict]["Retry"] == STATES[failure]["Retry"]
    # but a failure to write the FAILED record ends the execution instead of looping back to RecordFailure
    for name in ("PersistFailure", "PersistFailureJson"):
        assert STATES[name]["Catch"][-1]["Next"] == "PersistFailed"


def test_a_verdict_is_never_overwritten_by_another_run_only_by_this_one():
    condition = STATES["Persist"]["Parameters"]
    assert condition["ConditionExpression"] == (
        "attribute_not_exists(image_key) OR #status = :failed "
        "OR (execution_arn = :this_run AND execution_started_at = :this_start)")
    # this run is its ARN and its start: a Standard execution's name, so its ARN, may come back after 90 days
    assert condition["ExpressionAttributeValues"][":this_run"] == {"S.$": "$$.Execution.Id"}
    assert condition["ExpressionAttributeValues"][":this_start"] == {"S.$": "$$.Execution.StartTime"}


def test_every_record_names_the_run_that_made_it_by_arn_and_start():
    for state in ("Validate", "RecordFailure"):
        assert STATES[state]["Parameters"]["Payload"]["execution_started_at.$"] == "$$.Execution.StartTime"
    direct = STATES["RecordFailureDirectly"]["Parameters"]["result"]
    assert direct["item"]["execution_started_at"] == {"S.$": "$$.Execution.StartTime"}


def test_an_endpoint_that_does_not_exist_is_named_in_the_failed_record_with_what_to_do():
    # Given InvokeModel's catchers, the specific one first (Step Functions takes the first that matches)
    [missing, _] = STATES["InvokeModel"]["Catch"]
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


def test_one_endpoint_attempt_fits_the_invoke_model_functions_timeout_beside_reading_the_model_input():
    # Given the longest InvokeTimeoutSeconds the template allows and the SageMaker client InvokeModel uses
    longest = TEMPLATE["Parameters"]["InvokeTimeoutSeconds"]["MaxValue"]
    config = clients.sagemaker_runtime(longest).meta.config
    # Then its SDK attempts, each a connect and a read, leave 2 s of the function's Timeout to read and delete a
    # stored model input (the state machine, not the SDK, retries the endpoint)
    sdk_attempts = config.retries["total_max_attempts"]
    endpoint = sdk_attempts * (config.connect_timeout + config.read_timeout)
    assert endpoint + 2 <= function_properties(TEMPLATE, "InvokeModelFunction")["Timeout"]

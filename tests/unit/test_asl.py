"""statemachine/pipeline.asl.json, checked structurally: the shape every run relies on."""

import json
from pathlib import Path

import pytest

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
        assert retry["JitterStrategy"] == "FULL" and retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 3


@pytest.mark.parametrize("task", LAMBDA_TASKS)
def test_lambda_tasks_retry_lambda_service_errors_but_never_permanent_ones(task):
    retried = {error for retry in STATES[task]["Retry"] for error in retry["ErrorEquals"]}
    assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= retried
    assert not retried & PERMANENT_ERRORS


def test_the_infer_task_retries_endpoint_throttling_outages_and_cold_models():
    retried = {error for retry in STATES["Infer"]["Retry"] for error in retry["ErrorEquals"]}
    assert {"EndpointThrottled", "EndpointUnavailable", "ModelNotReady"} <= retried


@pytest.mark.parametrize("task", LAMBDA_TASKS)
def test_any_unrecoverable_error_of_a_lambda_task_is_recorded_as_failed(task):
    assert STATES[task]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "RecordFailure"}]
    assert STATES["RecordFailure"]["Parameters"]["record"]["status"] == "FAILED"
    assert STATES["RecordFailure"]["Next"] == "RecordFailedVerdict"


def test_a_failed_record_is_written_as_a_verdict_is_then_fails_the_execution():
    # The failure path has its own two persistence states, so that a successful run needs no final Choice
    failed_record, failed_json = STATES["RecordFailedVerdict"], STATES["WriteFailedJson"]
    assert without(failed_record, "Next", "Comment") == without(STATES["RecordVerdict"], "Next", "Comment")
    assert without(failed_json, "Next", "Comment", "Parameters") == without(
        STATES["WritePredictionJson"], "End", "Comment", "Parameters")
    assert without(failed_json["Parameters"], "Key.$") == without(STATES["WritePredictionJson"]["Parameters"], "Key.$")
    # named as Validate names it: a run that failed in Validate has no prediction_key yet
    assert failed_json["Parameters"]["Key.$"] == STATES["Validate"]["Parameters"]["Payload"]["prediction_key.$"]
    assert failed_record["Next"] == "WriteFailedJson"
    assert STATES[failed_json["Next"]] == {"Type": "Fail", "Error": "PipelineFailed",
                                           "Cause": STATES[failed_json["Next"]]["Cause"]}


def without(state: dict, *keys: str) -> dict:
    return {key: value for key, value in state.items() if key not in keys}


def test_persist_uses_direct_service_integrations_and_a_conditional_write():
    record = STATES["RecordVerdict"]
    assert record["Resource"] == "arn:aws:states:::dynamodb:putItem"
    assert record["Parameters"]["ConditionExpression"] == "attribute_not_exists(image_key) OR #status = :failed"
    assert STATES["WritePredictionJson"]["Resource"] == "arn:aws:states:::aws-sdk:s3:putObject"
    assert STATES["WritePredictionJson"]["Parameters"]["Key.$"] == "$.prediction_key"


def test_a_verdict_already_recorded_for_the_version_is_kept_and_the_run_succeeds():
    [superseded, _] = STATES["RecordVerdict"]["Catch"]
    assert superseded["ErrorEquals"] == ["DynamoDB.ConditionalCheckFailedException"]
    assert STATES[superseded["Next"]]["Type"] == "Succeed"


@pytest.mark.parametrize("task", ["RecordVerdict", "WritePredictionJson", "RecordFailedVerdict", "WriteFailedJson"])
def test_a_verdict_that_cannot_be_written_fails_the_execution_visibly(task):
    [last] = STATES[task]["Catch"][-1:]
    assert last["ErrorEquals"] == ["States.ALL"]
    assert STATES[last["Next"]] == {"Type": "Fail", "Error": "PersistFailed", "Cause": STATES[last["Next"]]["Cause"]}

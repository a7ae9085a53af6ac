"""What the handlers tell operators: EMF metrics and structured logs, with hashes instead of object keys."""

import json

import boto3
import pytest

from tests.support import hf_answer, jpeg, preprocessed, s3_notification, sqs_event, upload_input

KEY = "uploads/Jane Doe 1970-01-01.jpg"


def emitted(out: str) -> tuple[list[dict], list[dict]]:
    """(EMF metric documents, log records) capsys on stdout, as CloudWatch would receive them."""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line], [line for line in lines if "level" in line]


def metric_values(documents: list[dict]) -> dict[tuple, float]:
    """(metric name, dimension values...) -> summed value."""
    found: dict[tuple, float] = {}
    for document in documents:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            dimensions = sorted({name for group in directive["Dimensions"] for name in group} - {"service"})
            for metric in directive["Metrics"]:
                values = document[metric["Name"]]
                key = (metric["Name"], *(document[name] for name in dimensions))
                found[key] = found.get(key, 0) + sum(values if isinstance(values, list) else [values])
    return found


@pytest.fixture
def state(stack):
    """The Validate task's input for a JPEG uploaded under a key that names a patient."""
    data = jpeg(300, 300)
    response = boto3.client("s3").put_object(Bucket=stack.bucket, Key=KEY, Body=data)
    return upload_input(stack.bucket, KEY, data, etag=response["ETag"].strip('"'),
                        version_id=response["VersionId"]) | {
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:sm:run", "prediction_key": "predictions/x.json"}


def test_the_dispatcher_counts_what_it_received_dispatched_and_skipped(stack, capsys):
    # Given a notification whose execution has already finished, S3's test event, and a new upload
    dispatch = stack.functions["DispatchFunction"]
    for key in ("uploads/a.jpg", "uploads/b.jpg"):
        boto3.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=jpeg())
    seen = json.dumps(s3_notification(stack.bucket, "uploads/a.jpg", 10))
    dispatch.invoke(sqs_event(seen))
    sfn = boto3.client("stepfunctions")
    [execution] = sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"])
    test_event = json.dumps({"Event": "s3:TestEvent", "Service": "Amazon S3", "Bucket": stack.bucket})
    new = json.dumps(s3_notification(stack.bucket, "uploads/b.jpg", 10))
    capsys.readouterr()

    # When the first is delivered again together with the others
    dispatch.invoke(sqs_event(seen, test_event, new))

    # Then the metrics say what happened to each
    metrics = metric_values(emitted(capsys.readouterr().out)[0])
    assert (metrics[("MessagesReceived",)], metrics[("UploadsReceived",)]) == (3, 2)
    assert (metrics[("UploadsDispatched",)], metrics[("DuplicatesSkipped",)]) == (1, 1)


def test_a_rejection_is_counted_by_its_class(stack, capsys):
    stack.functions["ValidateFunction"].invoke(upload_input(stack.bucket, "uploads/e.jpg", b"", etag="e") | {
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:sm:run", "prediction_key": "p.json"})
    metrics = metric_values(emitted(capsys.readouterr().out)[0])
    assert metrics[("ImagesRejected", "empty")] == 1
    assert ("ValidateLatency",) in metrics


def test_predictions_are_counted_by_label_and_unsure_ones_are_flagged_for_review(stack, endpoint, state, capsys):
    # Given a preprocessed upload and a model that is unsure
    prepared = preprocessed(stack, state)
    capsys.readouterr()
    endpoint.then(200, hf_answer(melanoma=0.45, melanocytic_Nevi=0.4, dermatofibroma=0.15))

    # When it is classified
    record = stack.functions["InvokeModelFunction"].invoke(prepared)["result"]["record"]

    # Then the record is flagged for review (and keyed for the by-review index), says what it is, and the metrics
    # count the prediction, its label and the review it needs
    assert (record["needs_review"], record["review"]) == (True, "NEEDED")
    assert "not a diagnosis" in record["note"]
    metrics = metric_values(emitted(capsys.readouterr().out)[0])
    assert metrics[("PredictionsMade",)] == metrics[("PredictionsByLabel", "mel")] == 1
    assert metrics[("PredictionsNeedingReview",)] == 1
    assert {("InvokeModelLatency",)} <= set(metrics)


def test_a_failing_step_counts_its_error(stack, endpoint, state, capsys):
    prepared = preprocessed(stack, state)
    capsys.readouterr()
    endpoint.then(200, b"not json")
    with pytest.raises(Exception, match="not a JSON list"):
        stack.functions["InvokeModelFunction"].invoke(prepared)
    assert metric_values(emitted(capsys.readouterr().out)[0])[("InvokeModelErrors",)] == 1


def test_every_log_line_of_an_upload_carries_its_correlation_id_and_never_its_key(stack, endpoint, state, capsys):
    # When an upload goes through every step
    validated = stack.functions["ValidateFunction"].invoke(state)
    stack.functions["InvokeModelFunction"].invoke(stack.functions["PreprocessFunction"].invoke(validated))

    # Then each log line names the upload by its id, and nothing capsys contains the key or the name in it
    out = capsys.readouterr().out
    _, logs = emitted(out)
    assert logs and all(line["correlation_id"] == state["upload"]["upload_id"] for line in logs)
    assert "Jane" not in out


def test_no_log_line_carries_the_names_of_an_upload_an_earlier_invocation_handled(stack, state, capsys):
    # Given a step that tagged its logs with one upload's hash, in the same process as the dispatcher
    stack.functions["ValidateFunction"].invoke(state)
    capsys.readouterr()

    # When the dispatcher then drops a notification that names no upload of this stack
    stack.functions["DispatchFunction"].invoke(sqs_event(json.dumps(s3_notification("another-bucket", "uploads/x", 1))))

    # Then its log lines carry no upload's hash
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"message"' in line]
    assert lines and all("object_hash" not in line for line in lines)

"""Redrive: dead letters back to the ingest queue, and FAILED uploads through the state machine again.

A Step Functions redrive of a failed execution would only rerun its final Fail state (the error was caught and
recorded), so a FAILED upload runs again as a new execution of the same input, named ``<upload_id>-redrive-<n>``.
Its verdict replaces the FAILED record (the prediction log's conditional write allows exactly that). Express
executions keep no input to rerun: such uploads are reported, to be backfilled instead.
"""

from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from lesionflow.records import Status
from lesionflow_cli.predictions import Filters, listing
from lesionflow_cli.stack import Stack

MAX_REDRIVES = 100


@dataclass
class RedriveResult:
    dead_letters_moved: int = 0
    executions_started: int = 0
    not_redrivable: list[str] = field(default_factory=list)


def move_dead_letters(stack: Stack) -> int:
    """Every message of the dead-letter queue, sent to the ingest queue and then deleted from the DLQ."""
    sqs, moved = stack.client("sqs"), 0
    while messages := sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                          VisibilityTimeout=60).get("Messages", []):
        for message in messages:
            sqs.send_message(QueueUrl=stack.queue_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=stack.dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def rerun_failed(stack: Stack, since: str | None) -> tuple[int, list[str]]:
    """A new execution for each FAILED upload (since ``since``); the upload ids that could not be rerun."""
    sfn, started, skipped = stack.client("stepfunctions"), 0, []
    for record in listing(stack.table, Filters(status=Status.FAILED, since=since), limit=None):
        try:
            original = sfn.describe_execution(executionArn=record["execution_arn"])["input"]
        except ClientError:
            skipped.append(record["upload_id"])  # an Express execution, or one past Step Functions' retention
            continue
        started += _start_next(sfn, stack.state_machine_arn, record["upload_id"], original)
    return started, skipped


def _start_next(sfn, state_machine_arn: str, upload_id: str, execution_input: str) -> int:
    """Start ``<upload_id>-redrive-<n>`` with the first unused n (a used name would return the old execution)."""
    executions = state_machine_arn.replace(":stateMachine:", ":execution:", 1)
    for attempt in range(1, MAX_REDRIVES + 1):
        name = f"{upload_id}-redrive-{attempt}"
        try:
            sfn.describe_execution(executionArn=f"{executions}:{name}")
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionDoesNotExist":
                raise
            sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=execution_input)
            return 1
    return 0


def redrive(stack: Stack, since: str | None) -> RedriveResult:
    moved = move_dead_letters(stack)
    started, skipped = rerun_failed(stack, since)
    return RedriveResult(dead_letters_moved=moved, executions_started=started, not_redrivable=skipped)

"""`lesionflow check`: every line, healthy and failing, over moto's AWS, botocore's Stubber for what moto cannot
put in a state (a stack in progress, a quota, a pending subscription), and the real model server for the answer."""

import io
import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from lesionflow.contracts import load_contract
from lesionflow_cli import check
from lesionflow_cli.check import EndpointFacts, Line, Outcome
from lesionflow_local.lambdas import serve
from lesionflow_model.classifier import OnnxImageClassifier
from lesionflow_model.demo_model import write
from lesionflow_model.faults import FaultInjector, FaultKind
from lesionflow_model.server import ModelServer

REGION = "us-east-1"
ENDPOINT = "lesionflow-vit"
CONTRACT = load_contract("hf-image-classification")


def client(service: str, region: str = REGION):
    return boto3.client(service, region_name=region)


def stubbed(service: str, method: str, response: dict | None = None, error: tuple[str, int] | None = None):
    """A client whose one answer to ``method`` is ``response`` or the error (code, HTTP status)."""
    aws = client(service)
    stubber = Stubber(aws)
    if error:
        stubber.add_client_error(method, service_error_code=error[0], service_message="refused",
                                 http_status_code=error[1])
    else:
        stubber.add_response(method, response)
    stubber.activate()
    return aws


def serverless(max_concurrency: int = 5) -> EndpointFacts:
    return EndpointFacts(name=ENDPOINT, status="InService", serverless_max_concurrency=max_concurrency)


# ------------------------------------------------------------------------------------------------ stack

def test_a_complete_stack_is_ok_with_its_parameters_and_outputs(aws):
    # Given a stack CloudFormation (moto) created with parameters and outputs
    cloudformation = client("cloudformation")
    cloudformation.create_stack(StackName="lesionflow", TemplateBody=json.dumps({
        "Parameters": {"EndpointName": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"AlarmTopicArn": {"Value": {"Ref": "Topic"}}}}),
        Parameters=[{"ParameterKey": "EndpointName", "ParameterValue": ENDPOINT}])

    # When it is described and checked
    facts = check.describe_stack(cloudformation, "lesionflow")
    line = check.check_stack(facts, "lesionflow", REGION)

    # Then it is ok, and its parameters and outputs are read
    assert line.outcome is Outcome.OK and "CREATE_COMPLETE" in line.found
    assert facts.parameters == {"EndpointName": ENDPOINT} and facts.outputs["AlarmTopicArn"].startswith("arn:aws:sns")


def test_a_missing_stack_fails_and_says_how_to_deploy_it(aws):
    facts = check.describe_stack(client("cloudformation"), "lesionflow")
    line = check.check_stack(facts, "lesionflow", REGION)
    assert facts is None and line.outcome is Outcome.FAIL
    assert "no stack named lesionflow" in line.found and "sam deploy" in line.advice


@pytest.mark.parametrize(("status", "outcome"), [
    ("UPDATE_COMPLETE", Outcome.OK), ("IMPORT_COMPLETE", Outcome.OK),
    ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", Outcome.OK),
    ("CREATE_IN_PROGRESS", Outcome.FAIL), ("UPDATE_IN_PROGRESS", Outcome.FAIL),
    ("UPDATE_ROLLBACK_IN_PROGRESS", Outcome.FAIL), ("REVIEW_IN_PROGRESS", Outcome.FAIL),
    ("CREATE_FAILED", Outcome.FAIL), ("ROLLBACK_COMPLETE", Outcome.FAIL), ("ROLLBACK_IN_PROGRESS", Outcome.FAIL),
    ("UPDATE_ROLLBACK_FAILED", Outcome.FAIL), ("DELETE_IN_PROGRESS", Outcome.FAIL),
    ("UPDATE_ROLLBACK_COMPLETE", Outcome.WARN), ("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", Outcome.WARN),
    ("IMPORT_ROLLBACK_COMPLETE", Outcome.WARN),
])
def test_only_a_complete_stack_is_ok(status, outcome):
    # Given CloudFormation describes the stack in this status
    cloudformation = stubbed("cloudformation", "describe_stacks", {"Stacks": [{
        "StackName": "lesionflow", "StackStatus": status, "CreationTime": datetime.now(timezone.utc)}]})

    # When it is checked, Then the outcome is as documented
    line = check.check_stack(check.describe_stack(cloudformation, "lesionflow"), "lesionflow", REGION)
    assert line.outcome is outcome and status in line.found
    assert bool(line.advice) == (outcome is not Outcome.OK)


@pytest.mark.parametrize(("status", "says"), [
    ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "the update succeeded and runs its new template"),
    ("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "runs its previous template; CloudFormation is removing"),
])
def test_a_stack_cleaning_up_after_an_update_says_which_template_it_runs(status, says):
    # Given a stack CloudFormation is cleaning up after an update (succeeded, or rolled back)
    facts = check.StackFacts(name="lesionflow", status=status)

    # When it is checked, Then the line says which template serves, not "wait until it is complete"
    line = check.check_stack(facts, "lesionflow", REGION)
    assert says in line.found and "wait until" not in line.advice


# ------------------------------------------------------------------------------------------------ endpoint

def _create_endpoint(sagemaker, variant: dict) -> None:
    sagemaker.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                           PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"})
    sagemaker.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "m"} | variant])
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="c")


def test_an_in_service_serverless_endpoint_is_ok_with_its_max_concurrency(aws):
    # Given a serverless endpoint (moto's SageMaker)
    sagemaker = client("sagemaker")
    _create_endpoint(sagemaker, {"ServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 5}})

    # When it is described and checked
    facts = check.describe_endpoint(sagemaker, ENDPOINT)
    line = check.check_endpoint(facts, ENDPOINT)

    # Then it is ok, InService, serverless with MaxConcurrency 5
    assert line.outcome is Outcome.OK and facts.serverless_max_concurrency == 5
    assert "InService" in line.found and "MaxConcurrency 5" in line.found


def _described(variants: list[dict] | None, shadows: list[dict] | None = None, status: str = "InService") -> dict:
    endpoint = {"EndpointName": ENDPOINT,
                "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
                "EndpointConfigName": "c", "EndpointStatus": status, "CreationTime": datetime.now(timezone.utc),
                "LastModifiedTime": datetime.now(timezone.utc)}
    if variants is not None:
        endpoint["ProductionVariants"] = [{"VariantName": f"v{i}"} | v for i, v in enumerate(variants)]
    if shadows is not None:
        endpoint["ShadowProductionVariants"] = [{"VariantName": f"s{i}"} | v for i, v in enumerate(shadows)]
    return endpoint


@pytest.mark.parametrize(("variants", "shadows", "expected"), [
    ([{"CurrentServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 5}}], None, 5),
    ([{"CurrentServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 5},
       "DesiredServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 8}}], None, 5),
    ([{"DesiredServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 8}}], None, 8),
    ([{"CurrentServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 5}}],
     [{"CurrentServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}], 7),
    ([{"CurrentInstanceCount": 1, "DesiredInstanceCount": 1}], None, None),
])
def test_an_endpoint_with_variants_is_read_from_describe_endpoint_alone(variants, shadows, expected):
    # Given DescribeEndpoint answers with the variants' serverless (or instance) settings, and nothing else is stubbed
    sagemaker = stubbed("sagemaker", "describe_endpoint", _described(variants, shadows))

    # When it is described (a DescribeEndpointConfig call would fail: the Stubber has no answer for it)
    facts = check.describe_endpoint(sagemaker, ENDPOINT)

    # Then its MaxConcurrency is the serving one (the desired one while nothing serves yet), shadows included
    assert facts.serverless_max_concurrency == expected


def test_an_endpoint_without_variants_yet_is_read_from_its_endpoint_config():
    # Given an endpoint being created: DescribeEndpoint has no ProductionVariants yet
    sagemaker = client("sagemaker")
    with Stubber(sagemaker) as stubber:
        stubber.add_response("describe_endpoint", _described(None, status="Creating"), {"EndpointName": ENDPOINT})
        stubber.add_response("describe_endpoint_config", {
            "EndpointConfigName": "c",
            "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c",
            "CreationTime": datetime.now(timezone.utc), "ProductionVariants": [
                {"VariantName": "AllTraffic", "ServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 6}}]},
            {"EndpointConfigName": "c"})

        # When it is described
        facts = check.describe_endpoint(sagemaker, ENDPOINT)
        stubber.assert_no_pending_responses()

    # Then its MaxConcurrency comes from the endpoint config it is created from
    assert facts.status == "Creating" and facts.serverless_max_concurrency == 6


def test_an_instance_endpoint_has_no_serverless_concurrency(aws):
    sagemaker = client("sagemaker")
    _create_endpoint(sagemaker, {"InitialInstanceCount": 1, "InstanceType": "ml.m5.large"})
    facts = check.describe_endpoint(sagemaker, ENDPOINT)
    assert facts.serverless_max_concurrency is None and "on instances" in check.check_endpoint(facts, ENDPOINT).found


def test_a_missing_endpoint_fails_and_says_how_to_set_one(aws):
    facts = check.describe_endpoint(client("sagemaker"), ENDPOINT)
    line = check.check_endpoint(facts, ENDPOINT)
    assert facts is None and line.outcome is Outcome.FAIL
    assert f"endpoint {ENDPOINT} does not exist" in line.found and "EndpointName=" in line.advice


@pytest.mark.parametrize(("status", "outcome"), [
    ("Creating", Outcome.FAIL), ("Failed", Outcome.FAIL), ("OutOfService", Outcome.FAIL), ("Deleting", Outcome.FAIL),
    ("Updating", Outcome.WARN), ("SystemUpdating", Outcome.WARN), ("RollingBack", Outcome.WARN),
])
def test_an_endpoint_not_in_service_is_named_by_its_status(status, outcome):
    facts = EndpointFacts(name=ENDPOINT, status=status, failure_reason="the container did not pass the ping check"
                          if status == "Failed" else None)
    line = check.check_endpoint(facts, ENDPOINT)
    assert line.outcome is outcome and status in line.found and line.advice
    assert status != "Failed" or "ping check" in line.advice


# ------------------------------------------------------------------------------------------------ answer

@pytest.fixture(scope="module")
def model_server(tmp_path_factory):
    """The real model server with the demo model, serving ``lesionflow-vit`` on loopback."""
    classifier = OnnxImageClassifier(write(tmp_path_factory.mktemp("model") / "demo.onnx"))
    server = ModelServer(classifier, endpoint_name=ENDPOINT)
    http = serve(server)
    server.url = f"http://127.0.0.1:{http.server_port}"
    yield server
    http.shutdown()


@pytest.fixture
def runtime(model_server):
    """``runtime(read_timeout)`` as the check calls it, recording the timeouts asked for."""
    model_server.faults = FaultInjector()
    asked = []

    target = check.Target(session=boto3.Session(region_name=REGION), stack_name="lesionflow", region=REGION,
                          endpoint_url=model_server.url)

    def make(read_timeout: int):
        asked.append(read_timeout)
        return target.runtime(read_timeout)
    make.asked = asked
    return make


def answer(runtime, endpoint: str = ENDPOINT, contract=CONTRACT) -> tuple[list, Line]:
    *announcements, line = check.check_answer(runtime, endpoint, contract, read_timeout=2)
    return announcements, line


def test_the_endpoint_answering_a_generated_image_with_valid_scores_is_ok(runtime):
    # When the check invokes the real endpoint with its generated image
    announcements, line = answer(runtime)

    # Then it announced the call first, and found seven valid scores
    assert announcements[0].text == f"invoking endpoint {ENDPOINT} once with a generated image"
    assert line.outcome is Outcome.OK and line.found.startswith("7 valid scores")
    assert runtime.asked == [2]


def test_a_name_the_endpoint_does_not_serve_fails_naming_it(runtime):
    _, line = answer(runtime, endpoint="lesionflow-gone")
    assert line.outcome is Outcome.FAIL and "lesionflow-gone does not exist" in line.found
    assert "EndpointName" in line.advice


@pytest.mark.parametrize("kind", [FaultKind.WRONG_SHAPE, FaultKind.MALFORMED])
def test_an_answer_the_contract_cannot_read_fails(runtime, model_server, kind):
    model_server.faults = FaultInjector(rate=1.0, kinds=(kind,))
    _, line = answer(runtime)
    assert line.outcome is Outcome.FAIL and "not as contract hf-image-classification says" in line.found


def test_a_contract_the_model_does_not_speak_fails(runtime):
    # Given the stack says tensor-npy while the endpoint's model speaks JPEG in, label/score out
    _, line = answer(runtime, contract=load_contract("tensor-npy"))
    assert line.outcome is Outcome.FAIL and "tensor-npy" in line.found and "ModelContract" in line.advice


def test_an_endpoint_that_stays_not_ready_fails_after_one_more_try(runtime, model_server):
    # Given an endpoint that answers every call ModelNotReady
    model_server.faults = FaultInjector(rate=1.0, kinds=(FaultKind.NOT_READY,))

    # When the check invokes it, Then it tried exactly twice, the second time with the longer timeout, and fails
    announcements, line = answer(runtime)
    assert line.outcome is Outcome.FAIL and line.found.startswith("no answer") and "again in a minute" in line.advice
    assert runtime.asked == [2, check.RETRY_READ_TIMEOUT] and "once more" in announcements[-1].text
    assert model_server.faults.injected[FaultKind.NOT_READY] == 2


def test_each_try_is_one_call_the_sdk_does_not_retry_behind_the_announced_ones(runtime, model_server):
    # Given an endpoint that answers every call 503, which the SDK's standard mode would retry on its own
    model_server.faults = FaultInjector(rate=1.0, kinds=(FaultKind.UNAVAILABLE,))

    # When the check invokes it, Then the endpoint saw exactly the two calls the check announced
    _, line = answer(runtime)
    assert line.outcome is Outcome.FAIL and runtime.asked == [2, check.RETRY_READ_TIMEOUT]
    assert model_server.faults.injected[FaultKind.UNAVAILABLE] == 2


def test_an_answer_slower_than_the_invoke_timeout_comes_with_the_longer_one(runtime, model_server):
    # Given an endpoint that answers after 2.5 s (the pipeline's read timeout here is 2 s)
    model_server.faults = FaultInjector(rate=1.0, kinds=(FaultKind.TIMEOUT,), delay_seconds=2.5)

    # When the check invokes it, Then the first call timed out and the second, waiting up to 60 s, got the answer
    announcements, line = answer(runtime)
    assert runtime.asked == [2, check.RETRY_READ_TIMEOUT] and "did not answer in time" in announcements[-1].text
    assert line.outcome is Outcome.OK and line.found.startswith("7 valid scores")


def test_a_cold_start_is_tried_once_more_with_a_longer_read_timeout():
    # Given an endpoint that is not ready at the first call and answers the second
    asked, clients = [], []

    def runtime(read_timeout: int):
        asked.append(read_timeout)
        sagemaker = client("sagemaker-runtime")
        stubber = Stubber(sagemaker)
        if len(asked) == 1:
            stubber.add_client_error("invoke_endpoint", "ModelNotReadyException", "Model is not ready", 429)
        else:
            body = json.dumps([{"label": "melanoma", "score": 0.8}, {"label": "nevus", "score": 0.2}]).encode()
            stubber.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body), len(body)),
                                                     "ContentType": "application/json"})
        stubber.activate()
        clients.append(stubber)
        return sagemaker

    # When the check invokes it
    announcements, line = answer(runtime)

    # Then it tried twice, the second time with the longer timeout, and read the answer by the contract
    assert asked == [2, check.RETRY_READ_TIMEOUT]
    assert line.outcome is Outcome.OK and "top: mel 0.80" in line.found
    assert "not ready" in announcements[-1].text


def refusing(code: str, status: int):
    """``runtime(read_timeout)`` whose InvokeEndpoint is refused with ``code``, in a message that echoes data."""
    def runtime(read_timeout: int):
        sagemaker = client("sagemaker-runtime")
        stubber = Stubber(sagemaker)
        stubber.add_client_error("invoke_endpoint", code, "request for patient-4711 (body 0xffd8) refused", status)
        stubber.activate()
        return sagemaker
    return runtime


def test_an_invoke_endpoint_access_denied_is_a_missing_permission():
    # Given credentials without sagemaker:InvokeEndpoint on the endpoint
    # When the check invokes it
    _, line = answer(refusing("AccessDeniedException", 400))

    # Then the line names the code and the permission, and not SageMaker's message
    assert line.outcome is Outcome.FAIL and "AccessDeniedException" in line.found
    assert f"sagemaker:InvokeEndpoint on {ENDPOINT}" in line.advice
    assert "patient-4711" not in line.found + line.advice


@pytest.mark.parametrize(("code", "status"), [("UnrecognizedClientException", 403), ("ExpiredTokenException", 400),
                                              ("SomethingSageMakerAddsLater", 418)])
def test_any_other_untranslated_refusal_is_named_by_its_code_alone(code, status):
    # Given InvokeEndpoint refused with a code the pipeline does not translate, in a message that echoes the request
    # When the check invokes it
    _, line = answer(refusing(code, status))

    # Then it fails naming the code and status, with what to look at, and neither blames a permission nor repeats
    # the message
    assert line.outcome is Outcome.FAIL and f"({code}, status {status})" in line.found
    assert f"look up {code}" in line.advice and "sagemaker:InvokeEndpoint on" not in line.advice
    assert "patient-4711" not in line.found + line.advice and "0xffd8" not in line.found + line.advice


# ------------------------------------------------------------------------------------------------ dead letters

def test_an_empty_dead_letter_queue_is_ok_and_a_message_in_it_fails(aws):
    # Given a dead-letter queue (moto), empty
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    assert check.check_dead_letters(sqs, url).outcome is Outcome.OK

    # When two messages land in it, Then the line fails, counts them and points to redrive
    for body in ("one", "two"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    line = check.check_dead_letters(sqs, url)
    assert line.outcome is Outcome.FAIL and line.found.startswith("2 message(s)") and "lesionflow redrive" in line.advice


def test_a_dead_letter_queue_that_is_gone_fails(aws):
    sqs = client("sqs")
    line = check.check_dead_letters(sqs, "https://sqs.us-east-1.amazonaws.com/123456789012/gone")
    assert line.outcome is Outcome.FAIL
    assert check.check_dead_letters(sqs, None).outcome is Outcome.FAIL


# ------------------------------------------------------------------------------------------------ execution data

def test_a_state_machine_encrypted_with_the_data_key_and_readable_is_ok(stack):
    # Given the local stack's state machine, created as the template says (moto decrypts for anyone)
    line = check.check_execution_data(client("stepfunctions"), stack.state_machine_arn)
    assert line.outcome is Outcome.OK and "data key" in line.found


def test_credentials_that_cannot_decrypt_the_executions_are_pointed_to_the_reader_policy():
    # Given Step Functions refusing, as for a caller without kms:Decrypt on the state machine's key
    sfn = stubbed("stepfunctions", "describe_state_machine", error=("KmsAccessDeniedException", 400))
    line = check.check_execution_data(sfn, f"arn:aws:states:us-east-1:123456789012:stateMachine:{ENDPOINT}")
    # Then it is a warning (uploads are processed all the same) naming the policy that grants it
    assert line.outcome is Outcome.WARN and "KmsAccessDeniedException" in line.found
    assert "ExecutionReaderPolicyArn" in line.advice


def test_a_state_machine_still_on_an_aws_owned_key_is_a_warning_to_deploy(stack):
    # Given a state machine as the stacks before the four stages made it: no customer-managed key
    sfn = client("stepfunctions")
    arn = sfn.create_state_machine(name="older", definition='{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}',
                                   roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
    line = check.check_execution_data(sfn, arn)
    assert line.outcome is Outcome.WARN and "AWS_OWNED_KEY" in line.found and "sam deploy" in line.advice


# ------------------------------------------------------------------------------------------------ concurrency

def _account(limit: int, unreserved: int):
    return stubbed("lambda", "get_account_settings", {"AccountLimit": {
        "ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": unreserved}})


def test_lambda_concurrency_covering_dispatchers_and_steps_is_ok():
    # Given 1000 concurrent executions; DispatchMaxConcurrency 5 and a serverless endpoint of MaxConcurrency 5
    line = check.check_lambda_concurrency(_account(1000, 1000), 5, serverless(5))
    # Then the pipeline's 5 + 3 x 5 = 20 (Validate, Preprocess, InvokeModel per endpoint invocation) are covered
    assert line.outcome is Outcome.OK and "needs 20" in line.found


def test_a_new_accounts_lambda_concurrency_of_10_fails_with_what_to_request():
    line = check.check_lambda_concurrency(_account(10, 10), 5, serverless(5))
    assert line.outcome is Outcome.FAIL and "10 unreserved of 10" in line.found and "needs 20" in line.found
    assert "L-B99A9384" in line.advice and "at least 20" in line.advice


def test_reserved_concurrency_elsewhere_counts_against_the_pipeline():
    line = check.check_lambda_concurrency(_account(1000, 16), 4, None)  # instance endpoint: 4 + 3 x 4 = 16
    assert line.outcome is Outcome.OK and "needs 16" in line.found
    line = check.check_lambda_concurrency(_account(1000, 15), 4, None)
    assert line.outcome is Outcome.FAIL and "at least 1001" in line.advice


def test_lambda_concurrency_that_cannot_be_read_is_a_warning():
    aws = stubbed("lambda", "get_account_settings", error=("AccessDeniedException", 403))
    line = check.check_lambda_concurrency(aws, 5, serverless())
    assert line.outcome is Outcome.WARN and "AccessDeniedException" in line.found


def _quota(value: float):
    return stubbed("service-quotas", "get_service_quota", {"Quota": {
        "ServiceCode": "sagemaker", "QuotaCode": check.SERVERLESS_QUOTA_CODE, "Value": value}})


def _serverless_endpoint(sagemaker, name: str, max_concurrency: int | None) -> None:
    """An endpoint (moto) serverless with ``max_concurrency``, or on instances when it is None."""
    sagemaker.create_model(ModelName=f"{name}-model", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                           PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"})
    compute = ({"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": max_concurrency}}
               if max_concurrency else {"InitialInstanceCount": 1, "InstanceType": "ml.m5.large"})
    sagemaker.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": f"{name}-model"} | compute])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def _quota_line(quota: float, this: int | None, others: list[int | None], stack_asks: int | None = None) -> Line:
    """The line for this endpoint (MaxConcurrency ``this``; None: it does not exist) among ``others`` (moto)."""
    sagemaker = client("sagemaker")
    for number, max_concurrency in enumerate(others):
        _serverless_endpoint(sagemaker, f"other-{number}", max_concurrency)
    endpoint = None
    if this is not None:
        _serverless_endpoint(sagemaker, ENDPOINT, this)
        endpoint = check.describe_endpoint(sagemaker, ENDPOINT)
    return check.check_serverless_quota(_quota(quota), sagemaker, ENDPOINT, endpoint, stack_asks)


def test_serverless_endpoints_under_the_quota_are_ok_with_what_is_to_spare(aws):
    # Given a quota of 10, this endpoint of MaxConcurrency 5, another of 2 and one on instances
    # When the line is checked
    line = _quota_line(10.0, 5, [2, None])

    # Then all serverless endpoints take 7 of 10: ok
    assert line.outcome is Outcome.OK and not line.advice
    assert "quota 10; this endpoint 5; all serverless endpoints 7 (1 other(s) in the region take 2): 3 to spare" \
        in line.found


def test_serverless_endpoints_at_the_quota_warn_that_there_is_no_headroom(aws):
    # Given a quota of 10 taken entirely: this endpoint 5, two others 3 and 2
    line = _quota_line(10.0, 5, [3, 2])
    # Then it warns: raising ServerlessMaxConcurrency or adding an endpoint would be refused
    assert line.outcome is Outcome.WARN and "all serverless endpoints 10" in line.found and "no headroom" in line.found
    assert "raising ServerlessMaxConcurrency" in line.advice and check.SERVERLESS_QUOTA_CODE in line.advice


def test_serverless_endpoints_over_the_quota_fail_with_what_it_leaves_this_one(aws):
    # Given the quota (since lowered to 8) under this endpoint's 5 and another's 5
    line = _quota_line(8.0, 5, [5])
    # Then it fails: an update of this endpoint with 5 would be refused; 3 is what the quota leaves
    assert line.outcome is Outcome.FAIL and "quota 8; this endpoint 5; all serverless endpoints 10" in line.found
    assert "the quota leaves 3" in line.advice and "at least 10" in line.advice
    assert "ServerlessMaxConcurrency=3" in line.advice


def test_a_stack_asking_more_than_the_endpoint_runs_with_is_held_to_the_quota_with_its_ask(aws):
    # Given an endpoint running with 5 (an update to 8 rolled back), another of 4, and a quota of 10
    line = _quota_line(10.0, 5, [4], stack_asks=8)
    # Then the stack's 8 is what counts: 4 + 8 > 10 fails, and the advice is the 6 the quota leaves
    assert line.outcome is Outcome.FAIL and "this endpoint 8 (the stack's ServerlessMaxConcurrency: it runs with 5)" \
        in line.found
    assert "ServerlessMaxConcurrency=6" in line.advice
    # And a stack asking less than the endpoint runs with is judged on what it runs with: 4 + 5 fits
    sagemaker = client("sagemaker")
    line = check.check_serverless_quota(_quota(10.0), sagemaker, ENDPOINT, check.describe_endpoint(sagemaker, ENDPOINT),
                                        3)
    assert line.outcome is Outcome.OK and "this endpoint 5; all serverless endpoints 9" in line.found


@pytest.mark.parametrize(("asks", "outcome"), [(1, Outcome.OK), (2, Outcome.WARN), (3, Outcome.FAIL)])
def test_an_endpoint_not_created_yet_is_held_to_the_quota_with_the_stacks_parameter(aws, asks, outcome):
    # Given no endpoint yet, a stack asking ServerlessMaxConcurrency `asks`, others taking 8 of a quota of 10
    line = _quota_line(10.0, None, [5, 3], stack_asks=asks)
    # Then 8 + asks is judged: under 10 ok, 10 warn, over 10 fail (the creation would be refused)
    assert line.outcome is outcome and f"this endpoint {asks} (the stack's ServerlessMaxConcurrency: the endpoint " \
        f"does not exist yet); all serverless endpoints {8 + asks}" in line.found


def test_the_region_s_endpoints_are_listed_page_by_page_and_one_gone_meanwhile_counts_nothing():
    # Given ListEndpoints answers in two pages: this endpoint and "a" (serverless 3), then "b" (gone by the time it
    # is described) and "c" (serverless 2)
    sagemaker = client("sagemaker")
    summary = {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x",
               "CreationTime": datetime.now(timezone.utc), "LastModifiedTime": datetime.now(timezone.utc),
               "EndpointStatus": "InService"}
    with Stubber(sagemaker) as stubber:
        stubber.add_response("list_endpoints", {"Endpoints": [summary | {"EndpointName": ENDPOINT},
                                                              summary | {"EndpointName": "a"}], "NextToken": "page-2"})
        stubber.add_response("list_endpoints", {"Endpoints": [summary | {"EndpointName": "b"},
                                                              summary | {"EndpointName": "c"}]},
                             {"NextToken": "page-2"})
        for name, max_concurrency in (("a", 3), ("b", None), ("c", 2)):
            if max_concurrency is None:
                stubber.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint", 400,
                                         expected_params={"EndpointName": name})
            else:
                stubber.add_response("describe_endpoint", _described([{"CurrentServerlessConfig": {
                    "MemorySizeInMB": 2048, "MaxConcurrency": max_concurrency}}]) | {"EndpointName": name},
                    {"EndpointName": name})

        # When the other serverless endpoints are read
        others = check.other_serverless_endpoints(sagemaker, excluding=ENDPOINT)
        stubber.assert_no_pending_responses()

    # Then both pages count, this endpoint is not described again, and the one gone counts nothing
    assert others == {"a": 3, "c": 2}


def test_a_quota_with_no_applied_value_is_read_from_its_default(aws):
    quotas = client("service-quotas")
    with Stubber(quotas) as stubber:
        stubber.add_client_error("get_service_quota", "NoSuchResourceException", "no applied value", 400)
        stubber.add_response("get_aws_default_service_quota", {"Quota": {"Value": 4.0}},
                             {"ServiceCode": "sagemaker", "QuotaCode": check.SERVERLESS_QUOTA_CODE})
        line = check.check_serverless_quota(quotas, client("sagemaker"), ENDPOINT, serverless(5), None)
    assert line.outcome is Outcome.FAIL and "quota 4; this endpoint 5" in line.found


def test_a_serverless_quota_or_endpoint_list_that_cannot_be_read_is_a_warning():
    denied = stubbed("service-quotas", "get_service_quota", error=("AccessDeniedException", 403))
    line = check.check_serverless_quota(denied, client("sagemaker"), ENDPOINT, serverless(), None)
    assert line.outcome is Outcome.WARN and "AccessDeniedException" in line.found
    unlisted = stubbed("sagemaker", "list_endpoints", error=("AccessDeniedException", 400))
    line = check.check_serverless_quota(_quota(10.0), unlisted, ENDPOINT, serverless(), None)
    assert line.outcome is Outcome.WARN and "cannot list the region's serverless endpoints" in line.found
    assert "sagemaker:ListEndpoints" in line.advice


def test_instances_need_no_serverless_quota_and_an_endpoint_unknown_is_not_judged():
    # Given clients with no answers: any call would fail the test
    quotas, sagemaker = client("service-quotas"), client("sagemaker")
    Stubber(quotas).activate()
    Stubber(sagemaker).activate()
    instance = EndpointFacts(name=ENDPOINT, status="InService")
    assert check.check_serverless_quota(quotas, sagemaker, ENDPOINT, instance, None).outcome is Outcome.OK
    line = check.check_serverless_quota(quotas, sagemaker, ENDPOINT, None, None)
    assert line.outcome is Outcome.WARN and "does not create a serverless one" in line.found
    line = check.check_serverless_quota(quotas, sagemaker, ENDPOINT, None, 5, described=False)
    assert line.outcome is Outcome.WARN and "could not be described" in line.found


@pytest.mark.parametrize(("parameters", "asks"), [
    ({"EndpointSource": "huggingface", "EndpointCompute": "serverless", "ServerlessMaxConcurrency": "7"}, 7),
    ({"EndpointSource": "artifact", "ServerlessMaxConcurrency": "3"}, 3),
    ({"EndpointSource": "existing", "EndpointCompute": "serverless", "ServerlessMaxConcurrency": "7"}, None),
    ({"EndpointSource": "huggingface", "EndpointCompute": "instance", "ServerlessMaxConcurrency": "7"}, None),
    ({"ServerlessMaxConcurrency": "7"}, None),
    ({"EndpointSource": "huggingface", "EndpointCompute": "serverless"}, None),
])
def test_the_stack_asks_serverless_concurrency_only_when_it_creates_a_serverless_endpoint(parameters, asks):
    assert check.stack_serverless_ask(parameters) == asks


# ------------------------------------------------------------------------------------------------ alarms, billing

def test_a_confirmed_alarm_subscription_is_ok(aws):
    # Given the alarm topic (moto) with a subscription SNS holds as confirmed
    sns = client("sns")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:123456789012:pager")
    line = check.check_alarm_subscriptions(sns, topic)
    assert line.outcome is Outcome.OK and line.found.startswith("1 confirmed") and "sqs" in line.found


def test_an_alarm_topic_with_only_a_pending_or_no_subscription_warns(aws):
    pending = stubbed("sns", "list_subscriptions_by_topic", {"Subscriptions": [
        {"SubscriptionArn": "PendingConfirmation", "Protocol": "email", "TopicArn": "arn:aws:sns:us-east-1:1:t"}]})
    line = check.check_alarm_subscriptions(pending, "arn:aws:sns:us-east-1:1:t")
    assert line.outcome is Outcome.WARN and "1 pending confirmation" in line.found and "confirm" in line.advice
    sns = client("sns")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    line = check.check_alarm_subscriptions(sns, topic)
    assert line.outcome is Outcome.WARN and "aws sns subscribe" in line.advice
    denied = stubbed("sns", "list_subscriptions_by_topic", error=("AuthorizationError", 403))
    assert check.check_alarm_subscriptions(denied, topic).outcome is Outcome.WARN


def test_billing_data_in_us_east_1_is_ok_and_none_warns_to_enable_billing_alerts():
    data = stubbed("cloudwatch", "list_metrics", {"Metrics": [{
        "Namespace": "AWS/Billing", "MetricName": "EstimatedCharges",
        "Dimensions": [{"Name": "Currency", "Value": "USD"}]}]})
    assert check.check_billing_data(data, REGION).outcome is Outcome.OK
    line = check.check_billing_data(stubbed("cloudwatch", "list_metrics", {"Metrics": []}), "eu-west-1")
    assert line.outcome is Outcome.WARN and "Receive Billing Alerts" in line.advice
    assert "only in us-east-1" in line.found


# ------------------------------------------------------------------------------------------------ the whole run

def test_the_exit_status_is_1_on_a_fail_and_0_with_only_warnings():
    ok, warn = Line(check="a", outcome=Outcome.OK, found=""), Line(check="b", outcome=Outcome.WARN, found="")
    skipped = Line(check="c", outcome=Outcome.SKIPPED, found="")
    assert check.exit_status([ok, warn, skipped]) == 0
    assert check.exit_status([ok, Line(check="d", outcome=Outcome.FAIL, found="")]) == 1


def test_a_missing_stack_stops_the_run_after_its_line(aws):
    target = check.Target(session=boto3.Session(region_name=REGION), stack_name="lesionflow", region=REGION)
    lines = list(check.run(target))
    assert [(line.check, line.outcome) for line in lines] == [("stack", Outcome.FAIL)]



def _deploy_stack(parameters: dict[str, str], outputs: dict | None = None) -> None:
    """A stack on moto with these parameters (as the deployed template's) and outputs, named as check looks for it."""
    client("cloudformation").create_stack(StackName="lesionflow", TemplateBody=json.dumps({
        "Parameters": {name: {"Type": "String"} for name in parameters},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": outputs or {}}),
        Parameters=[{"ParameterKey": name, "ParameterValue": value} for name, value in parameters.items()])


def _checked_with_quota(quota: float) -> dict[str, Line]:
    """Every line of the whole check, by name, with the serverless quota (which moto does not know) from a Stubber."""
    class Deployed(check.Target):
        def client(self, service, region=None, config=None):
            return _quota(quota) if service == "service-quotas" else super().client(service, region, config)

    items = check.run(Deployed(session=boto3.Session(region_name=REGION), stack_name="lesionflow", region=REGION))
    return {item.check: item for item in items if isinstance(item, Line)}


def test_a_deployed_stack_is_checked_line_by_line_in_order(aws, model_server, monkeypatch):
    # Given a deployed stack (moto) naming a serverless endpoint, whose runtime is the real model server,
    # with a message in its dead-letter queue
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", model_server.url)
    model_server.faults = FaultInjector()
    _create_endpoint(client("sagemaker"), {"ServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 5}})
    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody="poison")
    _deploy_stack({"EndpointName": ENDPOINT, "ModelContract": CONTRACT.name, "InvokeTimeoutSeconds": "5",
                   "DispatchMaxConcurrency": "5"},
                  {"AlarmTopicArn": {"Value": {"Ref": "Topic"}}, "DeadLetterQueueUrl": {"Value": dlq}})

    # When the whole check runs (the one quota moto does not know comes from a Stubber)
    lines = _checked_with_quota(10.0)

    # Then every line is there, in order, the model really answered, and the dead letter fails the run
    assert list(lines) == ["stack", "endpoint", "answer", "dead letters", "execution data", "lambda concurrency",
                           "serverless quota", "alarms", "billing"]
    assert lines["stack"].outcome is lines["endpoint"].outcome is lines["answer"].outcome is Outcome.OK
    assert lines["execution data"].outcome is Outcome.WARN  # this stack (moto) names no state machine
    assert lines["dead letters"].outcome is Outcome.FAIL and lines["alarms"].outcome is Outcome.WARN
    assert lines["serverless quota"].outcome is Outcome.OK
    assert "quota 10; this endpoint 5; all serverless endpoints 5" in lines["serverless quota"].found
    assert check.exit_status(list(lines.values())) == 1


def test_a_stack_whose_serverless_endpoint_was_not_created_is_held_to_the_quota_with_its_parameter(aws, model_server,
                                                                                                     monkeypatch):
    # Given a stack that creates a serverless endpoint of ServerlessMaxConcurrency 8, which does not exist (moto),
    # while another serverless endpoint of MaxConcurrency 5 takes part of a quota of 10
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", model_server.url)
    model_server.faults = FaultInjector()
    _serverless_endpoint(client("sagemaker"), "someone-elses", 5)
    _deploy_stack({"EndpointName": ENDPOINT, "ModelContract": CONTRACT.name, "DispatchMaxConcurrency": "5",
                   "EndpointSource": "huggingface", "EndpointCompute": "serverless", "ServerlessMaxConcurrency": "8"})

    # When the whole check runs
    lines = _checked_with_quota(10.0)

    # Then the endpoint line fails, and the quota line says the creation with 8 is refused: 5 + 8 > 10
    assert lines["endpoint"].outcome is Outcome.FAIL
    quota = lines["serverless quota"]
    assert quota.outcome is Outcome.FAIL and "quota 10; this endpoint 8" in quota.found
    assert "does not exist yet" in quota.found and "all serverless endpoints 13" in quota.found
    assert "ServerlessMaxConcurrency=5" in quota.advice


def test_an_endpoint_that_cannot_be_described_leaves_the_quota_unchecked(aws, model_server, monkeypatch):
    # Given a deployed stack whose endpoint the credentials may not describe
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", model_server.url)
    model_server.faults = FaultInjector()
    parameters = {"EndpointName": ENDPOINT, "ModelContract": CONTRACT.name, "DispatchMaxConcurrency": "5",
                  "EndpointSource": "huggingface", "ServerlessMaxConcurrency": "5"}
    client("cloudformation").create_stack(StackName="lesionflow", TemplateBody=json.dumps({
        "Parameters": {name: {"Type": "String"} for name in parameters},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}),
        Parameters=[{"ParameterKey": name, "ParameterValue": value} for name, value in parameters.items()])

    class Denied(check.Target):
        def client(self, service, region=None, config=None):
            if service == "sagemaker":
                return stubbed("sagemaker", "describe_endpoint", error=("AccessDeniedException", 400))
            return _quota(10.0) if service == "service-quotas" else super().client(service, region, config)

    # When the whole check runs
    items = list(check.run(Denied(session=boto3.Session(region_name=REGION), stack_name="lesionflow", region=REGION)))
    lines = {item.check: item for item in items if isinstance(item, Line)}

    # Then both lines warn: the endpoint's could not be read, so the quota is not judged on the stack's parameter
    assert lines["endpoint"].outcome is Outcome.WARN and "AccessDeniedException" in lines["endpoint"].found
    assert lines["serverless quota"].outcome is Outcome.WARN and "not checked" in lines["serverless quota"].found

"""`lesionflow check`: every line, healthy and failing, over moto's AWS, botocore's Stubber for what moto cannot
put in a state (a stack in progress, a quota, a pending subscription), and the real model server for the answer."""

import io
import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.config import Config
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
    ("CREATE_IN_PROGRESS", Outcome.FAIL), ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", Outcome.FAIL),
    ("CREATE_FAILED", Outcome.FAIL), ("ROLLBACK_COMPLETE", Outcome.FAIL), ("ROLLBACK_IN_PROGRESS", Outcome.FAIL),
    ("UPDATE_ROLLBACK_FAILED", Outcome.FAIL), ("DELETE_IN_PROGRESS", Outcome.FAIL),
    ("UPDATE_ROLLBACK_COMPLETE", Outcome.WARN),
])
def test_only_a_complete_stack_is_ok(status, outcome):
    # Given CloudFormation describes the stack in this status
    cloudformation = stubbed("cloudformation", "describe_stacks", {"Stacks": [{
        "StackName": "lesionflow", "StackStatus": status, "CreationTime": datetime.now(timezone.utc)}]})

    # When it is checked, Then the outcome is as documented
    line = check.check_stack(check.describe_stack(cloudformation, "lesionflow"), "lesionflow", REGION)
    assert line.outcome is outcome and status in line.found
    assert bool(line.advice) == (outcome is not Outcome.OK)


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

    def make(read_timeout: int):
        asked.append(read_timeout)
        return boto3.client("sagemaker-runtime", region_name=REGION, endpoint_url=model_server.url,
                            config=Config(read_timeout=read_timeout, retries={"mode": "standard", "max_attempts": 1}))
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


# ------------------------------------------------------------------------------------------------ concurrency

def _account(limit: int, unreserved: int):
    return stubbed("lambda", "get_account_settings", {"AccountLimit": {
        "ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": unreserved}})


def test_lambda_concurrency_covering_dispatchers_and_steps_is_ok():
    # Given 1000 concurrent executions; DispatchMaxConcurrency 5 and a serverless endpoint of MaxConcurrency 5
    line = check.check_lambda_concurrency(_account(1000, 1000), 5, serverless(5))
    # Then the pipeline's 5 + 2 x 5 = 15 are covered
    assert line.outcome is Outcome.OK and "needs 15" in line.found


def test_a_new_accounts_lambda_concurrency_of_10_fails_with_what_to_request():
    line = check.check_lambda_concurrency(_account(10, 10), 5, serverless(5))
    assert line.outcome is Outcome.FAIL and "10 unreserved of 10" in line.found and "needs 15" in line.found
    assert "L-B99A9384" in line.advice and "at least 15" in line.advice


def test_reserved_concurrency_elsewhere_counts_against_the_pipeline():
    line = check.check_lambda_concurrency(_account(1000, 12), 4, None)  # instance endpoint: 4 + 2 x 4 = 12
    assert line.outcome is Outcome.OK and "needs 12" in line.found
    line = check.check_lambda_concurrency(_account(1000, 11), 4, None)
    assert line.outcome is Outcome.FAIL and "at least 1001" in line.advice


def test_lambda_concurrency_that_cannot_be_read_is_a_warning():
    aws = stubbed("lambda", "get_account_settings", error=("AccessDeniedException", 403))
    line = check.check_lambda_concurrency(aws, 5, serverless())
    assert line.outcome is Outcome.WARN and "AccessDeniedException" in line.found


def _quota(value: float):
    return stubbed("service-quotas", "get_service_quota", {"Quota": {
        "ServiceCode": "sagemaker", "QuotaCode": check.SERVERLESS_QUOTA_CODE, "Value": value}})


def test_a_serverless_quota_covering_max_concurrency_is_ok_and_one_under_it_fails():
    assert check.check_serverless_quota(_quota(10.0), serverless(5)).outcome is Outcome.OK
    line = check.check_serverless_quota(_quota(3.0), serverless(5))
    assert line.outcome is Outcome.FAIL and "quota is 3" in line.found and "ServerlessMaxConcurrency=3" in line.advice


def test_a_quota_with_no_applied_value_is_read_from_its_default():
    quotas = client("service-quotas")
    with Stubber(quotas) as stubber:
        stubber.add_client_error("get_service_quota", "NoSuchResourceException", "no applied value", 400)
        stubber.add_response("get_aws_default_service_quota", {"Quota": {"Value": 4.0}},
                             {"ServiceCode": "sagemaker", "QuotaCode": check.SERVERLESS_QUOTA_CODE})
        line = check.check_serverless_quota(quotas, serverless(5))
    assert line.outcome is Outcome.FAIL and "quota is 4" in line.found


def test_a_serverless_quota_that_cannot_be_read_is_a_warning_and_instances_need_none():
    denied = stubbed("service-quotas", "get_service_quota", error=("AccessDeniedException", 403))
    line = check.check_serverless_quota(denied, serverless())
    assert line.outcome is Outcome.WARN and "AccessDeniedException" in line.found
    instance = EndpointFacts(name=ENDPOINT, status="InService")
    assert check.check_serverless_quota(client("service-quotas"), instance).outcome is Outcome.OK
    assert check.check_serverless_quota(client("service-quotas"), None).outcome is Outcome.WARN


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



def test_a_deployed_stack_is_checked_line_by_line_in_order(aws, model_server, monkeypatch):
    # Given a deployed stack (moto) naming a serverless endpoint, whose runtime is the real model server,
    # with a message in its dead-letter queue
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", model_server.url)
    model_server.faults = FaultInjector()
    _create_endpoint(client("sagemaker"), {"ServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 5}})
    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody="poison")
    parameters = {"EndpointName": ENDPOINT, "ModelContract": CONTRACT.name, "InvokeTimeoutSeconds": "5",
                  "DispatchMaxConcurrency": "5"}
    client("cloudformation").create_stack(StackName="lesionflow", TemplateBody=json.dumps({
        "Parameters": {name: {"Type": "String"} for name in parameters},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"AlarmTopicArn": {"Value": {"Ref": "Topic"}}, "DeadLetterQueueUrl": {"Value": dlq}}}),
        Parameters=[{"ParameterKey": name, "ParameterValue": value} for name, value in parameters.items()])

    # When the whole check runs (the one quota moto does not know comes from a Stubber)
    class Deployed(check.Target):
        def client(self, service, region=None, config=None):
            return _quota(10.0) if service == "service-quotas" else super().client(service, region, config)

    items = list(check.run(Deployed(session=boto3.Session(region_name=REGION), stack_name="lesionflow", region=REGION)))
    lines = {item.check: item for item in items if isinstance(item, Line)}

    # Then every line is there, in order, the model really answered, and the dead letter fails the run
    assert list(lines) == ["stack", "endpoint", "answer", "dead letters", "lambda concurrency", "serverless quota",
                           "alarms", "billing"]
    assert lines["stack"].outcome is lines["endpoint"].outcome is lines["answer"].outcome is Outcome.OK
    assert lines["dead letters"].outcome is Outcome.FAIL and lines["alarms"].outcome is Outcome.WARN
    assert check.exit_status(list(lines.values())) == 1

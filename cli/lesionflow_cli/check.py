"""`lesionflow check`: after `sam deploy` (or against the local stack), is everything there that uploads need?

Each check is a small function around one or two AWS calls that returns one ``Line``: ``ok``, ``warn``, ``FAIL`` or
``skipped (local)``, what was found, and for a problem what to do. ``run`` yields them in order (with an
``Announcement`` before the one check that calls the model, so that a person sees what is waiting); the command only
prints them. FAIL is for what would stop uploads from being processed; warn for what leaves them processed but
someone uninformed (alarms, billing) or what could not be read.

The lines, and when each fails:

- stack: ok on CREATE_COMPLETE, UPDATE_COMPLETE, IMPORT_COMPLETE and UPDATE_COMPLETE_CLEANUP_IN_PROGRESS (the update
  succeeded; CloudFormation only removes the resources it replaced); warn on UPDATE_ROLLBACK_COMPLETE,
  UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS and IMPORT_ROLLBACK_COMPLETE (the stack works, on its previous
  template); FAIL otherwise (in progress, failed, ROLLBACK_COMPLETE).
- endpoint: FAIL when the stack's EndpointName does not exist, or is Creating, OutOfService, Failed or Deleting; warn
  while Updating, SystemUpdating or RollingBack (it serves on its current configuration meanwhile).
- answer: one generated image through the stack's ModelContract (``invoke_endpoint`` and ``read_scores``, the
  pipeline's own code); FAIL unless it answers a valid set of scores. A ModelNotReady or a timeout (a serverless cold
  start) is tried once more with a 60 s read timeout. A refusal the pipeline does not translate is named by its error
  code only (SageMaker's message may echo the request): AccessDenied as a missing permission.
- dead letters: FAIL when the dead-letter queue holds messages (``lesionflow redrive`` after finding out why).
- execution data: warn unless the state machine's data (execution inputs, states, history) is encrypted with a
  customer-managed key, the stack's data key, and these credentials can read it (DescribeStateMachine needs
  kms:Decrypt for an encrypted state machine, as DescribeExecution and GetExecutionHistory do: the stack's
  ExecutionReaderPolicyArn output grants them). Uploads are processed either way: a warn.
- lambda concurrency: FAIL when the account's unreserved concurrency is below what the pipeline can use at once:
  DispatchMaxConcurrency dispatchers, plus a Validate, a Preprocess and an InvokeModel for each invocation the
  endpoint takes at once
  (its serverless MaxConcurrency; DispatchMaxConcurrency stands in for an instance endpoint). Short of that, under
  load the dispatchers are throttled (messages drift to the dead-letter queue) and steps fail with
  Lambda.TooManyRequestsException once retries run out. New accounts can have a limit of 10.
- serverless quota: SageMaker holds the MaxConcurrency of all serverless endpoints in the region together to the
  account's quota L-96300102, and enforces it when an endpoint is created or updated (an endpoint that exists fitted
  when it was made). The line lists the region's serverless endpoints (ListEndpoints, each one's DescribeEndpoint)
  and says "quota Q; this endpoint M; all serverless endpoints T" (T counts M). M is the endpoint's MaxConcurrency,
  or the stack's ServerlessMaxConcurrency when the stack creates a serverless endpoint and asks more (or it does not
  exist yet). FAIL when T exceeds Q: M is more than the quota leaves after the other endpoints, so the deploy or
  update that sets it is refused; warn when T is Q (no headroom to raise ServerlessMaxConcurrency or add a
  serverless endpoint); ok otherwise, and for an endpoint on instances.
- alarms: warn unless the alarm topic has a confirmed subscription (PendingConfirmation is not one).
- billing: warn unless AWS/Billing EstimatedCharges data exists in us-east-1, where the billing alarm watches it.

A quota or a setting that cannot be read (AccessDenied) is a warn that says so. Against the local stack, stack
status, alarms, billing and the quotas have nothing to check (``skipped (local)``); the answer and the dead letters
are checked for real.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import BaseModel

from lesionflow.contracts import ModelContract, load_contract
from lesionflow.errors import (
    EndpointAccessDenied,
    EndpointMissing,
    EndpointThrottled,
    EndpointUnavailable,
    ModelNotReady,
    ModelRequestRejected,
    ModelResponseInvalid,
)
from lesionflow.inference import invoke_endpoint
from lesionflow.preprocessing import model_input
from lesionflow_local.fault_plan import synthetic_lesion_jpeg

COMPLETE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
UPDATED_CLEANING_UP = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"  # the update succeeded; replaced resources are removed
ROLLED_BACK_UPDATE = {"UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
                      "IMPORT_ROLLBACK_COMPLETE"}
CREATES_ENDPOINT = {"huggingface", "artifact"}  # EndpointSource values with which the stack creates the endpoint
SERVING_WHILE_CHANGING = {"Updating", "SystemUpdating", "RollingBack"}
RETRY_READ_TIMEOUT = 60  # seconds: a serverless endpoint's cold start
SERVERLESS_QUOTA_CODE = "L-96300102"  # "Maximum total concurrency that can be allocated across all serverless endpoints"
LAMBDA_QUOTA_CODE = "L-B99A9384"  # Lambda "Concurrent executions"
BILLING_REGION = "us-east-1"  # AWS/Billing metrics exist only there
DEFAULT_INVOKE_TIMEOUT = 10


class Outcome(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIPPED = "skipped (local)"


class Line(BaseModel):
    """One check's answer: what was found and, for a problem, what to do."""

    check: str
    outcome: Outcome
    found: str
    advice: str = ""


class Announcement(BaseModel):
    """Said on a check's line before a call that can take a while."""

    check: str
    text: str


class StackFacts(BaseModel):
    name: str
    status: str
    reason: str | None = None
    parameters: dict[str, str] = {}
    outputs: dict[str, str] = {}


class EndpointFacts(BaseModel):
    name: str
    status: str
    failure_reason: str | None = None
    serverless_max_concurrency: int | None = None  # None: the endpoint runs on instances


# ------------------------------------------------------------------------------------------------ reading AWS

def describe_stack(cloudformation, name: str) -> StackFacts | None:
    """The stack's status, parameters and outputs; None if there is no such stack."""
    try:
        [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if _code(error) == "ValidationError":  # CloudFormation's answer to a stack name it does not know
            return None
        raise
    return StackFacts(
        name=stack["StackName"], status=stack["StackStatus"], reason=stack.get("StackStatusReason"),
        parameters={p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", "")) for p in
                    stack.get("Parameters", [])},
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])})


def describe_endpoint(sagemaker, name: str) -> EndpointFacts | None:
    """The endpoint's status and serverless MaxConcurrency (summed over its serverless variants, shadow variants
    included); None if it does not exist (SageMaker answers ValidationException, "Could not find endpoint ...").

    DescribeEndpoint gives each variant's CurrentServerlessConfig (DesiredServerlessConfig while it changes); only an
    endpoint that has no variants yet (Creating, or Failed before it had any) is read from its endpoint config."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as error:
        if _code(error) == "ValidationException":
            return None
        raise
    variants = endpoint.get("ProductionVariants", []) + endpoint.get("ShadowProductionVariants", [])
    if variants:
        serverless = [config["MaxConcurrency"] for variant in variants
                      if (config := variant.get("CurrentServerlessConfig") or variant.get("DesiredServerlessConfig"))]
    else:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        serverless = [variant["ServerlessConfig"]["MaxConcurrency"] for variant in
                      config["ProductionVariants"] + config.get("ShadowProductionVariants", [])
                      if variant.get("ServerlessConfig")]
    return EndpointFacts(name=name, status=endpoint["EndpointStatus"], failure_reason=endpoint.get("FailureReason"),
                         serverless_max_concurrency=sum(serverless) if serverless else None)


def serverless_quota(quotas) -> float:
    """The account's SageMaker serverless concurrency quota in this region: the applied value, else the default."""
    try:
        return quotas.get_service_quota(ServiceCode="sagemaker", QuotaCode=SERVERLESS_QUOTA_CODE)["Quota"]["Value"]
    except ClientError as error:
        if _code(error) != "NoSuchResourceException":
            raise
    return quotas.get_aws_default_service_quota(ServiceCode="sagemaker",
                                                QuotaCode=SERVERLESS_QUOTA_CODE)["Quota"]["Value"]


def other_serverless_endpoints(sagemaker, excluding: str) -> dict[str, int]:
    """The MaxConcurrency of every serverless endpoint in the region but ``excluding``: ListEndpoints (every page),
    then each one's DescribeEndpoint. One that is gone by the time it is described counts nothing."""
    pages = sagemaker.get_paginator("list_endpoints").paginate()
    names = [summary["EndpointName"] for page in pages for summary in page["Endpoints"]
             if summary["EndpointName"] != excluding]
    found = {name: describe_endpoint(sagemaker, name) for name in names}
    return {name: facts.serverless_max_concurrency for name, facts in found.items()
            if facts is not None and facts.serverless_max_concurrency}


def stack_serverless_ask(parameters: dict[str, str]) -> int | None:
    """The stack's ServerlessMaxConcurrency when it creates a serverless endpoint (EndpointSource huggingface or
    artifact, EndpointCompute serverless); None when it invokes an existing one or creates one on instances."""
    if (parameters.get("EndpointSource") not in CREATES_ENDPOINT
            or parameters.get("EndpointCompute", "serverless") != "serverless"
            or not parameters.get("ServerlessMaxConcurrency", "").isdigit()):
        return None
    return int(parameters["ServerlessMaxConcurrency"])


def subscriptions(sns, topic_arn: str) -> list[dict]:
    pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
    return [subscription for page in pages for subscription in page["Subscriptions"]]


def waiting_messages(sqs, queue_url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)


# ------------------------------------------------------------------------------------------------ the checks

def check_stack(facts: StackFacts | None, name: str, region: str) -> Line:
    if facts is None:
        return Line(check="stack", outcome=Outcome.FAIL, found=f"no stack named {name} in {region}",
                    advice="deploy it (sam deploy --guided), or name it: --stack NAME --region REGION")
    found = f"{facts.name} is {facts.status}"
    if facts.status in COMPLETE:
        return Line(check="stack", outcome=Outcome.OK, found=found)
    if facts.status == UPDATED_CLEANING_UP:
        return Line(check="stack", outcome=Outcome.OK, found=f"{found}: the update succeeded and runs its new "
                    "template; CloudFormation is removing the resources it replaced")
    events = f"see why in its events: aws cloudformation describe-stack-events --stack-name {facts.name}"
    if facts.status in ROLLED_BACK_UPDATE:
        cleanup = "; CloudFormation is removing what the update had created" if "CLEANUP" in facts.status else ""
        return Line(check="stack", outcome=Outcome.WARN, found=f"{found}: the last update was rolled back, so it "
                    f"runs its previous template{cleanup}", advice=f"{events}; fix and deploy again")
    if facts.status.endswith("_IN_PROGRESS"):
        advice = "wait until it is complete, then run `lesionflow check` again"
    elif facts.status == "ROLLBACK_COMPLETE":
        advice = f"its creation failed and it must be deleted before deploying again; {events}"
    else:
        advice = f"{events}, then deploy again"
    return Line(check="stack", outcome=Outcome.FAIL, found=found + (f" ({facts.reason})" if facts.reason else ""),
                advice=advice)


def check_endpoint(facts: EndpointFacts | None, name: str) -> Line:
    if facts is None:
        return Line(check="endpoint", outcome=Outcome.FAIL, found=f"endpoint {name} does not exist",
                    advice="deploy with EndpointSource=huggingface or artifact to create it, or with "
                           "--parameter-overrides EndpointName=<an endpoint that exists>")
    kind = (f"serverless, MaxConcurrency {facts.serverless_max_concurrency}"
            if facts.serverless_max_concurrency is not None else "on instances")
    found = f"{name} is {facts.status} ({kind})"
    if facts.status == "InService":
        return Line(check="endpoint", outcome=Outcome.OK, found=found)
    if facts.status in SERVING_WHILE_CHANGING:
        return Line(check="endpoint", outcome=Outcome.WARN, found=f"{found}: it serves on its current configuration "
                    "meanwhile", advice="run `lesionflow check` again once it is InService")
    if facts.status == "Creating":
        advice = f"wait for it: aws sagemaker wait endpoint-in-service --endpoint-name {name}"
    else:
        advice = f"see {facts.failure_reason!r} and the logs in /aws/sagemaker/Endpoints/{name}; fix it and deploy again" \
            if facts.failure_reason else f"see the logs in /aws/sagemaker/Endpoints/{name}"
    return Line(check="endpoint", outcome=Outcome.FAIL, found=found, advice=advice)


def check_answer(runtime: Callable[[int], object], endpoint_name: str, contract: ModelContract,
                 read_timeout: int) -> Iterator[Announcement | Line]:
    """One generated image through the contract to the endpoint, its answer read by the contract: the pipeline's own
    ``invoke_endpoint`` and ``read_scores``. ``runtime(read_timeout)`` makes a sagemaker-runtime client."""
    yield Announcement(check="answer", text=f"invoking endpoint {endpoint_name} once with a generated image")
    body = model_input(synthetic_lesion_jpeg(), "JPEG", contract)
    started = time.monotonic()
    try:
        try:
            answer = invoke_endpoint(runtime(read_timeout), endpoint_name, contract, body)
        except (ModelNotReady, EndpointUnavailable) as error:
            yield Announcement(check="answer", text=f"{error}; once more, waiting up to {RETRY_READ_TIMEOUT} s")
            answer = invoke_endpoint(runtime(RETRY_READ_TIMEOUT), endpoint_name, contract, body)
        scores = contract.read_scores(answer.body)
    except EndpointMissing as error:
        yield Line(check="answer", outcome=Outcome.FAIL, found=str(error),
                   advice="every upload ends FAILED until the stack's EndpointName names the endpoint that serves "
                          "the model: sam deploy --parameter-overrides EndpointName=NAME")
        return
    except (ModelNotReady, EndpointUnavailable, EndpointThrottled) as error:
        yield Line(check="answer", outcome=Outcome.FAIL, found=f"no answer: {error}",
                   advice=f"run `lesionflow check` again in a minute; if it persists, see the logs in "
                          f"/aws/sagemaker/Endpoints/{endpoint_name}")
        return
    except ModelResponseInvalid as error:
        yield Line(check="answer", outcome=Outcome.FAIL, found=f"it answered, but not as contract {contract.name} "
                   f"says: {error}", advice="deploy with the ModelContract the endpoint's model speaks")
        return
    except ModelRequestRejected as error:
        yield Line(check="answer", outcome=Outcome.FAIL, found=f"it refused what contract {contract.name} sends: "
                   f"{error}", advice="deploy with the ModelContract the endpoint's model speaks")
        return
    except EndpointAccessDenied as error:  # named by invoke_endpoint without SageMaker's message
        yield Line(check="answer", outcome=Outcome.FAIL, found=f"InvokeEndpoint was refused: {error}",
                   advice=f"your credentials need sagemaker:InvokeEndpoint on {endpoint_name} (InvokeModelFunction's "
                          "role has it for EndpointName in this region)")
        return
    except ClientError as error:  # not translated by invoke_endpoint; its message may echo the request: not shown
        code, status = _code(error), error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        advice = (f"look up {code} among the errors of SageMaker Runtime's InvokeEndpoint (the credentials, the "
                  f"region, the endpoint's logs in /aws/sagemaker/Endpoints/{endpoint_name}), then run "
                  "`lesionflow check` again")
        yield Line(check="answer", outcome=Outcome.FAIL, found=f"InvokeEndpoint was refused ({code}, status {status})",
                   advice=advice)
        return
    seconds = time.monotonic() - started
    label = max(scores, key=scores.__getitem__)
    if scores[label] <= 0:
        yield Line(check="answer", outcome=Outcome.FAIL, found="it answered, but scored no label above 0",
                   advice="deploy with the ModelContract the endpoint's model speaks")
        return
    yield Line(check="answer", outcome=Outcome.OK, found=f"{len(scores)} valid scores in {seconds:.2f} s "
               f"(top: {label} {scores[label]:.2f}, from a generated image: not a diagnosis)")


def check_dead_letters(sqs, queue_url: str | None) -> Line:
    if not queue_url:
        return Line(check="dead letters", outcome=Outcome.FAIL, found="the stack has no DeadLetterQueueUrl output",
                    advice="is it a LesionFlow stack? deploy template.yaml")
    try:
        waiting = waiting_messages(sqs, queue_url)
    except ClientError as error:
        missing = _code(error) in {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
        return Line(check="dead letters", outcome=Outcome.FAIL if missing else Outcome.WARN,
                    found=f"cannot read the dead-letter queue ({_code(error)})",
                    advice="deploy again" if missing else "your credentials need sqs:GetQueueAttributes on it")
    if waiting == 0:
        return Line(check="dead letters", outcome=Outcome.OK, found="the dead-letter queue is empty")
    return Line(check="dead letters", outcome=Outcome.FAIL, found=f"{waiting} message(s) wait in the dead-letter queue",
                advice="see why in the dispatcher's logs, then run `lesionflow redrive`")


_KMS_REFUSED = {"KmsAccessDeniedException", "KmsInvalidStateException"}


def check_execution_data(sfn, state_machine_arn: str | None) -> Line:
    if not state_machine_arn:
        return Line(check="execution data", outcome=Outcome.WARN, found="the stack has no StateMachineArn output")
    try:
        described = sfn.describe_state_machine(stateMachineArn=state_machine_arn)
    except ClientError as error:
        if _code(error) in _KMS_REFUSED:
            return Line(check="execution data", outcome=Outcome.WARN,
                        found=f"encrypted, and these credentials cannot decrypt it ({_code(error)})",
                        advice="attach the stack's ExecutionReaderPolicyArn output to read executions and redrive")
        return Line(check="execution data", outcome=Outcome.WARN,
                    found=f"cannot describe the state machine ({_code(error)})",
                    advice="your credentials need states:DescribeStateMachine (ExecutionReaderPolicyArn grants it)")
    encryption = described.get("encryptionConfiguration", {})
    if encryption.get("type") != "CUSTOMER_MANAGED_KMS_KEY":
        return Line(check="execution data", outcome=Outcome.WARN,
                    found=f"encrypted with {encryption.get('type', 'an AWS-owned key')}, not the stack's data key",
                    advice="sam deploy this version: its state machine encrypts with the data key")
    return Line(check="execution data", outcome=Outcome.OK,
                found="encrypted with the stack's data key, and readable with these credentials")


def lambda_need(dispatch_max: int, endpoint_concurrency: int) -> int:
    """Concurrent Lambda executions the pipeline can use at once: every dispatcher the event source may run, and a
    Validate, a Preprocess and an InvokeModel for each invocation the endpoint takes at once (more only wait in
    throttling retries). RecordFailure runs only in place of a stage that failed."""
    return dispatch_max + 3 * endpoint_concurrency


def check_lambda_concurrency(lambda_client, dispatch_max: int, endpoint: EndpointFacts | None) -> Line:
    concurrency = (endpoint.serverless_max_concurrency if endpoint and endpoint.serverless_max_concurrency
                   else dispatch_max)
    need = lambda_need(dispatch_max, concurrency)
    rule = (f"DispatchMaxConcurrency {dispatch_max} + Validate, Preprocess and InvokeModel for {concurrency} endpoint "
            "invocations")
    try:
        limits = lambda_client.get_account_settings()["AccountLimit"]
    except ClientError as error:
        return Line(check="lambda concurrency", outcome=Outcome.WARN,
                    found=f"cannot read the account's Lambda concurrency ({_code(error)}); the pipeline needs {need} "
                          f"({rule})", advice="compare it yourself: aws lambda get-account-settings")
    unreserved, limit = limits["UnreservedConcurrentExecutions"], limits["ConcurrentExecutions"]
    found = f"{unreserved} unreserved of {limit} concurrent executions, the pipeline needs {need} ({rule})"
    if unreserved >= need:
        return Line(check="lambda concurrency", outcome=Outcome.OK, found=found)
    return Line(check="lambda concurrency", outcome=Outcome.FAIL, found=found,
                advice=f"under load uploads would be throttled into FAILED records and the dead-letter queue: request "
                       f"Lambda 'Concurrent executions' ({LAMBDA_QUOTA_CODE}) of at least {need + limit - unreserved} "
                       f"in Service Quotas (new accounts can have 10), or deploy with a lower DispatchMaxConcurrency "
                       f"or ServerlessMaxConcurrency")


def check_serverless_quota(quotas, sagemaker, name: str, endpoint: EndpointFacts | None, stack_asks: int | None,
                           described: bool = True) -> Line:
    """``endpoint``: the stack's endpoint ``name`` as described (None: it does not exist; ``described`` False: it
    could not be described). ``stack_asks``: the stack's ServerlessMaxConcurrency if it creates a serverless one."""
    if not described:
        return Line(check="serverless quota", outcome=Outcome.WARN,
                    found="not checked: the endpoint could not be described (see the endpoint line)")
    if endpoint is None and stack_asks is None:
        return Line(check="serverless quota", outcome=Outcome.WARN,
                    found=f"not checked: endpoint {name} does not exist (see the endpoint line) and this stack does "
                          "not create a serverless one")
    running = (endpoint.serverless_max_concurrency or 0) if endpoint else 0
    wanted = max(running, stack_asks or 0)
    if wanted == 0:
        return Line(check="serverless quota", outcome=Outcome.OK,
                    found=f"{name} runs on instances: no serverless concurrency quota applies")
    quota_name = (f"Service Quotas, SageMaker, {SERVERLESS_QUOTA_CODE} 'Maximum total concurrency that can be "
                  "allocated across all serverless endpoints'")
    try:
        quota = serverless_quota(quotas)
    except ClientError as error:
        return Line(check="serverless quota", outcome=Outcome.WARN,
                    found=f"cannot read the SageMaker serverless concurrency quota ({_code(error)}); this endpoint's "
                          f"MaxConcurrency is {wanted}", advice=f"see {quota_name}")
    try:
        others = other_serverless_endpoints(sagemaker, excluding=name)
    except ClientError as error:
        return Line(check="serverless quota", outcome=Outcome.WARN,
                    found=f"cannot list the region's serverless endpoints ({_code(error)}); quota {quota:g}, this "
                          f"endpoint {wanted}", advice="your credentials need sagemaker:ListEndpoints and "
                          "sagemaker:DescribeEndpoint; or add up every serverless endpoint's MaxConcurrency yourself "
                          "(aws sagemaker list-endpoints)")
    taken = sum(others.values())
    total, room = taken + wanted, quota - taken
    if endpoint is None:
        whose = " (the stack's ServerlessMaxConcurrency: the endpoint does not exist yet)"
    elif wanted > running:
        whose = f" (the stack's ServerlessMaxConcurrency: it runs with {running})"
    else:
        whose = ""
    found = (f"quota {quota:g}; this endpoint {wanted}{whose}; all serverless endpoints {total} "
             f"({len(others)} other(s) in the region take {taken})")
    if total > quota:
        lower = f", deploy with ServerlessMaxConcurrency={room:g}" if room >= 1 else ""
        return Line(check="serverless quota", outcome=Outcome.FAIL, found=found,
                    advice=f"SageMaker refuses to create or update this endpoint with MaxConcurrency {wanted}: the "
                           f"quota leaves {max(room, 0):g} after the other endpoints. Request {SERVERLESS_QUOTA_CODE} "
                           f"of at least {total} in Service Quotas (SageMaker){lower}, or lower or delete other "
                           "serverless endpoints")
    if total == quota:
        return Line(check="serverless quota", outcome=Outcome.WARN, found=f"{found}: no headroom",
                    advice="raising ServerlessMaxConcurrency or adding a serverless endpoint in this region would be "
                           f"refused; request more of {quota_name} first")
    return Line(check="serverless quota", outcome=Outcome.OK, found=f"{found}: {quota - total:g} to spare")


def check_alarm_subscriptions(sns, topic_arn: str | None) -> Line:
    if not topic_arn:
        return Line(check="alarms", outcome=Outcome.WARN, found="the stack has no AlarmTopicArn output")
    try:
        found = subscriptions(sns, topic_arn)
    except ClientError as error:
        return Line(check="alarms", outcome=Outcome.WARN,
                    found=f"cannot list the alarm topic's subscriptions ({_code(error)})",
                    advice="your credentials need sns:ListSubscriptionsByTopic on it")
    confirmed = [s for s in found if s["SubscriptionArn"].startswith("arn:")]  # not PendingConfirmation or Deleted
    pending = sum(s["SubscriptionArn"] == "PendingConfirmation" for s in found)
    if confirmed:
        protocols = ", ".join(sorted({s["Protocol"] for s in confirmed}))
        return Line(check="alarms", outcome=Outcome.OK,
                    found=f"{len(confirmed)} confirmed subscription(s) to the alarm topic ({protocols})")
    return Line(check="alarms", outcome=Outcome.WARN,
                found=f"no confirmed subscription to the alarm topic ({pending} pending confirmation): nobody hears "
                      f"the alarms", advice=("confirm the e-mail AWS sent, or subscribe: " if pending else "subscribe: ")
                + f"aws sns subscribe --topic-arn {topic_arn} --protocol email --notification-endpoint YOU@EXAMPLE.COM")


def check_billing_data(cloudwatch_us_east_1, stack_region: str) -> Line:
    where = "" if stack_region == BILLING_REGION else (
        f"; the stack's BillingAlarm exists only in {BILLING_REGION} deployments (this one is in {stack_region})")
    try:
        metrics = cloudwatch_us_east_1.list_metrics(Namespace="AWS/Billing", MetricName="EstimatedCharges")["Metrics"]
    except ClientError as error:
        return Line(check="billing", outcome=Outcome.WARN, found=f"cannot list billing metrics ({_code(error)})",
                    advice=f"your credentials need cloudwatch:ListMetrics in {BILLING_REGION}")
    if metrics:
        return Line(check="billing", outcome=Outcome.OK,
                    found=f"AWS/Billing EstimatedCharges data exists in {BILLING_REGION}{where}")
    return Line(check="billing", outcome=Outcome.WARN,
                found=f"no AWS/Billing EstimatedCharges data in {BILLING_REGION}: the billing alarm has nothing to "
                      f"watch{where}", advice="enable 'Receive Billing Alerts' in the Billing and Cost Management "
                      "console's Billing preferences (as the account's root user or an IAM user with billing access), "
                      "then run `lesionflow check` again later")


def skipped(check: str, why: str) -> Line:
    return Line(check=check, outcome=Outcome.SKIPPED, found=why)


# ------------------------------------------------------------------------------------------------ running them

@dataclass
class Target:
    """The stack to check: a deployed one by name, or the local stack at ``endpoint_url``."""

    session: boto3.Session
    stack_name: str
    region: str
    endpoint_url: str | None = None

    @property
    def local(self) -> bool:
        return self.endpoint_url is not None

    def client(self, service: str, region: str | None = None, config: Config | None = None):
        return self.session.client(service, region_name=region or self.region, endpoint_url=self.endpoint_url,
                                   config=config)

    def runtime(self, read_timeout: int):
        """A sagemaker-runtime client without SDK retries: the check retries once itself, visibly."""
        return self.client("sagemaker-runtime", config=Config(
            read_timeout=read_timeout, connect_timeout=5, retries={"mode": "standard", "total_max_attempts": 1}))


def deployed_target(name: str | None, region: str | None, profile: str | None) -> Target:
    """The deployed stack ``name`` (default: samconfig.toml's) in ``region`` with ``profile``'s credentials."""
    from lesionflow_cli.stack import deployed_session, stack_name

    session = deployed_session(region, profile)
    return Target(session=session, stack_name=stack_name(name), region=session.region_name)


def local_target(stack) -> Target:
    """The local stack, which publishes its parameters and outputs as the CloudFormation stack ``lesionflow-local``."""
    from lesionflow_local.stack import STACK_NAME

    return Target(session=stack.session, stack_name=STACK_NAME, region=stack.region, endpoint_url=stack.endpoint_url)


def run(target: Target) -> Iterator[Announcement | Line]:
    facts = describe_stack(target.client("cloudformation"), target.stack_name)
    if target.local:
        yield (skipped("stack", "the local stack has no CloudFormation status") if facts else
               Line(check="stack", outcome=Outcome.FAIL, found=f"the local stack at {target.endpoint_url} publishes "
                    "no parameters", advice="restart it: lesionflow local up"))
    else:
        yield check_stack(facts, target.stack_name, target.region)
    if facts is None:
        return
    parameters, outputs = facts.parameters, facts.outputs
    endpoint_name = parameters.get("EndpointName", "")
    endpoint, described = None, True
    if target.local:
        yield skipped("endpoint", "the local endpoint has no control plane: the next line invokes it")
    else:
        try:
            endpoint = describe_endpoint(target.client("sagemaker"), endpoint_name)
        except ClientError as error:
            described = False
            yield Line(check="endpoint", outcome=Outcome.WARN, found=f"cannot describe endpoint {endpoint_name} "
                       f"({_code(error)})", advice="your credentials need sagemaker:DescribeEndpoint (and "
                       "sagemaker:DescribeEndpointConfig while it is being created); the next line invokes it all "
                       "the same")
        else:
            yield check_endpoint(endpoint, endpoint_name)
    try:
        contract = load_contract(parameters.get("ModelContract", ""))
    except ValueError:
        yield Line(check="answer", outcome=Outcome.FAIL, found=f"the stack's ModelContract "
                   f"{parameters.get('ModelContract')!r} is not one this lesionflow knows", advice="update lesionflow")
    else:
        timeout = int(parameters.get("InvokeTimeoutSeconds", DEFAULT_INVOKE_TIMEOUT))
        yield from check_answer(target.runtime, endpoint_name, contract, timeout)
    yield check_dead_letters(target.client("sqs"), outputs.get("DeadLetterQueueUrl"))
    yield check_execution_data(target.client("stepfunctions"), outputs.get("StateMachineArn"))
    if target.local:
        for check in ("lambda concurrency", "serverless quota", "alarms", "billing"):
            yield skipped(check, "nothing to check on this machine")
        return
    dispatch_max = int(parameters.get("DispatchMaxConcurrency", 0))
    yield check_lambda_concurrency(target.client("lambda"), dispatch_max, endpoint)
    yield check_serverless_quota(target.client("service-quotas"), target.client("sagemaker"), endpoint_name, endpoint,
                                 stack_serverless_ask(parameters), described)
    yield check_alarm_subscriptions(target.client("sns"), outputs.get("AlarmTopicArn"))
    yield check_billing_data(target.client("cloudwatch", region=BILLING_REGION), target.region)


def exit_status(lines: list[Line]) -> int:
    """1 when anything would stop uploads from being processed (a FAIL), else 0 (warnings included)."""
    return 1 if any(line.outcome is Outcome.FAIL for line in lines) else 0


def _code(error: ClientError) -> str:
    return error.response["Error"]["Code"]

"""Every policy in template.yaml that has a condition, evaluated as AWS documents it for a table of requests.

moto stores these policies and enforces none of them, so no moto test can show that a bucket policy refuses every
upload or that a key policy lets another account's bucket use the data key. Here each policy is resolved as a deploy
would resolve it (account 111122223333, us-east-1, the names CloudFormation would give) and evaluated by
``tests.policy`` (the IAM User Guide's evaluation logic and condition operators) for requests whose outcome AWS
documents. The last test checks that every conditioned statement is exercised both ways by some row, so a condition
added later cannot go untested.
"""

import pytest

from lesionflow_local.template import Placeholders, Resolver, load
from tests.policy import Decision, Request, applies, condition_holds, evaluate

TEMPLATE = load()
ACCOUNT, OTHER_ACCOUNT, REGION = "111122223333", "444455556666", "us-east-1"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/lesionflow/0c3b0f60-5b6c-11ef-a2a0-0e1f3f8a1b2c"
BUCKET = f"lesionflow-{ACCOUNT}-0e1f3f8a1b2c"  # the name ImageBucket's expression gives for STACK_ID
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/9999abcd-12ab-34cd-56ef-1234567890ab"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:lesionflow-IngestQueue-AbCdEf"
DLQ_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:lesionflow-DeadLetterQueue-GhIjKl"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:lesionflow-AlarmTopic-MnOpQr"
MACHINE = "PipelineStateMachine-StUvWx"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE}"
ROLE = {"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/lesionflow-uploader/session"}
OTHER_ROLE = {"AWS": f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/intruder/session"}
TLS = {"aws:SecureTransport": "true"}
PARAMETERS = {  # a stack that creates its endpoint from an artifact with its own KMS key: every role statement exists
    "EndpointSource": "artifact", "EndpointCompute": "instance", "ContainerImageUri":
    f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/lesionflow-model:1.0.0", "ModelDataUrl": "s3://models-bucket/vit.tar.gz",
    "ModelDataKmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/5555abcd-12ab-34cd-56ef-1234567890ab",
    "ModelContract": "tensor-npy"}


def deployed(value):
    """A template value resolved as CloudFormation would resolve it for this stack."""
    names = Placeholders(ImageBucket=BUCKET, DataKey=KEY_ARN.rsplit("/", 1)[1], IngestQueue=QUEUE_ARN,
                         DeadLetterQueue=DLQ_ARN, AlarmTopic=TOPIC_ARN, PipelineStateMachine=MACHINE_ARN)
    attributes = Placeholders({("ImageBucket", "Arn"): BUCKET_ARN, ("DataKey", "Arn"): KEY_ARN,
                               ("IngestQueue", "Arn"): QUEUE_ARN, ("DeadLetterQueue", "Arn"): DLQ_ARN,
                               ("PipelineStateMachine", "Name"): MACHINE})
    pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::StackId": STACK_ID,
              "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "lesionflow"}
    return Resolver(TEMPLATE, names=names, attributes=attributes, pseudo=pseudo, parameters=PARAMETERS)(value)


def policy_of(resource: str) -> dict:
    properties = TEMPLATE["Resources"][resource]["Properties"]
    return deployed(properties.get("PolicyDocument") or properties["KeyPolicy"])


def role_policy(resource: str) -> dict:
    """The inline statements of a function's SAM Policies, or of a role's Policies, as one identity policy."""
    properties = TEMPLATE["Resources"][resource]["Properties"]
    statements = []
    for policy in properties["Policies"]:
        if isinstance(policy, dict) and "Statement" in policy:
            statements += policy["Statement"]
        elif isinstance(policy, dict) and "PolicyDocument" in policy:
            statements += policy["PolicyDocument"]["Statement"]
    return deployed({"Statement": statements})


def put(object_key: str, algorithm: str | None = None, key: str | None = None, customer_algorithm: str | None = None
        ) -> Request:
    """A PutObject (also what UploadPart and CreateMultipartUpload are authorised as) by a role of this account,
    with the condition keys S3 sets from its x-amz-server-side-encryption headers (none when they are absent)."""
    headers = {"s3:x-amz-server-side-encryption": algorithm, "s3:x-amz-server-side-encryption-aws-kms-key-id": key,
               "s3:x-amz-server-side-encryption-customer-algorithm": customer_algorithm}
    return Request("s3:PutObject", f"{BUCKET_ARN}/{object_key}", ROLE,
                   TLS | {name: value for name, value in headers.items() if value is not None})


# --------------------------------------------------------------------------------------------- the image bucket
# The bucket policy only denies: what it does not deny is left to the caller's IAM policy (implicit deny here).
NOT_REFUSED, REFUSED = Decision.IMPLICIT_DENY, Decision.DENY
BUCKET_REQUESTS = {
    "a PutObject without encryption headers gets the bucket's default (the data key)":
        (put("uploads/a.jpg"), NOT_REFUSED),
    "aws s3 cp with --sse aws:kms --sse-kms-key-id <the data key's ARN>":
        (put("uploads/a.jpg", algorithm="aws:kms", key=KEY_ARN), NOT_REFUSED),
    "the state machine's prediction JSON, written with no SSE parameters":
        (put("predictions/abc.json"), NOT_REFUSED),
    "an UploadPart of a multipart upload (no SSE headers on parts)":
        (put("uploads/big.png"), NOT_REFUSED),
    "aws:kms with another KMS key":
        (put("uploads/a.jpg", algorithm="aws:kms", key=OTHER_KEY_ARN), REFUSED),
    "another KMS key named without the algorithm header":
        (put("uploads/a.jpg", key=OTHER_KEY_ARN), REFUSED),
    "aws:kms without a key id (S3 would use the AWS managed key aws/s3)":
        (put("uploads/a.jpg", algorithm="aws:kms"), REFUSED),
    "SSE-S3 (AES256)":
        (put("uploads/a.jpg", algorithm="AES256"), REFUSED),
    "SSE-C (a key the client sends and LesionFlow never holds)":
        (put("uploads/a.jpg", customer_algorithm="AES256"), REFUSED),
    "a key id or alias instead of the key's ARN (the condition compares the header as sent)":
        (put("uploads/a.jpg", algorithm="aws:kms", key="alias/lesionflow-data"), REFUSED),
    "dual-layer SSE-KMS, even with the data key":
        (put("uploads/a.jpg", algorithm="aws:kms:dsse", key=KEY_ARN), REFUSED),
    "any request over plain HTTP":
        (Request("s3:GetObject", f"{BUCKET_ARN}/uploads/a.jpg", ROLE, {"aws:SecureTransport": "false"}), REFUSED),
    "a PutObject over plain HTTP":
        (Request("s3:PutObject", f"{BUCKET_ARN}/uploads/a.jpg", ROLE, {"aws:SecureTransport": "false"}), REFUSED),
    "a GetObject over TLS":
        (Request("s3:GetObject", f"{BUCKET_ARN}/uploads/a.jpg", ROLE, TLS), NOT_REFUSED),
}


@pytest.mark.parametrize(("request_", "outcome"), BUCKET_REQUESTS.values(), ids=BUCKET_REQUESTS.keys())
def test_the_bucket_policy_admits_default_and_data_key_encryption_and_refuses_every_other(request_, outcome):
    # Given the bucket policy as deployed; When S3 evaluates the request; Then
    assert evaluate(policy_of("ImageBucketPolicy"), request_) == outcome


# --------------------------------------------------------------------------------------------- the ingest queues
def from_s3(resource: str, source_arn: str | None = BUCKET_ARN, source_account: str | None = ACCOUNT,
            service: str = "s3.amazonaws.com", action: str = "sqs:SendMessage") -> Request:
    context = TLS | {name: value for name, value in (("aws:SourceArn", source_arn),
                                                     ("aws:SourceAccount", source_account)) if value}
    return Request(action, resource, {"Service": service}, context)


QUEUE_REQUESTS = {
    "this bucket's notification": (from_s3(QUEUE_ARN), Decision.ALLOW),
    "another bucket of this account": (from_s3(QUEUE_ARN, f"arn:aws:s3:::other-{ACCOUNT}"), Decision.IMPLICIT_DENY),
    "a bucket of this name owned by another account":
        (from_s3(QUEUE_ARN, source_account=OTHER_ACCOUNT), Decision.IMPLICIT_DENY),
    "S3 without a source bucket": (from_s3(QUEUE_ARN, source_arn=None), Decision.IMPLICIT_DENY),
    "this bucket straight into the dead-letter queue": (from_s3(DLQ_ARN), Decision.IMPLICIT_DENY),
    "another service naming this bucket": (from_s3(QUEUE_ARN, service="sns.amazonaws.com"), Decision.IMPLICIT_DENY),
    "receiving over plain HTTP":
        (Request("sqs:ReceiveMessage", DLQ_ARN, ROLE, {"aws:SecureTransport": "false"}), Decision.DENY),
}


@pytest.mark.parametrize(("request_", "outcome"), QUEUE_REQUESTS.values(), ids=QUEUE_REQUESTS.keys())
def test_only_this_buckets_notifications_reach_the_ingest_queue(request_, outcome):
    assert evaluate(policy_of("IngestQueuePolicy"), request_) == outcome


# --------------------------------------------------------------------------------------------- the data key
ALARM_ARN = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:lesionflow-DeadLetterQueueAlarm-X1"
BUDGET_ARN = f"arn:aws:budgets::{ACCOUNT}:budget/lesionflow-us-east-1-monthly"  # the Budgets guide scopes by account
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/vendedlogs/states/lesionflow-pipeline"


def service(name: str, source_arn: str, source_account: str = ACCOUNT, action: str = "kms:GenerateDataKey",
            **context) -> Request:
    return Request(action, KEY_ARN, {"Service": name},
                   {"aws:SourceArn": source_arn, "aws:SourceAccount": source_account} | context)


def log_delivery(action: str, context_arn: str, context_key: str = "kms:EncryptionContext:SourceArn") -> Request:
    """CloudWatch Logs' delivery service using the key, for a data key made with this encryption context."""
    return Request(action, KEY_ARN, {"Service": "delivery.logs.amazonaws.com"}, {context_key: context_arn})


def grant(for_aws_resource: str) -> Request:
    return Request("kms:CreateGrant", KEY_ARN, ROLE, {"kms:GrantIsForAWSResource": for_aws_resource,
                                                      "aws:PrincipalIsAWSService": "false"})


KEY_REQUESTS = {
    "S3 encrypting this bucket's notification for the queue": (service("s3.amazonaws.com", BUCKET_ARN), Decision.ALLOW),
    "S3 for another bucket of this account":
        (service("s3.amazonaws.com", f"arn:aws:s3:::other-{ACCOUNT}"), Decision.IMPLICIT_DENY),
    "S3 for a bucket of another account":
        (service("s3.amazonaws.com", f"arn:aws:s3:::other-{OTHER_ACCOUNT}", OTHER_ACCOUNT), Decision.IMPLICIT_DENY),
    "CloudWatch for this account's alarm": (service("cloudwatch.amazonaws.com", ALARM_ARN), Decision.ALLOW),
    "CloudWatch for an alarm in another region":
        (service("cloudwatch.amazonaws.com", ALARM_ARN.replace(REGION, "eu-west-1")), Decision.IMPLICIT_DENY),
    "CloudWatch for another account's alarm":
        (service("cloudwatch.amazonaws.com", ALARM_ARN.replace(ACCOUNT, OTHER_ACCOUNT), OTHER_ACCOUNT),
         Decision.IMPLICIT_DENY),
    "CloudWatch naming a budget": (service("cloudwatch.amazonaws.com", BUDGET_ARN), Decision.IMPLICIT_DENY),
    "Budgets for this account's budget": (service("budgets.amazonaws.com", BUDGET_ARN), Decision.ALLOW),
    "Budgets for another account's budget":
        (service("budgets.amazonaws.com", BUDGET_ARN.replace(ACCOUNT, OTHER_ACCOUNT), OTHER_ACCOUNT),
         Decision.IMPLICIT_DENY),
    "CloudWatch Logs for this account's log group":
        (Request("kms:Encrypt", KEY_ARN, {"Service": f"logs.{REGION}.amazonaws.com"},
                 {"kms:EncryptionContext:aws:logs:arn": LOG_GROUP_ARN}), Decision.ALLOW),
    "CloudWatch Logs for another account's log group":
        (Request("kms:Encrypt", KEY_ARN, {"Service": f"logs.{REGION}.amazonaws.com"},
                 {"kms:EncryptionContext:aws:logs:arn": LOG_GROUP_ARN.replace(ACCOUNT, OTHER_ACCOUNT)}),
         Decision.IMPLICIT_DENY),
    # Step Functions' guide: its log delivery decrypts with the key of an encrypted state machine that logs
    "CloudWatch Logs' delivery for this account's state machine logs":
        (log_delivery("kms:Decrypt", f"arn:aws:logs:{REGION}:{ACCOUNT}:delivery-source:sm"), Decision.ALLOW),
    "CloudWatch Logs' delivery for another account's logs":
        (log_delivery("kms:Decrypt", f"arn:aws:logs:{REGION}:{OTHER_ACCOUNT}:delivery-source:sm"),
         Decision.IMPLICIT_DENY),
    "CloudWatch Logs' delivery for a data key not made for logs":
        (log_delivery("kms:Decrypt", MACHINE_ARN, context_key="kms:EncryptionContext:aws:states:stateMachineArn"),
         Decision.IMPLICIT_DENY),
    "CloudWatch Logs' delivery encrypting":
        (log_delivery("kms:GenerateDataKey", f"arn:aws:logs:{REGION}:{ACCOUNT}:x"), Decision.IMPLICIT_DENY),
    "a role of this account (its IAM policy then decides)": (Request("kms:Decrypt", KEY_ARN, ROLE), Decision.ALLOW),
    "a role of another account": (Request("kms:Decrypt", KEY_ARN, OTHER_ROLE), Decision.IMPLICIT_DENY),
    "a grant DynamoDB creates for the table": (grant("true"), Decision.ALLOW),
    "a grant a role creates for itself": (grant("false"), Decision.DENY),
}


@pytest.mark.parametrize(("request_", "outcome"), KEY_REQUESTS.values(), ids=KEY_REQUESTS.keys())
def test_the_data_key_serves_services_only_for_this_stacks_own_resources(request_, outcome):
    assert evaluate(policy_of("DataKey"), request_) == outcome


# --------------------------------------------------------------------------------------------- the alarm topic
def publish(name: str, source_arn: str, source_account: str = ACCOUNT) -> Request:
    return Request("sns:Publish", TOPIC_ARN, {"Service": name},
                   {"aws:SourceArn": source_arn, "aws:SourceAccount": source_account})


TOPIC_REQUESTS = {
    "this account's alarm": (publish("cloudwatch.amazonaws.com", ALARM_ARN), Decision.ALLOW),
    "this account's budget": (publish("budgets.amazonaws.com", BUDGET_ARN), Decision.ALLOW),
    "another account's alarm": (publish("cloudwatch.amazonaws.com", ALARM_ARN.replace(ACCOUNT, OTHER_ACCOUNT),
                                        OTHER_ACCOUNT), Decision.IMPLICIT_DENY),
    "another account's budget": (publish("budgets.amazonaws.com", BUDGET_ARN.replace(ACCOUNT, OTHER_ACCOUNT),
                                         OTHER_ACCOUNT), Decision.IMPLICIT_DENY),
    "Budgets naming an alarm": (publish("budgets.amazonaws.com", ALARM_ARN), Decision.IMPLICIT_DENY),
}


@pytest.mark.parametrize(("request_", "outcome"), TOPIC_REQUESTS.values(), ids=TOPIC_REQUESTS.keys())
def test_only_this_accounts_alarms_and_budgets_publish_to_the_alarm_topic(request_, outcome):
    assert evaluate(policy_of("AlarmTopicPolicy"), request_) == outcome


# --------------------------------------------------------------------------------------------- role policies
def by_role(action: str, resource: str, **context) -> Request:
    return Request(action, resource, ROLE, context)


ROLE_REQUESTS = {
    # S3 answers 404 for a missing object only to a caller with s3:ListBucket, in a check that carries no s3:prefix
    "Validate asks S3 whether a missing upload exists":
        ("ValidateFunction", by_role("s3:ListBucket", BUCKET_ARN), Decision.ALLOW),
    "Validate reads an upload": ("ValidateFunction", by_role("s3:GetObject", f"{BUCKET_ARN}/uploads/a.jpg"),
                                 Decision.ALLOW),
    "Validate reads a prediction": ("ValidateFunction", by_role("s3:GetObject", f"{BUCKET_ARN}/predictions/a.json"),
                                    Decision.IMPLICIT_DENY),
    # HeadObject is authorised as s3:GetObject, with a version id as s3:GetObjectVersion (GetObject's page)
    "the dispatcher asks S3 what a notified upload is":
        ("DispatchFunction", by_role("s3:GetObject", f"{BUCKET_ARN}/uploads/a.jpg"), Decision.ALLOW),
    "the dispatcher asks S3 what a notified version is":
        ("DispatchFunction", by_role("s3:GetObjectVersion", f"{BUCKET_ARN}/uploads/a.jpg"), Decision.ALLOW),
    "the dispatcher learns that a notified version is not there (404, not 403)":
        ("DispatchFunction", by_role("s3:ListBucket", BUCKET_ARN), Decision.ALLOW),
    "the dispatcher reads a prediction":
        ("DispatchFunction", by_role("s3:GetObject", f"{BUCKET_ARN}/predictions/a.json"), Decision.IMPLICIT_DENY),
    "the dispatcher reads a model input":
        ("DispatchFunction", by_role("s3:GetObjectVersion", f"{BUCKET_ARN}/model-inputs/a"), Decision.IMPLICIT_DENY),
    "the dispatcher writes an upload":
        ("DispatchFunction", by_role("s3:PutObject", f"{BUCKET_ARN}/uploads/a.jpg"), Decision.IMPLICIT_DENY),
    "the dispatcher starts an execution of the encrypted state machine":
        ("DispatchFunction", by_role("kms:GenerateDataKey", KEY_ARN,
                                     **{"kms:EncryptionContext:aws:states:stateMachineArn": MACHINE_ARN}), Decision.ALLOW),
    "the dispatcher makes a data key for anything else":
        ("DispatchFunction", by_role("kms:GenerateDataKey", KEY_ARN,
                                     **{"kms:EncryptionContext:aws:s3:arn": f"{BUCKET_ARN}/uploads/a.jpg"}),
         Decision.IMPLICIT_DENY),
    "Preprocess asks S3 whether a missing upload exists":
        ("PreprocessFunction", by_role("s3:ListBucket", BUCKET_ARN), Decision.ALLOW),
    "Preprocess reads a version of an upload":
        ("PreprocessFunction", by_role("s3:GetObjectVersion", f"{BUCKET_ARN}/uploads/a.jpg"), Decision.ALLOW),
    "Preprocess stores a model input":
        ("PreprocessFunction", by_role("s3:PutObject", f"{BUCKET_ARN}/model-inputs/{'0' * 64}"), Decision.ALLOW),
    "Preprocess writes under the upload prefix":
        ("PreprocessFunction", by_role("s3:PutObject", f"{BUCKET_ARN}/uploads/a.jpg"), Decision.IMPLICIT_DENY),
    "Preprocess deletes a model input":
        ("PreprocessFunction", by_role("s3:DeleteObjectVersion", f"{BUCKET_ARN}/model-inputs/a"), Decision.IMPLICIT_DENY),
    "InvokeModel reads a version of a model input":
        ("InvokeModelFunction", by_role("s3:GetObjectVersion", f"{BUCKET_ARN}/model-inputs/a"), Decision.ALLOW),
    "InvokeModel deletes a used model input's version":
        ("InvokeModelFunction", by_role("s3:DeleteObjectVersion", f"{BUCKET_ARN}/model-inputs/a"), Decision.ALLOW),
    "InvokeModel reads an upload": ("InvokeModelFunction", by_role("s3:GetObject", f"{BUCKET_ARN}/uploads/a.jpg"),
                                    Decision.IMPLICIT_DENY),
    "InvokeModel lists the upload keys":
        ("InvokeModelFunction", by_role("s3:ListBucket", BUCKET_ARN, **{"s3:prefix": "uploads/"}), Decision.IMPLICIT_DENY),
    "InvokeModel deletes an upload":
        ("InvokeModelFunction", by_role("s3:DeleteObjectVersion", f"{BUCKET_ARN}/uploads/a.jpg"), Decision.IMPLICIT_DENY),
    "InvokeModel calls the configured endpoint":
        ("InvokeModelFunction", by_role("sagemaker:InvokeEndpoint",
                                        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/lesionflow-vit"), Decision.ALLOW),
    "InvokeModel calls another endpoint":
        ("InvokeModelFunction", by_role("sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/x"),
         Decision.IMPLICIT_DENY),
    "the state machine writes a prediction":
        ("PipelineStateMachineRole", by_role("s3:PutObject", f"{BUCKET_ARN}/predictions/a.json"), Decision.ALLOW),
    "the state machine writes under the upload prefix":
        ("PipelineStateMachineRole", by_role("s3:PutObject", f"{BUCKET_ARN}/uploads/a.jpg"), Decision.IMPLICIT_DENY),
    # Step Functions' guide: the execution role of an encrypted state machine needs both, for the state's data
    "the state machine encrypts its execution data":
        ("PipelineStateMachineRole", by_role("kms:GenerateDataKey", KEY_ARN,
                                             **{"kms:EncryptionContext:aws:states:stateMachineArn": MACHINE_ARN}),
         Decision.ALLOW),
    "the state machine decrypts its execution data":
        ("PipelineStateMachineRole", by_role("kms:Decrypt", KEY_ARN,
                                             **{"kms:EncryptionContext:aws:states:stateMachineArn": MACHINE_ARN}),
         Decision.ALLOW),
    "the state machine invokes a stage's function":
        ("PipelineStateMachineRole", by_role("lambda:InvokeFunction", "<InvokeModelFunction.Arn>"), Decision.ALLOW),
    "the state machine invokes another function":
        ("PipelineStateMachineRole", by_role("lambda:InvokeFunction",
                                             f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other"), Decision.IMPLICIT_DENY),
    "the endpoint decrypts its model artifact through S3":
        ("SageMakerExecutionRole", by_role("kms:Decrypt", PARAMETERS["ModelDataKmsKeyArn"],
                                           **{"kms:ViaService": f"s3.{REGION}.amazonaws.com"}), Decision.ALLOW),
    "the endpoint decrypts with the artifact's key directly":
        ("SageMakerExecutionRole", by_role("kms:Decrypt", PARAMETERS["ModelDataKmsKeyArn"]), Decision.IMPLICIT_DENY),
    "the endpoint puts its instance metrics":
        ("SageMakerExecutionRole", by_role("cloudwatch:PutMetricData", "*",
                                           **{"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}), Decision.ALLOW),
    "the endpoint puts metrics into LesionFlow's namespace":
        ("SageMakerExecutionRole", by_role("cloudwatch:PutMetricData", "*", **{"cloudwatch:namespace": "LesionFlow"}),
         Decision.IMPLICIT_DENY),
}


@pytest.mark.parametrize(("resource", "request_", "outcome"), ROLE_REQUESTS.values(), ids=ROLE_REQUESTS.keys())
def test_each_role_may_do_exactly_what_its_step_needs(resource, request_, outcome):
    assert evaluate(role_policy(resource), request_) == outcome


# --------------------------------------------------------------------------------------------- reading executions
# Step Functions' encryption-at-rest guide: DescribeExecution, GetExecutionHistory and DescribeStateMachine of an
# encrypted state machine need kms:Decrypt, with the encryption context aws:states:stateMachineArn; StartExecution
# and RedriveExecution need no KMS permission.
EXECUTION_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{MACHINE}:{'a' * 64}"
READER_REQUESTS = {
    "watch reads an execution's history": (by_role("states:GetExecutionHistory", EXECUTION_ARN), Decision.ALLOW),
    "redrive reads a FAILED run's input": (by_role("states:DescribeExecution", EXECUTION_ARN), Decision.ALLOW),
    # starting one is an operator's right: its holder could start the pipeline with any input
    "starting an execution": (by_role("states:StartExecution", MACHINE_ARN), Decision.IMPLICIT_DENY),
    "check describes the state machine": (by_role("states:DescribeStateMachine", MACHINE_ARN), Decision.ALLOW),
    "Step Functions decrypts the execution data for the reader":
        (by_role("kms:Decrypt", KEY_ARN, **{"kms:EncryptionContext:aws:states:stateMachineArn": MACHINE_ARN}),
         Decision.ALLOW),
    "decrypting for another state machine":
        (by_role("kms:Decrypt", KEY_ARN, **{"kms:EncryptionContext:aws:states:stateMachineArn": MACHINE_ARN + "x"}),
         Decision.IMPLICIT_DENY),
    "decrypting an upload through S3 (no Step Functions context)":
        (by_role("kms:Decrypt", KEY_ARN, **{"kms:EncryptionContext:aws:s3:arn": f"{BUCKET_ARN}/uploads/a.jpg"}),
         Decision.IMPLICIT_DENY),
    "reading another state machine's execution":
        (by_role("states:DescribeExecution", EXECUTION_ARN.replace(MACHINE, "other")), Decision.IMPLICIT_DENY),
}


@pytest.mark.parametrize(("request_", "outcome"), READER_REQUESTS.values(), ids=READER_REQUESTS.keys())
def test_the_execution_reader_policy_reads_this_state_machines_executions_and_nothing_else(request_, outcome):
    assert evaluate(policy_of("ExecutionReaderPolicy"), request_) == outcome


# --------------------------------------------------------------------------------------------- coverage
TABLES = [("ImageBucketPolicy", policy_of, list(BUCKET_REQUESTS.values())),
          ("IngestQueuePolicy", policy_of, list(QUEUE_REQUESTS.values())),
          ("DataKey", policy_of, list(KEY_REQUESTS.values())),
          ("AlarmTopicPolicy", policy_of, list(TOPIC_REQUESTS.values())),
          ("ExecutionReaderPolicy", policy_of, list(READER_REQUESTS.values()))]
TABLES += [(resource, role_policy, [(request_, outcome) for name, request_, outcome in ROLE_REQUESTS.values()
                                    if name == resource])
           for resource in sorted({row[0] for row in ROLE_REQUESTS.values()})]


def conditioned_statements() -> set[tuple[str, int]]:
    """(resource, statement index) of every statement with a Condition in every policy of the template."""
    found = set()
    for name, resource in TEMPLATE["Resources"].items():
        properties = resource.get("Properties", {})
        if "PolicyDocument" in properties or "KeyPolicy" in properties:
            policy = policy_of(name)
        elif isinstance(properties.get("Policies"), list):
            policy = role_policy(name)
        else:
            continue
        found |= {(name, index) for index, statement in enumerate(policy["Statement"]) if "Condition" in statement}
    return found


def test_every_conditioned_statement_is_exercised_with_its_condition_both_true_and_false():
    # Given every request of every table, and the statements whose principal, action and resource it matches
    seen: dict[tuple[str, int], set[bool]] = {}
    for resource, policy_for, rows in TABLES:
        for index, statement in enumerate(policy_for(resource)["Statement"]):
            if "Condition" not in statement:
                continue
            scope = {key: value for key, value in statement.items() if key != "Condition"}
            for request_, _ in rows:
                if applies(scope, request_):
                    seen.setdefault((resource, index), set()).add(condition_holds(statement["Condition"], request_))
    # Then each conditioned statement in the template met a request for which it held and one for which it did not
    assert {place for place, outcomes in seen.items() if outcomes == {True, False}} == conditioned_statements()

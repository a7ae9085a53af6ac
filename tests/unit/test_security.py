"""template.yaml keeps data encrypted with one customer-managed key, in transit over TLS only, and hard to lose."""

import boto3
import pytest

from lesionflow_local.template import load, resources_of_type

TEMPLATE = load()
RESOURCES = TEMPLATE["Resources"]
DATA_KEY_ARN = {"Fn::GetAtt": ["DataKey", "Arn"]}


def key_statement(sid: str) -> dict:
    [statement] = [s for s in RESOURCES["DataKey"]["Properties"]["KeyPolicy"]["Statement"] if s["Sid"] == sid]
    return statement


def test_the_data_key_rotates_and_outlives_the_stack_like_the_data_it_protects():
    key = RESOURCES["DataKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    for name in ("DataKey", "ImageBucket", "PredictionTable"):
        assert (RESOURCES[name]["DeletionPolicy"], RESOURCES[name]["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_bucket_queues_table_log_groups_and_topic_are_encrypted_with_the_data_key():
    [rule] = RESOURCES["ImageBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": DATA_KEY_ARN}
    for queue in resources_of_type(TEMPLATE, "AWS::SQS::Queue").values():
        assert queue["Properties"]["KmsMasterKeyId"] == DATA_KEY_ARN
    table = RESOURCES["PredictionTable"]["Properties"]["SSESpecification"]
    assert (table["SSEType"], table["KMSMasterKeyId"]) == ("KMS", DATA_KEY_ARN)
    for group in resources_of_type(TEMPLATE, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["KmsKeyId"] == DATA_KEY_ARN
    assert RESOURCES["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "DataKey"}


# Who may put which objects, and who may use the key for what, is evaluated request by request in
# tests/unit/test_policies.py.


def test_cloudwatch_logs_may_use_the_key_only_for_this_accounts_log_groups():
    statement = key_statement("LogsEncryptThisStacksLogGroups")
    condition = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert "${AWS::AccountId}:log-group:" in condition["Fn::Sub"]


def test_both_queues_refuse_requests_without_tls():
    policy = RESOURCES["IngestQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "IngestQueue"}, {"Ref": "DeadLetterQueue"}]
    [deny] = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Action"] == "sqs:*" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [{"Fn::GetAtt": ["IngestQueue", "Arn"]}, {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}]


def test_the_prediction_log_cannot_be_deleted_by_accident_and_can_be_restored():
    table = RESOURCES["PredictionTable"]["Properties"]
    assert table["DeletionProtectionEnabled"] is True
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def kms_actions(resource: str) -> set[str]:
    """The KMS actions a function or the state machine is granted, each checked to be on the data key alone."""
    found = set()
    for policy in RESOURCES[resource]["Properties"].get("Policies", []):
        policy = policy.get("PolicyDocument", policy) if isinstance(policy, dict) else policy
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(action.startswith("kms:") for action in actions):
                assert statement["Resource"] == DATA_KEY_ARN, resource
                found |= set(actions)
    return found


@pytest.mark.parametrize(("resource", "needed"), [
    # receives from the encrypted queue; starts executions of the encrypted state machine
    ("DispatchFunction", {"kms:Decrypt", "kms:GenerateDataKey"}),
    ("ValidateFunction", {"kms:Decrypt"}),  # reads uploads
    ("PreprocessFunction", {"kms:Decrypt", "kms:GenerateDataKey"}),  # reads uploads, stores large model inputs
    ("InvokeModelFunction", {"kms:Decrypt"}),  # reads stored model inputs
    ("RecordFailureFunction", set()),  # touches no encrypted resource
    # writes the table and the prediction JSON, and encrypts its own execution data
    ("PipelineStateMachineRole", {"kms:Decrypt", "kms:GenerateDataKey"}),
])
def test_each_role_may_use_the_data_key_for_exactly_what_it_reads_and_writes(resource, needed):
    assert kms_actions(resource) == needed


def test_the_state_machines_data_is_encrypted_with_the_data_key(stack):
    # Given the state machine, whose data may hold a small model input (pixels of an upload) inline
    encryption = RESOURCES["PipelineStateMachine"]["Properties"]["EncryptionConfiguration"]
    # Then its executions' data is encrypted with the data key, reusing a data key within the range AWS allows
    assert (encryption["Type"], encryption["KmsKeyId"]) == ("CUSTOMER_MANAGED_KMS_KEY", DATA_KEY_ARN)
    assert 60 <= encryption["KmsDataKeyReusePeriodSeconds"] <= 900
    # and the local stack's state machine is created the same way, with the local data key
    described = boto3.client("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine_arn)
    key = boto3.client("kms").describe_key(KeyId=described["encryptionConfiguration"]["kmsKeyId"])["KeyMetadata"]
    assert described["encryptionConfiguration"]["type"] == "CUSTOMER_MANAGED_KMS_KEY"
    assert key["Description"] == RESOURCES["DataKey"]["Properties"]["Description"]

"""template.yaml wires what the pipeline's promises depend on."""

import re
from pathlib import Path

import pytest

from lesionflow_local.stack import resolver, stack_names
from lesionflow_local.template import ROOT, function_properties, load, resources_of_type

TEMPLATE = load()
RESOURCES = TEMPLATE["Resources"]
LAYOUT = TEMPLATE["Mappings"]["Layout"]["Prefix"]


def prefix(name: str) -> dict:
    return {"Fn::FindInMap": ["Layout", "Prefix", name]}


def allow_statements():
    """Every Allow statement of every IAM policy the template grants, with where it is: the functions' SAM
    Policies, and the roles and managed policies of the pipeline written out (the endpoint's role, whose statements
    depend on conditions, is checked in test_endpoint_template.py)."""
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::IAM::Role" and "Condition" not in resource:
            for policy in resource["Properties"]["Policies"]:
                for statement in policy["PolicyDocument"]["Statement"]:
                    yield name, None, statement
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                yield name, None, statement
        else:
            for policy in resource.get("Properties", {}).get("Policies", []):
                for template_name, statement in _statements(policy):
                    yield name, template_name, statement


def test_the_written_out_roles_and_policies_are_among_those_checked():
    assert {"PipelineStateMachineRole", "ExecutionReaderPolicy"} <= {name for name, _, _ in allow_statements()}


def _statements(policy):
    if isinstance(policy, str):
        yield policy, None
    elif "Statement" in policy:
        for statement in policy["Statement"]:
            yield None, statement
    else:
        yield next(iter(policy)), None


def test_uploads_notify_the_ingest_queue_and_outputs_never_land_under_uploads():
    [queue] = RESOURCES["ImageBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert queue["Event"] == "s3:ObjectCreated:*"
    assert queue["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert queue["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": prefix("Uploads")}]
    assert not LAYOUT["Predictions"].startswith(LAYOUT["Uploads"])


def test_nothing_is_granted_write_access_under_the_upload_prefix():
    for _, _, statement in allow_statements():
        if statement and "s3:PutObject" in str(statement["Action"]):
            assert "Uploads" not in str(statement["Resource"])


def test_the_bucket_is_private_encrypted_versioned_and_tls_only():
    bucket = RESOURCES["ImageBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    statements = RESOURCES["ImageBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    [deny] = [s for s in statements if s["Sid"] == "DenyInsecureTransport"]
    assert (deny["Effect"], deny["Action"], deny["Condition"]) == (
        "Deny", "s3:*", {"Bool": {"aws:SecureTransport": "false"}})


def test_model_inputs_have_a_prefix_of_their_own_and_expire_after_a_day_in_every_version():
    # Given the hand-over prefix, where Preprocess stores a model input too large for the state
    assert not LAYOUT["Handover"].startswith(LAYOUT["Uploads"]) and not LAYOUT["Uploads"].startswith(LAYOUT["Handover"])
    rules = RESOURCES["ImageBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    [rule] = [rule for rule in rules if rule.get("Prefix") == prefix("Handover")]
    # Then what InvokeModel did not delete (a run that failed) expires after one day, noncurrent versions too
    assert (rule["Status"], rule["ExpirationInDays"], rule["NoncurrentVersionExpiration"]) == (
        "Enabled", 1, {"NoncurrentDays": 1})
    # and only Preprocess may write there
    writers = {name for name, _, statement in allow_statements()
               if statement and "s3:PutObject" in str(statement["Action"]) and "Handover" in str(statement["Resource"])}
    assert writers == {"PreprocessFunction"}


def test_replaced_versions_expire_and_leave_no_delete_markers_behind():
    rules = RESOURCES["ImageBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    # the bucket is versioned: an overwritten or deleted upload stays as a noncurrent version unless that expires too
    assert any(rule.get("NoncurrentVersionExpiration") for rule in rules)
    assert any(rule.get("ExpiredObjectDeleteMarker") for rule in rules)


@pytest.mark.parametrize(("function", "readable"), [("ValidateFunction", "Uploads"), ("PreprocessFunction", "Uploads")])
def test_functions_that_read_objects_may_list_the_bucket_so_a_missing_object_is_a_404(function, readable):
    # Without s3:ListBucket, S3 answers 403 for a missing key and "deleted before processing" would become FAILED.
    # S3's check for it carries no s3:prefix, so a grant conditioned on the prefix would not count: none is set.
    statements = RESOURCES[function]["Properties"]["Policies"][0]["Statement"]
    [listing] = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert listing["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ImageBucket}"}
    assert "Condition" not in listing
    # and may read exactly the version it was given under that prefix, nothing more
    [reading] = [s for s in statements if "s3:GetObject" in s["Action"]]
    assert reading["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert reading["Resource"] == {"Fn::Sub": ["arn:${AWS::Partition}:s3:::${ImageBucket}/${Prefix}*",
                                               {"Prefix": prefix(readable)}]}


def test_invoke_model_reads_and_deletes_model_inputs_only_and_may_not_list_the_upload_keys():
    statements = RESOURCES["InvokeModelFunction"]["Properties"]["Policies"][0]["Statement"]
    s3 = [statement for statement in statements if "s3:" in str(statement["Action"])]
    assert [statement["Action"] for statement in s3] == [["s3:GetObject", "s3:GetObjectVersion",
                                                          "s3:DeleteObjectVersion"]]
    [reading] = s3
    assert reading["Resource"] == {"Fn::Sub": ["arn:${AWS::Partition}:s3:::${ImageBucket}/${Prefix}*",
                                               {"Prefix": prefix("Handover")}]}


def test_failed_messages_go_to_a_dead_letter_queue_after_five_receives_and_stay_fourteen_days():
    redrive = RESOURCES["IngestQueue"]["Properties"]["RedrivePolicy"]
    assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, "maxReceiveCount": 5}
    assert RESOURCES["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_the_queue_visibility_timeout_is_at_least_six_times_the_dispatchers_timeout():
    timeout = function_properties(TEMPLATE, "DispatchFunction")["Timeout"]
    assert RESOURCES["IngestQueue"]["Properties"]["VisibilityTimeout"] >= 6 * timeout


def test_only_this_bucket_in_this_account_may_send_to_the_queue():
    statements = RESOURCES["IngestQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    [statement] = [s for s in statements if s["Effect"] == "Allow"]
    assert statement["Resource"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # the bucket's name is written out again (to avoid a dependency cycle): it must resolve to the same bucket
    source = resolver(TEMPLATE, {})(statement["Condition"]["ArnEquals"]["aws:SourceArn"])
    assert source == f"arn:aws:s3:::{stack_names().bucket}"


def test_the_data_key_names_the_same_bucket_as_the_bucket_itself():
    # Given the data key's statement for S3, which cannot reference the bucket it encrypts (a cycle)
    statements = RESOURCES["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    [statement] = [s for s in statements if s["Sid"] == "S3PublishesToTheEncryptedQueue"]
    # Then its source ARN resolves to the bucket's own name
    source = resolver(TEMPLATE, {})(statement["Condition"]["ArnEquals"]["aws:SourceArn"])
    assert source == f"arn:aws:s3:::{stack_names().bucket}"


def test_the_dispatcher_reports_partial_batch_failures_with_bounded_concurrency():
    [event] = RESOURCES["DispatchFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "DispatchMaxConcurrency"}}
    assert TEMPLATE["Parameters"]["DispatchMaxConcurrency"]["MinValue"] == 2  # Lambda's lowest allowed value


# Step Functions log delivery and X-Ray: these APIs have no resource-level permissions (AWS documents Resource "*").
LOG_DELIVERY = {"logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                "xray:GetSamplingRules", "xray:GetSamplingTargets"}


def test_no_policy_grants_wildcard_actions_or_full_access():
    for resource, template_name, statement in allow_statements():
        assert template_name is None or "FullAccess" not in template_name, resource
        if statement:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert statement["Effect"] == "Allow"
            assert not any(action == "*" or action.endswith(":*") for action in actions), (resource, actions)
            assert statement["Resource"] != "*" or set(actions) <= LOG_DELIVERY, resource


def test_the_endpoint_invoke_permission_is_scoped_to_the_configured_endpoint():
    statements = [s for _, _, s in allow_statements() if s and s["Action"] == "sagemaker:InvokeEndpoint"]
    assert [s["Resource"]["Fn::Sub"] for s in statements] == [
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/${EndpointName}"]


def test_the_prediction_log_serves_its_access_patterns_without_scans():
    table = RESOURCES["PredictionTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["image_key", "upload_version"]
    indexes = {i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in table["GlobalSecondaryIndexes"]}
    assert indexes == {"by-label": ["label", "created_at"], "by-status": ["status", "created_at"],
                       "by-review": ["review", "created_at"]}


def test_every_function_is_python_3_13_on_arm64_with_its_handler_and_requirements():
    for name in resources_of_type(TEMPLATE, "AWS::Serverless::Function"):
        properties = function_properties(TEMPLATE, name)
        assert (properties["Runtime"], properties["Architectures"]) == ("python3.13", ["arm64"])
        module, _ = properties["Handler"].split(".")
        code = ROOT / properties["CodeUri"]
        assert (code / f"{module}.py").is_file() and (code / "requirements.txt").is_file()
        assert properties["Tracing"] == "Active"
    layer = RESOURCES["LesionFlowLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    assert (ROOT / layer["Properties"]["ContentUri"] / "lesionflow" / "__init__.py").is_file()


def test_the_state_machine_substitutions_match_the_placeholders_of_its_definition():
    machine = RESOURCES["PipelineStateMachine"]["Properties"]
    placeholders = set(re.findall(r"\$\{(\w+)\}", Path(ROOT, machine["DefinitionS3Location"]).read_text()))
    assert placeholders == set(machine["DefinitionSubstitutions"])
    assert machine["StateMachineType"] == {"Ref": "WorkflowType"}
    assert TEMPLATE["Parameters"]["WorkflowType"]["AllowedValues"] == ["STANDARD", "EXPRESS"]


@pytest.mark.parametrize("output", ["BucketName", "UploadPrefix", "PredictionTableName", "IngestQueueUrl",
                                    "DeadLetterQueueUrl", "StateMachineArn"])
def test_the_stack_outputs_what_users_and_the_cli_need(output):
    assert output in TEMPLATE["Outputs"]


def test_every_parameter_value_reads_as_the_text_a_person_types_not_a_yaml_boolean_or_number():
    # YAML 1.1, which PyYAML and SAM read, turns a bare OFF, ON, YES or NO into a boolean: a StateMachineLogLevel of
    # OFF would then be refused by CloudFormation as outside AllowedValues [..., "false"]
    for name, parameter in TEMPLATE["Parameters"].items():
        kinds = {type(value) for value in parameter.get("AllowedValues", [])}
        assert kinds <= ({str} if parameter["Type"] == "String" else {int, float, str}), (name, kinds)
        assert not isinstance(parameter.get("Default"), bool), name

"""template.yaml creates the SageMaker endpoint only when asked, as EndpointName, with a least-privilege role.

The template is read as data and its conditions and intrinsic functions are resolved for a set of parameters (the
local stack's resolver), so each test reads as what a deploy with those parameters would create.
"""

import re

import pytest

from lesionflow_local.stack import resolver as local_resolver
from lesionflow_local.template import ROOT, Resolver, function_properties, load, placeholder_resolver, resources_of_type

TEMPLATE = load()
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]

ENDPOINT = {"SageMakerModel", "SageMakerEndpointConfig", "SageMakerEndpoint", "SageMakerEndpointLogGroup",
            "SageMakerExecutionRole"}
SCALING = {"SageMakerScalableTarget", "SageMakerScalingPolicy"}
DATA_KEY_ARN = {"Fn::GetAtt": ["DataKey", "Arn"]}

MODEL_DATA = "s3://lesionflow-models-123456789012/vit/model.tar.gz"
OWN_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/lesionflow-model:1.0.0"
REVISION = "0123456789abcdef0123456789abcdef01234567"
HUB = {"EndpointSource": "huggingface", "HuggingFaceModelRevision": REVISION}
ARTIFACT = {"EndpointSource": "artifact", "ModelDataUrl": MODEL_DATA, "ContainerImageUri": OWN_IMAGE}
CREATING = [pytest.param(source | {"EndpointCompute": compute}, id=f"{source['EndpointSource']}-{compute}")
            for source in (HUB, ARTIFACT) for compute in ("serverless", "instance")]


def resolve(parameters: dict, region: str = "us-east-1") -> Resolver:
    return placeholder_resolver(TEMPLATE, region, parameters)


def created(parameters: dict, region: str = "us-east-1") -> set[str]:
    """The logical ids a deploy with these parameters creates."""
    holds = resolve(parameters, region).condition
    return {name for name, resource in RESOURCES.items() if "Condition" not in resource or holds(resource["Condition"])}


def properties(name: str, parameters: dict, region: str = "us-east-1") -> dict:
    """A resource's properties as a deploy with these parameters would set them (AWS::NoValue left out)."""
    return resolve(parameters, region)(RESOURCES[name]["Properties"])


def statements(role: str, parameters: dict, region: str = "us-east-1") -> dict[str, dict]:
    """An IAM role's inline policy statements, by Sid, as deployed with these parameters."""
    return {statement["Sid"]: statement for policy in properties(role, parameters, region)["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]}


# ---------------------------------------------------------------------------------------------------- when created

def test_by_default_the_stack_invokes_an_existing_endpoint_and_creates_nothing_for_it():
    # Given the parameter defaults (what the local stack and `sam deploy` without overrides use)
    assert PARAMETERS["EndpointSource"]["Default"] == "existing"
    for compute in ("serverless", "instance"):
        # When the stack is deployed, whichever compute is chosen
        resources = created({"EndpointCompute": compute})
        # Then no SageMaker, autoscaling or extra IAM resource exists, and the invoke-model function names the endpoint
        assert not resources & (ENDPOINT | SCALING)
        tags = local_resolver(TEMPLATE, {})(function_properties(TEMPLATE, "InvokeModelFunction"))["Tags"]
        assert tags == {"lesionflow:endpoint": PARAMETERS["EndpointName"]["Default"]}


def test_every_resource_of_the_endpoint_exists_only_under_a_condition():
    kinds = ("AWS::SageMaker::", "AWS::ApplicationAutoScaling::", "AWS::IAM::")
    pipeline = {"PipelineStateMachineRole", "ExecutionReaderPolicy"}  # the state machine's, whatever the endpoint
    conditional = {name for name, resource in RESOURCES.items() if resource["Type"].startswith(kinds)} - pipeline
    assert conditional | {"SageMakerEndpointLogGroup"} == ENDPOINT | SCALING
    for name in ENDPOINT:
        assert RESOURCES[name]["Condition"] == "CreatesEndpoint", name
    for name in SCALING:
        assert RESOURCES[name]["Condition"] == "ScalesInstances", name
    assert TEMPLATE["Outputs"]["EndpointArn"]["Condition"] == "CreatesEndpoint"


@pytest.mark.parametrize("parameters", CREATING)
def test_a_created_endpoint_is_named_endpoint_name_with_the_variant_the_alarms_watch(parameters):
    # Given an endpoint name and a variant name
    parameters = parameters | {"EndpointName": "derm-vit-7", "EndpointVariantName": "primary"}
    # When the stack creates the endpoint
    resources = created(parameters)
    # Then the endpoint, its configuration, model, log group and role exist, the endpoint has that name, and its one
    # variant serves the model under that variant name
    assert ENDPOINT <= resources
    assert properties("SageMakerEndpoint", parameters) == {
        "EndpointName": "derm-vit-7", "EndpointConfigName": "<SageMakerEndpointConfig.EndpointConfigName>"}
    [variant] = properties("SageMakerEndpointConfig", parameters)["ProductionVariants"]
    assert (variant["VariantName"], variant["ModelName"]) == ("primary", "<SageMakerModel.ModelName>")
    # and the invoke permission, alarms and dashboard, which name EndpointName and EndpointVariantName, hold as they are
    for alarm in ("Endpoint5xxAlarm", "ModelLatencyAlarm"):
        assert RESOURCES[alarm]["Properties"]["Dimensions"] == [
            {"Name": "EndpointName", "Value": {"Ref": "EndpointName"}},
            {"Name": "VariantName", "Value": {"Ref": "EndpointVariantName"}}]


def test_the_invoke_model_function_is_created_once_a_created_endpoint_is_in_service_without_depends_on():
    # Given the invoke-model function's tag naming its endpoint
    function = RESOURCES["InvokeModelFunction"]
    tag = function["Properties"]["Tags"]["lesionflow:endpoint"]
    # Then it refers to the created endpoint when there is one (CloudFormation orders the function after it), and to
    # the EndpointName parameter otherwise; DependsOn would fail on a resource whose condition is false
    assert tag == {"Fn::If": ["CreatesEndpoint", {"Fn::GetAtt": ["SageMakerEndpoint", "EndpointName"]},
                              {"Ref": "EndpointName"}]}
    assert "DependsOn" not in function
    # and its environment still names the parameter (the same name either way)
    assert function["Properties"]["Environment"]["Variables"]["ENDPOINT_NAME"] == {"Ref": "EndpointName"}


@pytest.mark.parametrize("parameters", CREATING)
def test_the_endpoint_storage_is_encrypted_with_the_data_key_and_its_logs_kept_like_the_others(parameters):
    assert properties("SageMakerEndpointConfig", parameters)["KmsKeyId"] == "<DataKey.Arn>"
    group = properties("SageMakerEndpointLogGroup", parameters | {"EndpointName": "derm-vit-7"})
    assert group == {"LogGroupName": "/aws/sagemaker/Endpoints/derm-vit-7", "KmsKeyId": "<DataKey.Arn>",
                     "RetentionInDays": str(PARAMETERS["LogRetentionDays"]["Default"])}


# ---------------------------------------------------------------------------------------------------- compute

@pytest.mark.parametrize("source", [HUB, ARTIFACT], ids=["huggingface", "artifact"])
def test_a_serverless_endpoint_takes_its_memory_and_concurrency_from_the_parameters_and_never_scales(source):
    # Given serverless compute with chosen memory and concurrency
    parameters = source | {"EndpointCompute": "serverless", "ServerlessMemorySizeMB": "2048",
                           "ServerlessMaxConcurrency": "7"}
    # When the stack creates the endpoint
    [variant] = properties("SageMakerEndpointConfig", parameters)["ProductionVariants"]
    # Then its variant is serverless with those values, has no instances, and nothing scales it
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": "2048", "MaxConcurrency": "7"}
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    assert not created(parameters) & SCALING


@pytest.mark.parametrize("source", [HUB, ARTIFACT], ids=["huggingface", "artifact"])
def test_an_instance_endpoint_scales_on_invocations_per_instance_between_the_counts(source):
    # Given instance compute
    parameters = source | {"EndpointCompute": "instance", "InstanceType": "ml.c5.xlarge",
                           "InitialInstanceCount": "2", "MaxInstanceCount": "6", "TargetInvocationsPerInstance": "250"}
    # When the stack creates the endpoint
    [variant] = properties("SageMakerEndpointConfig", parameters)["ProductionVariants"]
    # Then the variant runs that many instances of that type
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.c5.xlarge", "2")
    assert "ServerlessConfig" not in variant
    # and a scalable target on the created endpoint's variant keeps between 2 and 6 instances
    assert SCALING <= created(parameters)
    target = properties("SageMakerScalableTarget", parameters | {"EndpointVariantName": "primary"})
    assert target == {"ServiceNamespace": "sagemaker", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                      "ResourceId": "endpoint/<SageMakerEndpoint.EndpointName>/variant/primary",
                      "MinCapacity": "2", "MaxCapacity": "6"}
    assert "RoleARN" not in target  # Application Auto Scaling's service-linked role
    # with a target tracking policy on SageMakerVariantInvocationsPerInstance
    policy = properties("SageMakerScalingPolicy", parameters)
    assert (policy["PolicyType"], policy["ScalingTargetId"]) == ("TargetTrackingScaling", "<SageMakerScalableTarget>")
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == "250"
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}


def test_max_instances_equal_to_the_initial_count_is_a_fixed_fleet_without_autoscaling():
    parameters = ARTIFACT | {"EndpointCompute": "instance", "InitialInstanceCount": "3", "MaxInstanceCount": "3"}
    assert ENDPOINT <= created(parameters)
    assert not created(parameters) & SCALING


def test_instance_types_are_ones_whose_storage_the_data_key_may_encrypt():
    # SageMaker refuses a KmsKeyId for instance types with local NVMe storage (ml.m5d, ml.g4dn, ml.g5, ...)
    allowed = PARAMETERS["InstanceType"]["AllowedValues"]
    assert PARAMETERS["InstanceType"]["Default"] in allowed
    for instance_type in allowed:
        family = instance_type.split(".")[1]
        assert not family.endswith("d") and not family.startswith(("g", "p", "inf", "trn")), instance_type


# ---------------------------------------------------------------------------------------------------- what it serves

@pytest.mark.parametrize("compute", ["serverless", "instance"])
def test_a_hub_model_is_served_by_the_hugging_face_container_of_the_region_with_network_access(compute):
    # Given a Hub model id and revision
    parameters = HUB | {"EndpointCompute": compute, "HuggingFaceModelId": "acme/derm-vit",
                        "HuggingFaceModelRevision": REVISION}
    # When the stack creates the endpoint in eu-west-1
    model = properties("SageMakerModel", parameters, region="eu-west-1")
    # Then the Hugging Face PyTorch CPU inference container of that region serves it as an image classifier
    mapping = TEMPLATE["Mappings"]["HuggingFaceInference"]
    assert model["PrimaryContainer"] == {
        "Image": (f"{mapping['eu-west-1']['Registry']}.dkr.ecr.eu-west-1.amazonaws.com/"
                  f"{mapping['Image']['Repository']}:{mapping['Image']['Tag']}"),
        "Environment": {"HF_MODEL_ID": "acme/derm-vit", "HF_MODEL_REVISION": REVISION,
                        "HF_TASK": "image-classification"}}
    assert "-cpu-" in mapping["Image"]["Tag"] and mapping["Image"]["Repository"] == "huggingface-pytorch-inference"
    # and the container may reach the Hub, which it downloads the model from at startup
    assert model["EnableNetworkIsolation"] is False
    assert model["ExecutionRoleArn"] == "<SageMakerExecutionRole.Arn>"


def test_a_hub_model_may_run_in_another_image_given_its_uri():
    model = properties("SageMakerModel", HUB | {"ContainerImageUri": OWN_IMAGE})
    assert model["PrimaryContainer"]["Image"] == OWN_IMAGE
    assert model["PrimaryContainer"]["Environment"]["HF_MODEL_ID"] == PARAMETERS["HuggingFaceModelId"]["Default"]


@pytest.mark.parametrize(("compute", "isolated"), [("instance", True), ("serverless", False)])
def test_an_artifact_is_served_by_its_container_isolated_from_the_network_where_sagemaker_allows(compute, isolated):
    # Given a model artifact and its container
    parameters = ARTIFACT | {"EndpointCompute": compute, "ModelContract": "tensor-npy"}
    # When the stack creates the endpoint
    model = properties("SageMakerModel", parameters)
    # Then the container serves that artifact in the pipeline's contract (LesionFlow's container reads it from
    # LESIONFLOW_CONTRACT), with no Hugging Face settings
    assert model["PrimaryContainer"] == {"Image": OWN_IMAGE, "ModelDataUrl": MODEL_DATA,
                                         "Environment": {"LESIONFLOW_CONTRACT": "tensor-npy"}}
    # and it has no network on instances (serverless endpoints do not support network isolation)
    assert model["EnableNetworkIsolation"] is isolated


def test_an_artifact_without_an_image_is_served_by_the_hugging_face_container_as_an_image_classifier():
    parameters = {"EndpointSource": "artifact", "ModelDataUrl": MODEL_DATA, "EndpointCompute": "instance"}
    container = properties("SageMakerModel", parameters)["PrimaryContainer"]
    assert "/huggingface-pytorch-inference:" in container["Image"]
    assert container["Environment"] == {"HF_TASK": "image-classification"}
    assert container["ModelDataUrl"] == MODEL_DATA


def test_the_hugging_face_container_may_only_be_asked_for_its_own_contract():
    # CloudFormation evaluates Rules before it creates anything: a contract the container does not speak fails there
    rule = TEMPLATE["Rules"]["HuggingFaceContainerSpeaksItsContract"]
    assert rule["RuleCondition"] == {"Fn::Or": [
        {"Fn::Equals": [{"Ref": "EndpointSource"}, "huggingface"]},
        {"Fn::And": [{"Fn::Equals": [{"Ref": "EndpointSource"}, "artifact"]},
                     {"Fn::Equals": [{"Ref": "ContainerImageUri"}, ""]}]}]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "ModelContract"}, "hf-image-classification"]}


@pytest.mark.parametrize(("revision", "accepted"), [
    ("0123456789abcdef0123456789abcdef01234567", True), ("main", False), ("v1.0", False), ("0123abcd", False),
    ("0123456789ABCDEF0123456789ABCDEF01234567", False), ("", True)])  # empty: allowed, but the Rule below refuses it
def test_a_hub_model_revision_is_a_full_commit_hash_never_a_branch(revision, accepted):
    # Given the parameter's pattern, as CloudFormation applies it to the whole value
    pattern = PARAMETERS["HuggingFaceModelRevision"]["AllowedPattern"]
    # Then only a 40-hex commit (or nothing, for the other sources) passes
    assert bool(re.fullmatch(pattern, revision)) is accepted
    assert PARAMETERS["HuggingFaceModelRevision"]["Default"] == ""


def test_a_hub_endpoint_refuses_to_deploy_without_a_pinned_revision():
    rule = TEMPLATE["Rules"]["HubModelIsPinned"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "EndpointSource"}, "huggingface"]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "HuggingFaceModelRevision"}, ""]}]}


def test_artifact_mode_refuses_to_deploy_without_a_model_artifact():
    [rule] = [r for r in TEMPLATE["Rules"].values() if r["RuleCondition"] == {
        "Fn::Equals": [{"Ref": "EndpointSource"}, "artifact"]}]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ModelDataUrl"}, ""]}]}
    assert PARAMETERS["ModelDataUrl"]["Default"] == ""


# ---------------------------------------------------------------------------------------------------- the role

def test_only_sagemaker_may_assume_the_endpoint_role_and_it_has_no_managed_policy():
    role = RESOURCES["SageMakerExecutionRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    assert "ManagedPolicyArns" not in role


@pytest.mark.parametrize(("parameters", "repository"), [
    (HUB, "arn:aws:ecr:us-east-1:763104351884:repository/huggingface-pytorch-inference"),
    (ARTIFACT, "arn:aws:ecr:eu-west-1:123456789012:repository/lesionflow-model"),
    (ARTIFACT | {"ContainerImageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/lesionflow-model@sha256:"
                 + "a" * 64}, "arn:aws:ecr:eu-west-1:123456789012:repository/lesionflow-model"),
], ids=["huggingface", "own-image-tag", "own-image-digest"])
def test_the_endpoint_role_pulls_only_from_its_images_repository(parameters, repository):
    pull = statements("SageMakerExecutionRole", parameters)["PullTheImage"]
    assert pull["Resource"] == repository
    assert set(pull["Action"]) == {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                   "ecr:BatchCheckLayerAvailability"}


@pytest.mark.parametrize("parameters", CREATING)
def test_the_endpoint_role_writes_only_its_endpoints_log_group(parameters):
    logs = statements("SageMakerExecutionRole", parameters | {"EndpointName": "derm-vit-7"})["WriteTheEndpointLogs"]
    assert logs["Resource"] == [
        "arn:aws:logs:us-east-1:123456789012:log-group:<SageMakerEndpointLogGroup>",
        "<SageMakerEndpointLogGroup.Arn>"]
    assert RESOURCES["SageMakerEndpointLogGroup"]["Properties"]["LogGroupName"] == {
        "Fn::Sub": "/aws/sagemaker/Endpoints/${EndpointName}"}


def test_the_endpoint_role_reads_exactly_the_model_artifact_and_only_in_artifact_mode():
    # Given artifact mode
    read = statements("SageMakerExecutionRole", ARTIFACT)["ReadTheModelArtifact"]
    # Then the role may get that one object
    assert (read["Action"], read["Resource"]) == (
        "s3:GetObject", "arn:aws:s3:::lesionflow-models-123456789012/vit/model.tar.gz")
    # and in Hugging Face mode it reads nothing from S3, nor decrypts anything
    hub = statements("SageMakerExecutionRole", HUB | {"ModelDataUrl": MODEL_DATA})
    assert set(hub) == {"PullTheImage", "AuthenticateToEcr", "PutTheEndpointsOwnMetrics", "WriteTheEndpointLogs"}


def test_the_endpoint_role_decrypts_the_artifact_only_with_its_key_and_only_through_s3():
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert "DecryptTheModelArtifact" not in statements("SageMakerExecutionRole", ARTIFACT)
    decrypt = statements("SageMakerExecutionRole", ARTIFACT | {"ModelDataKmsKeyArn": key})["DecryptTheModelArtifact"]
    assert (decrypt["Action"], decrypt["Resource"]) == ("kms:Decrypt", key)
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}


# Actions AWS documents with no resource-level permissions, so "*" is their only resource.
NO_RESOURCE_LEVEL = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}


def _branches(value):
    """Every value a policy element may take: both branches of each Fn::If, AWS::NoValue left out."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, when_true, when_false = value["Fn::If"]
        return [branch for side in (when_true, when_false) for branch in _branches(side)]
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def test_no_iam_role_has_a_managed_policy_a_wildcard_action_or_an_unscoped_resource():
    # test_template.py checks the functions' Policies and the state machine's role; these are the endpoint's roles
    roles = {name: role for name, role in resources_of_type(TEMPLATE, "AWS::IAM::Role").items() if name in ENDPOINT}
    assert roles
    for name, role in roles.items():
        managed = role["Properties"].get("ManagedPolicyArns", [])
        assert not [arn for arn in managed if "FullAccess" in str(arn)], name
        for policy in role["Properties"]["Policies"]:
            for element in policy["PolicyDocument"]["Statement"]:
                for statement in _branches(element):
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    assert statement["Effect"] == "Allow", (name, statement)
                    assert not any(action == "*" or action.endswith(":*") for action in actions), (name, actions)
                    if statement["Resource"] == "*":
                        assert set(actions) <= NO_RESOURCE_LEVEL, (name, actions)
                    else:  # named resources (a log group's ARN ends in :*, meaning its streams)
                        assert "*" not in str(statement["Resource"]).replace(":*", ""), (name, statement["Resource"])


# ---------------------------------------------------------------------------------------------------- parameters

def test_the_endpoint_parameters_offer_the_three_sources_and_two_computes():
    assert PARAMETERS["EndpointSource"]["AllowedValues"] == ["existing", "huggingface", "artifact"]
    assert PARAMETERS["EndpointCompute"]["AllowedValues"] == ["serverless", "instance"]
    assert PARAMETERS["EndpointCompute"]["Default"] == "serverless"


def test_every_model_contract_the_stack_accepts_has_its_spec_file():
    contracts = PARAMETERS["ModelContract"]["AllowedValues"]
    assert contracts == ["hf-image-classification", "tensor-json", "tensor-npy", "csv-pixels"]
    for contract in contracts:
        assert (ROOT / "src" / "lesionflow" / "contract_specs" / f"{contract}.json").is_file(), contract

"""Create LesionFlow's resources in moto exactly as ``template.yaml`` declares them.

Call inside an active ``moto.mock_aws`` (or against a moto server). Bucket, notification, queues and redrive, table
keys and indexes, function settings and the state machine definition with its substitutions all come from the
template; only physical names are invented here, the way CloudFormation would.
"""

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import boto3

from lesionflow_local import fidelity
from lesionflow_local.lambdas import LocalFunction, functions_from_template
from lesionflow_local.template import ROOT, Resolver, load, resources_of_type

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK_NAME = "lesionflow-local"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/00000000-0000-4000-8000-10ca15ac0de0"
# The local stack's hash key is fixed, so that the sample events' upload ids match what its dispatcher computes. It
# protects nothing: a deployed stack generates its own secret.
LOCAL_HASH_KEY = "lesionflow-local-hash-key-not-secret"


@dataclass
class StackNames:
    """Where everything of the local stack is: what ``sam deploy`` would print as outputs, and a little more."""

    region: str
    bucket: str
    upload_prefix: str
    prediction_prefix: str
    table: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    state_machine_arn: str
    execution_prefix: str


@dataclass
class LocalStack(StackNames):
    functions: dict[str, LocalFunction]


def resolver(template: dict, parameters: dict[str, str]) -> Resolver:
    resolve = Resolver(template, parameters=parameters, pseudo={
        "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
        "AWS::StackName": STACK_NAME, "AWS::StackId": STACK_ID, "AWS::URLSuffix": "amazonaws.com",
    })
    _name_everything(template, resolve)
    return resolve


def stack_names(parameters: dict[str, str] | None = None, template: dict | None = None) -> StackNames:
    """The local stack's names, read from the template, without creating anything."""
    template = template or load()
    return _names(template, resolver(template, parameters or {}))


def _names(template: dict, resolve: Resolver) -> StackNames:
    layout = template["Mappings"]["Layout"]["Prefix"]
    machine = resolve.attributes[("PipelineStateMachine", "Name")]
    return StackNames(
        region=REGION, bucket=resolve.ref("ImageBucket"), upload_prefix=layout["Uploads"],
        prediction_prefix=layout["Predictions"],
        table=resolve.ref("PredictionTable"), queue_url=resolve.ref("IngestQueue"),
        queue_arn=resolve.attributes[("IngestQueue", "Arn")], dlq_url=resolve.ref("DeadLetterQueue"),
        state_machine_arn=resolve.ref("PipelineStateMachine"),
        execution_prefix=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{machine}",
    )


def provision(parameters: dict[str, str] | None = None, template: dict | None = None,
              endpoint_url: str | None = None) -> LocalStack:
    """Create every resource in moto: in-process under ``mock_aws``, or on a moto server at ``endpoint_url``."""
    template = template or load()
    resolve = resolver(template, parameters or {})
    resources = template["Resources"]
    fidelity.install()  # moto's S3 notifications and Step Functions context object as AWS documents them
    kms, secrets, sqs, s3, dynamodb, sfn = (
        boto3.client(service, region_name=REGION, endpoint_url=endpoint_url)
        for service in ("kms", "secretsmanager", "sqs", "s3", "dynamodb", "stepfunctions"))

    _create_key(kms, resolve, resources["DataKey"]["Properties"])
    _create_hash_key(secrets, resolve, resolve(resources["HashKeySecret"]["Properties"]))
    for logical_id in ("DeadLetterQueue", "IngestQueue"):
        _create_queue(sqs, logical_id, resolve(resources[logical_id]["Properties"]), resolve)
    _create_bucket(s3, resolve(resources["ImageBucket"]["Properties"]))
    _create_table(dynamodb, resolve.ref("PredictionTable"), resolve(resources["PredictionTable"]["Properties"]))
    machine = resolve(resources["PipelineStateMachine"]["Properties"])
    definition = Path(ROOT, machine["DefinitionS3Location"]).read_text()
    for name, value in machine["DefinitionSubstitutions"].items():
        definition = definition.replace("${%s}" % name, str(value))
    encryption = machine["EncryptionConfiguration"]
    sfn.create_state_machine(
        name=resolve.attributes[("PipelineStateMachine", "Name")], definition=definition,
        type=machine["StateMachineType"], roleArn=machine["RoleArn"],
        encryptionConfiguration={"type": encryption["Type"], "kmsKeyId": encryption["KmsKeyId"],
                                 "kmsDataKeyReusePeriodSeconds": encryption["KmsDataKeyReusePeriodSeconds"]},
    )
    return LocalStack(**vars(_names(template, resolve)), functions=functions_from_template(template, resolve))


# The template's outputs the local stack has (it has no alarm topic, dashboard or SageMaker endpoint resource).
PUBLISHED_OUTPUTS = {"BucketName": "bucket", "UploadPrefix": "upload_prefix", "PredictionPrefix": "prediction_prefix",
                     "PredictionTableName": "table", "IngestQueueUrl": "queue_url", "DeadLetterQueueUrl": "dlq_url",
                     "StateMachineArn": "state_machine_arn"}


def publish(cloudformation, names: StackNames, parameters: dict[str, str]) -> None:
    """Record the local stack's parameters and outputs where a deployed stack keeps them, as a CloudFormation stack
    named ``lesionflow-local``, so that a client reads either the same way (``DescribeStacks``). The stack holds only
    that record (one placeholder resource); the real resources were made by ``provision``."""
    template = {
        "Description": "The local stack's parameters and outputs (its resources are made by lesionflow_local.stack)",
        "Parameters": {name: {"Type": "String"} for name in parameters},
        "Resources": {"Record": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {output: {"Value": getattr(names, field)} for output, field in PUBLISHED_OUTPUTS.items()},
    }
    with warnings.catch_warnings():  # moto says it does not create the placeholder: nothing is meant to be created
        warnings.simplefilter("ignore")
        cloudformation.create_stack(StackName=STACK_NAME, TemplateBody=json.dumps(template), Parameters=[
            {"ParameterKey": name, "ParameterValue": str(value)} for name, value in parameters.items()])


def with_overrides(template: dict, overrides: dict[str, dict]) -> dict:
    """The template with properties of resources replaced (``{"IngestQueue": {"VisibilityTimeout": 3}}``): a fault run
    uses it to see redeliveries in seconds instead of the template's minutes."""
    if not overrides:
        return template
    resources = {name: resource | {"Properties": resource.get("Properties", {}) | overrides.get(name, {})}
                 for name, resource in template["Resources"].items()}
    return template | {"Resources": resources}


def _name_everything(template: dict, resolve: Resolver) -> None:
    """Physical names and ARNs for every resource the others refer to, as CloudFormation would invent them."""
    arn = f"{REGION}:{ACCOUNT}"
    resources = template["Resources"]
    for logical_id in resources:  # what CloudFormation would generate; the types below are named more precisely
        resolve.names[logical_id] = f"{STACK_NAME}-{logical_id}"
    bucket = resolve(resources["ImageBucket"]["Properties"]["BucketName"])
    resolve.names["ImageBucket"] = bucket
    resolve.attributes[("ImageBucket", "Arn")] = f"arn:aws:s3:::{bucket}"
    for logical_id in resources_of_type(template, "AWS::SQS::Queue"):
        name = f"{STACK_NAME}-{logical_id}"
        resolve.names[logical_id] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        resolve.attributes[(logical_id, "Arn")] = f"arn:aws:sqs:{arn}:{name}"
        resolve.attributes[(logical_id, "QueueName")] = name
    for logical_id in resources_of_type(template, "AWS::DynamoDB::Table"):
        resolve.names[logical_id] = f"{STACK_NAME}-{logical_id}"
        resolve.attributes[(logical_id, "Arn")] = f"arn:aws:dynamodb:{arn}:table/{STACK_NAME}-{logical_id}"
    for logical_id in resources_of_type(template, "AWS::Serverless::Function"):
        resolve.names[logical_id] = logical_id
        resolve.attributes[(logical_id, "Arn")] = f"arn:aws:lambda:{arn}:function:{logical_id}"
    for logical_id in resources_of_type(template, "AWS::KMS::Key"):  # provision() replaces these with the real key
        resolve.names[logical_id] = f"{STACK_NAME}-{logical_id}"
        resolve.attributes[(logical_id, "Arn")] = f"arn:aws:kms:{arn}:key/{STACK_NAME}-{logical_id}"
    for logical_id in resources_of_type(template, "AWS::SecretsManager::Secret"):  # provision() puts the real ARN
        resolve.names[logical_id] = f"arn:aws:secretsmanager:{arn}:secret:{STACK_NAME}-{logical_id}"
    for logical_id in resources_of_type(template, "AWS::Logs::LogGroup"):
        resolve.attributes[(logical_id, "Arn")] = f"arn:aws:logs:{arn}:log-group:{resolve.names[logical_id]}:*"
    for logical_id in resources_of_type(template, "AWS::Serverless::LayerVersion"):  # installed locally as a package
        resolve.names[logical_id] = f"arn:aws:lambda:{arn}:layer:{logical_id}:1"
    for logical_id in resources_of_type(template, "AWS::IAM::Role"):  # moto enforces no role: named, not created
        resolve.attributes[(logical_id, "Arn")] = f"arn:aws:iam::{ACCOUNT}:role/{STACK_NAME}-{logical_id}"
    for logical_id in resources_of_type(template, "AWS::StepFunctions::StateMachine"):
        name = f"{STACK_NAME}-{logical_id}"
        resolve.names[logical_id] = f"arn:aws:states:{arn}:stateMachine:{name}"
        resolve.attributes[(logical_id, "Name")] = name


def _create_key(kms, resolve: Resolver, properties: dict) -> None:
    """The data key, created for real so that every resource encrypted with it names an existing key."""
    key = kms.create_key(Description=properties["Description"], Policy=json.dumps(resolve(properties["KeyPolicy"])))
    if properties.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=key["KeyMetadata"]["KeyId"])
    resolve.names["DataKey"] = key["KeyMetadata"]["KeyId"]
    resolve.attributes[("DataKey", "Arn")] = key["KeyMetadata"]["Arn"]


def _create_hash_key(secrets, resolve: Resolver, properties: dict) -> None:
    secret = secrets.create_secret(Name=f"{STACK_NAME}-HashKeySecret", Description=properties["Description"],
                                   KmsKeyId=properties["KmsKeyId"], SecretString=LOCAL_HASH_KEY)
    resolve.names["HashKeySecret"] = secret["ARN"]


_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds")


def _create_queue(sqs, logical_id: str, properties: dict, resolve: Resolver) -> None:
    attributes = {name: str(properties[name]) for name in _QUEUE_ATTRIBUTES if name in properties}
    if "RedrivePolicy" in properties:
        attributes["RedrivePolicy"] = json.dumps(properties["RedrivePolicy"])
    for policy in resources_of_type(resolve.template, "AWS::SQS::QueuePolicy").values():
        if {"Ref": logical_id} in policy["Properties"]["Queues"]:
            attributes["Policy"] = json.dumps(resolve(policy["Properties"]["PolicyDocument"]))
    sqs.create_queue(QueueName=resolve.ref(logical_id).rsplit("/", 1)[1], Attributes=attributes)


def _create_bucket(s3, properties: dict) -> None:
    bucket = properties["BucketName"]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=properties["VersioningConfiguration"])
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
             "BucketKeyEnabled": rule.get("BucketKeyEnabled", False)}
            for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]},
    )
    queues = [
        {
            "QueueArn": queue["Queue"],
            "Events": [queue["Event"]],
            "Filter": {"Key": {"FilterRules": queue["Filter"]["S3Key"]["Rules"]}},
        }
        for queue in properties["NotificationConfiguration"]["QueueConfigurations"]
    ]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": queues})


def _create_table(dynamodb, name: str, properties: dict) -> None:
    dynamodb.create_table(
        TableName=name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
        SSESpecification={"Enabled": properties["SSESpecification"]["SSEEnabled"],
                          "SSEType": properties["SSESpecification"]["SSEType"],
                          "KMSMasterKeyId": properties["SSESpecification"]["KMSMasterKeyId"]},
        DeletionProtectionEnabled=properties["DeletionProtectionEnabled"],
    )

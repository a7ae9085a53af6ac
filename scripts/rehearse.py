"""Deploy rehearsal without an AWS account: `make rehearse` runs this, and `make test` runs `make rehearse`.

`sam deploy` against moto "succeeds" hollowly (moto does not run the SAM transform, so the functions, the layer and
the state machine would be skipped), so the deploy is rehearsed step by step with the real tools:

1. `sam build` (the SAM CLI of .tools/sam) into .aws-sam/rehearse/, with its own cache;
2. a moto server on a free localhost port, and `sam package` of the built template into a bucket on it;
3. the SAM transform with aws-sam-translator (the one the SAM CLI ships, run with .tools/sam's Python: .venv has no
   samtranslator), with a managed-policy map from moto's IAM should the template name a managed policy;
4. `create_stack` of the transformed template on moto's CloudFormation, by TemplateURL as `resolve_s3` deploys it:
   once with every parameter at its default, once with every optional resource on (STACKS); CREATE_COMPLETE is
   required of both;
5. the stack's outputs against the template's Outputs whose Condition holds: a missing one fails the rehearsal
   (unless ALLOWED_MISSING_OUTPUTS gives its reason);
6. the packaged and transformed templates against CloudFormation's quotas;
7. what moto's CloudFormation skipped or did not really create, observed, not assumed: resources of the transformed
   template missing from the stack, and declared properties the created resource does not show when read back
   through moto's service APIs (READ_BACK). These are what the rehearsal does not prove.

Prints one line per figure, one "not rehearsed:" line per gap, and a summary line; exits 1 on any failure.
"""

import argparse
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
STACK = "lesionflow-rehearsal"
ARTIFACTS_BUCKET = "lesionflow-rehearsal-artifacts"
BUILD = ROOT / ".aws-sam" / "rehearse"  # .aws-sam is git-ignored; its own dir, so `make build` is not disturbed

# CloudFormation quotas that apply to `sam deploy` with resolve_s3 (the template goes to S3 and CreateStack reads it
# by TemplateURL), from "Understand CloudFormation quotas":
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
# (source: github.com/awsdocs/aws-cloudformation-user-guide, doc_source/cloudformation-limits.md): template body in an
# Amazon S3 object 1 MB, 500 resources, 200 parameters, 200 outputs. (A template body passed in the request itself
# may have only 51,200 bytes, which is why the deploy uses S3.)
TEMPLATE_BYTES_LIMIT = 1_048_576
RESOURCES_LIMIT = 500
PARAMETERS_LIMIT = 200
OUTPUTS_LIMIT = 200

# Outputs the rehearsal accepts missing from moto's stack, each with the reason (moto drops an output whose value
# refers to a resource it skipped). Empty: every output of the template must come back.
ALLOWED_MISSING_OUTPUTS: dict[str, str] = {}

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


class RehearsalError(Exception):
    """A step failed; the message is the one line to print."""


# ---------------------------------------------------------------------------------------------------- pure checks

@dataclass(frozen=True)
class Figure:
    name: str
    value: int
    limit: int

    @property
    def within(self) -> bool:
        return self.value <= self.limit

    def line(self) -> str:
        if self.name.startswith("template body"):
            value = f"{self.value:,} bytes ({self.value / 1024:.0f} KB)"
            limit = f"{self.limit:,} bytes (1 MB)"
        else:
            value, limit = f"{self.value}", f"{self.limit}"
        return f"  {self.name}: {value} of {limit}{'' if self.within else '  OVER THE LIMIT'}"


def quota_figures(template: dict, sizes: dict[str, int]) -> list[Figure]:
    """The template's figures against the CloudFormation quotas that apply to a deploy through S3: the size of each
    body in ``sizes`` (what S3 holds, what the transform makes of it), the counts of the transformed ``template``."""
    return [*(Figure(f"template body ({what})", size, TEMPLATE_BYTES_LIMIT) for what, size in sizes.items()),
            Figure("resources", len(template.get("Resources", {})), RESOURCES_LIMIT),
            Figure("parameters", len(template.get("Parameters", {})), PARAMETERS_LIMIT),
            Figure("outputs", len(template.get("Outputs", {})), OUTPUTS_LIMIT)]


def _resolver(template: dict, parameters: dict[str, str]):
    from lesionflow_local.template import Resolver  # the template reader of the local stack (installed with -e .)
    return Resolver(template, parameters=parameters, pseudo={
        "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"})


def holds(template: dict, condition: str | None, parameters: dict[str, str]) -> bool:
    """Whether a resource's or output's Condition is true for a stack in REGION with these parameter values."""
    if condition is None:
        return True
    return _resolver(template, parameters).condition(condition)


def broken_rules(template: dict, parameters: dict[str, str]) -> list[str]:
    """The AssertDescription of every Rule CloudFormation would refuse these parameters by, before it creates anything.
    moto's CloudFormation does not evaluate Rules: without this a rehearsal could pass a deploy AWS would refuse."""
    resolve = _resolver(template, parameters)
    broken = []
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not resolve._truth(rule["RuleCondition"]):
            continue
        broken += [f"Rule {name}: {assertion.get('AssertDescription', 'an assertion fails')}"
                   for assertion in rule["Assertions"] if not resolve._truth(assertion["Assert"])]
    return broken


def expected_outputs(template: dict, parameters: dict[str, str]) -> set[str]:
    return {name for name, output in template.get("Outputs", {}).items()
            if holds(template, output.get("Condition"), parameters)}


def expected_resources(template: dict, parameters: dict[str, str]) -> dict[str, str]:
    """Logical id -> type of every resource the stack should create."""
    return {name: resource["Type"] for name, resource in template.get("Resources", {}).items()
            if holds(template, resource.get("Condition"), parameters)}


def missing_outputs(expected: set[str], actual: set[str], allowed: dict[str, str]) -> tuple[list[str], list[str]]:
    """(missing outputs that fail the rehearsal, missing outputs the allow-list accepts), each sorted."""
    missing = expected - actual
    return sorted(missing - allowed.keys()), sorted(missing & allowed.keys())


def not_created(expected: dict[str, str], created: set[str]) -> Counter:
    """Resource type -> how many of the template's resources of that type the stack does not have."""
    return Counter(kind for name, kind in expected.items() if name not in created)


def referenced_resources(value) -> set[str]:
    """The logical ids a template value refers to (Ref, Fn::GetAtt, and ${Name} / ${Name.Attribute} in Fn::Sub)."""
    if isinstance(value, list):
        return set().union(*(referenced_resources(item) for item in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, inner in value.items():
        if key == "Ref" and isinstance(inner, str):
            found.add(inner)
        elif key == "Fn::GetAtt":
            found.add(inner[0] if isinstance(inner, list) else inner.split(".", 1)[0])
        elif key == "Fn::Sub":
            text = inner if isinstance(inner, str) else inner[0]
            found |= {name.split(".", 1)[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
            if not isinstance(inner, str):
                found |= referenced_resources(inner[1])
        else:
            found |= referenced_resources(inner)
    return {name for name in found if not name.startswith("AWS::")}


# ---------------------------------------------------------------------------------------------------- the tools

def run(command: list, env: dict, what: str, timeout: int = 900) -> subprocess.CompletedProcess:
    process = subprocess.run([str(part) for part in command], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=timeout)
    if process.returncode != 0:
        tail = "\n".join((process.stdout + process.stderr).strip().splitlines()[-15:])
        raise RehearsalError(f"{what} failed (exit {process.returncode}):\n{tail}")
    return process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MotoLog(logging.Handler):
    """moto's own words about the resources its CloudFormation skips: it logs "No Moto CloudFormation support for
    <type>" once per resource. Kept here instead of on stderr."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.unsupported: Counter = Counter()
        self.other: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(UNSUPPORTED):
            self.unsupported[message.removeprefix(UNSUPPORTED)] += 1
        else:
            self.other.append(message)


UNSUPPORTED = "No Moto CloudFormation support for "


def aws_env(endpoint: str) -> dict:
    """The environment of every AWS client here: moto's endpoint, dummy credentials, no profile of the user's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return env | DUMMY_CREDENTIALS | {
        "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "SAM_CLI_TELEMETRY": "0"}


def sam_build(sam: Path, template: Path, env: dict) -> tuple[Path, float]:
    started = time.monotonic()
    run([sam, "build", "--template-file", template, "--build-dir", BUILD / "build", "--cache-dir", BUILD / "cache",
         "--cached", "--parallel"], env, "sam build")
    return BUILD / "build" / "template.yaml", time.monotonic() - started


def sam_package(sam: Path, built: Path, packaged: Path, env: dict) -> None:
    run([sam, "package", "--template-file", built, "--s3-bucket", ARTIFACTS_BUCKET, "--s3-prefix", "lesionflow",
         "--output-template-file", packaged, "--use-json", "--region", REGION], env, "sam package")


def transform_with(translator_python: Path, packaged: Path, transformed: Path, parameters: dict, env: dict) -> None:
    """The SAM transform, in the Python that has aws-sam-translator (this file's `transform` command)."""
    run([translator_python, __file__, "transform", packaged, transformed, json.dumps(parameters)], env,
        "SAM transform")


def transform_command(packaged: Path, transformed: Path, parameters: dict) -> None:
    """Run by transform_with, in .tools/sam's Python: samtranslator's transform, as CloudFormation applies it."""
    import boto3
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # not its "unpublished metrics" warning
    template = json.loads(packaged.read_text())
    # What CloudFormation hands the transform: every parameter's value (defaults unless given) and the pseudo ones.
    values = {name: spec["Default"] for name, spec in template.get("Parameters", {}).items() if "Default" in spec}
    values |= parameters | {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}
    iam = boto3.client("iam")  # moto's, through AWS_ENDPOINT_URL: list_policies serves the managed-policy map
    transformed.write_text(json.dumps(transform(template, values, ManagedPolicyLoader(iam)), indent=1))


# ---------------------------------------------------------------------------------------------------- moto

def create_stack(clients, stack: str, template_url: str, parameters: dict) -> None:
    cloudformation = clients("cloudformation")
    try:
        cloudformation.create_stack(
            StackName=stack, TemplateURL=template_url,
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"])
        cloudformation.get_waiter("stack_create_complete").wait(
            StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    except Exception as error:  # a ClientError (validation) or a WaiterError (the stack failed)
        reasons = [f"{event['LogicalResourceId']} ({event['ResourceType']}): {event.get('ResourceStatusReason', '')}"
                   for event in _events(cloudformation, stack) if event["ResourceStatus"].endswith("FAILED")]
        status = _status(cloudformation, stack)
        said = " ".join(str(error).split())  # one line, even for moto's HTML page of an internal error
        raise RehearsalError(f"create_stack {stack}: {status or type(error).__name__}: {said[:300]}"
                             + "".join(f"\n  failed: {reason}" for reason in reasons))


def _events(cloudformation, stack: str) -> list[dict]:
    try:
        return cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
    except Exception:
        return []


def _status(cloudformation, stack: str) -> str | None:
    try:
        return cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except Exception:
        return None


def stack_resources(clients, stack: str) -> dict[str, dict]:
    """Logical id -> resource summary of what moto's stack holds (moto also lists a blank entry per resource it
    skipped: left out)."""
    paginator = clients("cloudformation").get_paginator("list_stack_resources")
    return {summary["LogicalResourceId"]: summary
            for page in paginator.paginate(StackName=stack) for summary in page["StackResourceSummaries"]
            if summary["LogicalResourceId"]}


# What a deploy must get right for the pipeline to run safely, read back from moto after create_stack: for each
# resource type, the properties checked and how. A check runs only where the template declares the property, and
# says whether the created resource shows it (``declared`` is the template's value, a literal where it can be one).
# A resource created without a declared property is "not rehearsed" for that property: moto ignored it.

def _client_value(call, *keys, missing=None):
    """``call()``'s value at ``keys``, or ``missing`` when the call fails (moto: "no such configuration")."""
    try:
        value = call()
    except Exception:
        return missing
    for key in keys:
        value = value.get(key, missing) if isinstance(value, dict) else missing
    return value


def _bucket_checks(clients, name: str) -> dict:
    s3 = clients("s3")
    return {
        "BucketEncryption": lambda d: bool(_client_value(lambda: s3.get_bucket_encryption(Bucket=name),
                                                         "ServerSideEncryptionConfiguration", "Rules")),
        "VersioningConfiguration": lambda d: _client_value(lambda: s3.get_bucket_versioning(Bucket=name), "Status")
        == d.get("Status"),
        "PublicAccessBlockConfiguration": lambda d: _client_value(
            lambda: s3.get_public_access_block(Bucket=name), "PublicAccessBlockConfiguration") is not None,
        "LifecycleConfiguration": lambda d: len(_client_value(
            lambda: s3.get_bucket_lifecycle_configuration(Bucket=name), "Rules", missing=[]) or [])
        == len(d.get("Rules", [])),
        "OwnershipControls": lambda d: bool(_client_value(lambda: s3.get_bucket_ownership_controls(Bucket=name),
                                                          "OwnershipControls", "Rules")),
        "NotificationConfiguration": lambda d: all(
            _client_value(lambda: s3.get_bucket_notification_configuration(Bucket=name), key)
            for key, value in d.items() if value),
    }


def _table_checks(clients, name: str) -> dict:
    table = _client_value(lambda: clients("dynamodb").describe_table(TableName=name), "Table", missing={})
    backups = lambda: clients("dynamodb").describe_continuous_backups(TableName=name)  # noqa: E731
    return {
        "GlobalSecondaryIndexes": lambda d: len(table.get("GlobalSecondaryIndexes", [])) == len(d),
        "PointInTimeRecoverySpecification": lambda d: (_client_value(
            backups, "ContinuousBackupsDescription", "PointInTimeRecoveryDescription", "PointInTimeRecoveryStatus")
            == "ENABLED") == bool(d.get("PointInTimeRecoveryEnabled")),
        "SSESpecification": lambda d: bool(table.get("SSEDescription")) == bool(d.get("SSEEnabled")),
    }


def _function_checks(clients, name: str) -> dict:
    config = _client_value(lambda: clients("lambda").get_function(FunctionName=name), "Configuration", missing={})
    return {
        "Layers": lambda d: len(config.get("Layers", [])) == len(d),
        "Architectures": lambda d: config.get("Architectures") == d,
        "TracingConfig": lambda d: config.get("TracingConfig", {}).get("Mode") == d.get("Mode"),
        "Environment": lambda d: set(config.get("Environment", {}).get("Variables", {})) == set(d.get("Variables", {})),
        "MemorySize": lambda d: config.get("MemorySize") == d,
        "Timeout": lambda d: config.get("Timeout") == d,
    }


def _state_machine_checks(clients, arn: str) -> dict:
    described = _client_value(lambda: clients("stepfunctions").describe_state_machine(stateMachineArn=arn), missing={})
    states = lambda text: set(json.loads(text or "{}").get("States", {}))  # noqa: E731
    location = lambda d: clients("s3").get_object(Bucket=d["Bucket"], Key=d["Key"])["Body"].read()  # noqa: E731
    return {
        "DefinitionS3Location": lambda d: bool(states(location(d))) and states(described.get("definition")) == states(
            location(d)),
        "DefinitionString": lambda d: bool(states(described.get("definition"))),
        "LoggingConfiguration": lambda d: described.get("loggingConfiguration", {}).get("level") == d.get("Level"),
        "TracingConfiguration": lambda d: described.get("tracingConfiguration", {}).get("enabled") == d.get("Enabled"),
    }


def _log_group_checks(clients, name: str) -> dict:
    groups = _client_value(lambda: clients("logs").describe_log_groups(logGroupNamePrefix=name), "logGroups",
                           missing=[])
    group = next((g for g in groups if g["logGroupName"] == name), {})
    return {"KmsKeyId": lambda d: bool(group.get("kmsKeyId")),
            "RetentionInDays": lambda d: group.get("retentionInDays") == d}


def _queue_checks(clients, url: str) -> dict:
    attributes = _client_value(lambda: clients("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
                               "Attributes", missing={})
    return {"KmsMasterKeyId": lambda d: bool(attributes.get("KmsMasterKeyId")),
            "RedrivePolicy": lambda d: bool(attributes.get("RedrivePolicy"))}


def _topic_checks(clients, arn: str) -> dict:
    attributes = _client_value(lambda: clients("sns").get_topic_attributes(TopicArn=arn), "Attributes", missing={})
    return {"KmsMasterKeyId": lambda d: bool(attributes.get("KmsMasterKeyId"))}


def _role_checks(clients, name: str) -> dict:
    iam = clients("iam")
    return {"ManagedPolicyArns": lambda d: len(_client_value(lambda: iam.list_attached_role_policies(RoleName=name),
                                                             "AttachedPolicies", missing=[])) == len(d),
            "Policies": lambda d: len(_client_value(lambda: iam.list_role_policies(RoleName=name), "PolicyNames",
                                                    missing=[])) == len(d)}


def _key_checks(clients, key_id: str) -> dict:
    kms = clients("kms")

    def statements() -> int:
        policy = _client_value(lambda: kms.get_key_policy(KeyId=key_id, PolicyName="default"), "Policy")
        policy = json.loads(policy) if isinstance(policy, str) else policy or {}
        return len(policy.get("Statement", []))

    return {"KeyPolicy": lambda d: statements() == len(d.get("Statement", [])),
            "EnableKeyRotation": lambda d: _client_value(lambda: kms.get_key_rotation_status(KeyId=key_id),
                                                         "KeyRotationEnabled") == d}


def _mapping_checks(clients, uuid: str) -> dict:
    mapping = _client_value(lambda: clients("lambda").get_event_source_mapping(UUID=uuid), missing={})
    return {"FunctionResponseTypes": lambda d: mapping.get("FunctionResponseTypes") == d,
            "ScalingConfig": lambda d: bool(mapping.get("ScalingConfig"))}


READ_BACK = {
    "AWS::S3::Bucket": _bucket_checks,
    "AWS::DynamoDB::Table": _table_checks,
    "AWS::Lambda::Function": _function_checks,
    "AWS::Lambda::EventSourceMapping": _mapping_checks,
    "AWS::StepFunctions::StateMachine": _state_machine_checks,
    "AWS::Logs::LogGroup": _log_group_checks,
    "AWS::SQS::Queue": _queue_checks,
    "AWS::SNS::Topic": _topic_checks,
    "AWS::IAM::Role": _role_checks,
    "AWS::KMS::Key": _key_checks,
}


def declared(value, template: dict, parameters: dict[str, str]):
    """A property's value as the stack sees it where that is knowable offline: an Fn::If on the condition's branch,
    a Ref to a parameter as its value (a number as an int), None for ``Ref AWS::NoValue``; anything else unchanged."""
    if isinstance(value, dict) and list(value) == ["Fn::If"]:
        condition, when_true, when_false = value["Fn::If"]
        return declared(when_true if holds(template, condition, parameters) else when_false, template, parameters)
    if isinstance(value, dict) and list(value) == ["Ref"]:
        if value["Ref"] == "AWS::NoValue":
            return None
        spec = template.get("Parameters", {}).get(value["Ref"])
        if spec is not None:
            literal = str(parameters.get(value["Ref"], spec.get("Default")))
            return int(literal) if spec.get("Type") == "Number" and literal.isdigit() else literal
    return value


def hollow_properties(clients, template: dict, parameters: dict[str, str],
                      created: dict[str, dict]) -> tuple[Counter, int]:
    """("<type> <property>" -> how many created resources do not show a property the template declares, how many
    declared properties were read back), with the checks of READ_BACK."""
    gaps: Counter = Counter()
    checked = 0
    for name, summary in created.items():
        resource = template["Resources"][name]
        checks_of = READ_BACK.get(resource["Type"])
        if checks_of is None:
            continue
        checks = checks_of(clients, summary["PhysicalResourceId"])
        for prop, value in resource.get("Properties", {}).items():
            value = declared(value, template, parameters)
            if prop in checks and value not in (None, [], {}):
                checked += 1
                try:
                    shown = checks[prop](value)
                except Exception:  # e.g. a DefinitionS3Location whose object moto cannot serve: not shown either
                    shown = False
                if not shown:
                    gaps[f"{resource['Type']} {prop}"] += 1
    return gaps, checked


# ---------------------------------------------------------------------------------------------------- main

@dataclass
class StackResult:
    name: str
    status: str
    outputs: tuple[int, int]  # (came back, expected)
    created: int
    expected: int
    figures: dict[str, Figure]
    not_rehearsed: Counter  # "<type>" or "<type> <property>" -> count
    how: dict[str, str]  # the same keys -> "skipped" or "created without it"
    failures: list[str]


def rehearse_stack(clients, stack: str, parameters: dict[str, str], packaged: Path, work: Path, tools: dict,
                   moto_log: MotoLog) -> StackResult:
    """Transform, create and check one stack; prints what it sees."""
    print(f"stack {stack} ({', '.join(f'{k}={v}' for k, v in parameters.items()) or 'every parameter at its default'})")
    transformed_path = work / f"{stack}.template.json"
    transform_with(tools["translator_python"], packaged, transformed_path, parameters, tools["env"])
    transformed = json.loads(transformed_path.read_text())
    body = transformed_path.read_bytes()
    key = f"lesionflow/{stack}.template.json"
    clients("s3").put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=body)
    failures = broken_rules(transformed, parameters)
    for failure in failures:
        print(f"  CloudFormation would refuse the parameters: {failure}")
    moto_log.unsupported.clear()
    started = time.monotonic()
    create_stack(clients, stack, f"{tools['endpoint']}/{ARTIFACTS_BUCKET}/{key}", parameters)
    status = _status(clients("cloudformation"), stack)
    print(f"  create_stack: {status} in {time.monotonic() - started:.0f} s")
    failures = [f"{stack}: {failure}" for failure in failures]

    # outputs: the template's whose Condition holds at these parameters must all come back
    expected = expected_outputs(transformed, parameters)
    description = clients("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    actual = {output["OutputKey"] for output in description.get("Outputs", [])}
    blank = sorted(output["OutputKey"] for output in description.get("Outputs", []) if not output.get("OutputValue"))
    expected_all = expected_resources(transformed, parameters)
    created = stack_resources(clients, stack)
    missing, allowed = missing_outputs(expected, actual, ALLOWED_MISSING_OUTPUTS)
    for name in missing:
        skipped = sorted(f"{ref} ({expected_all[ref]})" for ref in
                         referenced_resources(transformed["Outputs"][name]["Value"])
                         if ref in expected_all and ref not in created)
        failures.append(f"{stack}: missing output {name}" + (f" (moto did not create {', '.join(skipped)})"
                                                             if skipped else ""))
    for name in allowed:
        print(f"  missing output allowed: {name}: {ALLOWED_MISSING_OUTPUTS[name]}")
    if blank:  # moto's doing (a resource without a physical id), not the template's: said, not failed
        print(f"  outputs moto returned empty: {', '.join(blank)}")
    false = len(transformed.get("Outputs", {})) - len(expected)
    print(f"  outputs: {len(expected & actual)}/{len(expected)}"
          + (f" ({false} with a false Condition)" if false else ""))

    # quotas
    figures = {figure.name: figure for figure in quota_figures(
        transformed, {"packaged, as S3 holds it": packaged.stat().st_size, "transformed": len(body)})}
    print("  CloudFormation quotas:")
    for figure in figures.values():
        print(f"  {figure.line()}")
        if not figure.within:
            failures.append(f"{stack}: over the CloudFormation quota: {figure.name} {figure.value} > {figure.limit}")

    # what moto did not rehearse: resources it skipped, properties it dropped
    skipped = not_created(expected_all, set(created))
    hollow, checked = hollow_properties(clients, transformed, parameters, created)
    said = {kind: "skipped, moto has no CloudFormation support for it" if moto_log.unsupported.get(kind)
            else "skipped" for kind in skipped}
    said |= {what: "created without it" for what in hollow}
    print(f"  created on moto: {len(created)}/{len(expected_all)} resources; {sum(skipped.values())} skipped; "
          f"{checked} declared properties read back, {sum(hollow.values())} of them missing")
    for kind in sorted(set(moto_log.unsupported) - set(skipped)):
        print(f"  moto also reported no CloudFormation support for {kind}")
    for message in moto_log.other:
        print(f"  moto: {message}")
    moto_log.other.clear()
    return StackResult(stack, status, (len(expected & actual), len(expected)), len(created), len(expected_all),
                       figures, skipped + hollow, said, failures)


# The stacks rehearsed: the default deploy, and one with every optional resource of the template on (an endpoint
# created from the Hub on autoscaled instances, an alarm e-mail subscription), so that what moto skips among them is
# observed too. The Rules of the template must hold for both (broken_rules checks them: moto does not).
STACKS = {
    f"{STACK}-defaults": {},
    f"{STACK}-everything": {"EndpointSource": "huggingface", "EndpointCompute": "instance", "InitialInstanceCount": "1",
                            "MaxInstanceCount": "2", "AlarmEmail": "alarms@example.com",
                            "HuggingFaceModelRevision": "0123456789abcdef0123456789abcdef01234567"},
}


def rehearse(sam: Path, translator_python: Path, template_path: Path) -> int:
    import boto3
    from moto.server import ThreadedMotoServer

    total_started = time.monotonic()
    built, build_seconds = sam_build(sam, template_path, aws_env("http://localhost:1"))  # build calls no AWS API
    print(f"sam build: {build_seconds:.0f} s")

    port = free_port()
    endpoint = f"http://localhost:{port}"  # not 127.0.0.1: moto would read "127" as a bucket in the TemplateURL
    env = aws_env(endpoint)
    os.environ.update({key: value for key, value in env.items() if key.startswith("AWS_")})  # nothing reaches AWS
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request
    moto_log = MotoLog()
    logging.getLogger("moto").addHandler(moto_log)
    # moto also warns once per skipped type ("Tried to parse ..."): its log above says it once per resource
    warnings.filterwarnings("ignore", message="Tried to parse .* not supported by moto", category=UserWarning)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        session = boto3.session.Session(region_name=REGION)
        cache = {}

        def clients(service: str):
            if service not in cache:
                cache[service] = session.client(service, endpoint_url=endpoint)
            return cache[service]

        with tempfile.TemporaryDirectory(prefix="lesionflow-rehearse-") as work:
            work = Path(work)
            clients("s3").create_bucket(Bucket=ARTIFACTS_BUCKET)
            packaged = work / "packaged.json"
            started = time.monotonic()
            sam_package(sam, built, packaged, env)
            print(f"sam package: {time.monotonic() - started:.0f} s, into s3://{ARTIFACTS_BUCKET} on moto")
            tools = {"translator_python": translator_python, "env": env, "endpoint": endpoint}
            results = [rehearse_stack(clients, stack, parameters, packaged, work, tools, moto_log)
                       for stack, parameters in STACKS.items()]
    finally:
        server.stop()
        logging.getLogger("moto").removeHandler(moto_log)

    failures = [failure for result in results for failure in result.failures]
    for failure in failures:
        print(f"FAILED: {failure}")
    default, everything = results[0], results[-1]
    gaps, how = Counter(), {}
    for result in results:
        gaps |= result.not_rehearsed  # the most of each kind any stack had
        how |= result.how
    for kind, count in sorted(gaps.items(), key=lambda item: (how[item[0]] == "created without it", item[0])):
        only = "" if kind in default.not_rehearsed else f" (only in {everything.name})"
        print(f"not rehearsed: {kind} ({count}): {how[kind]}{only}")
    largest = max(figure.value for result in results for name, figure in result.figures.items()
                  if name.startswith("template body"))
    summary = (f"rehearsal: {', '.join(sorted({result.status for result in results}))} "
               f"({len(results)} stacks), {default.outputs[0]}/{default.outputs[1]} outputs "
               f"({everything.outputs[0]}/{everything.outputs[1]} with every resource on), "
               f"template {largest / 1024:.0f} KB of 1 MB, "
               f"{default.figures['resources'].value}/{RESOURCES_LIMIT} resources, "
               f"{default.figures['parameters'].value}/{PARAMETERS_LIMIT} parameters, "
               f"{default.figures['outputs'].value}/{OUTPUTS_LIMIT} outputs, "
               f"{default.created}/{default.expected} resources created on moto "
               f"({everything.created}/{everything.expected} with every resource on), "
               f"sam build {build_seconds:.0f} s, {time.monotonic() - total_started:.0f} s in all")
    print(summary if not failures else summary.replace("rehearsal:", "rehearsal FAILED:", 1))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["transform"]:  # internal: run by transform_with in the SAM CLI's Python
        transform_command(Path(argv[1]), Path(argv[2]), json.loads(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sam", type=Path, required=True, help="the SAM CLI (.tools/sam/bin/sam)")
    parser.add_argument("--translator-python", type=Path,
                        help="a Python with aws-sam-translator (default: the SAM CLI's own, beside --sam)")
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    args = parser.parse_args(argv)
    translator_python = args.translator_python or args.sam.parent / "python"
    try:
        return rehearse(args.sam.absolute(), translator_python.absolute(), args.template.absolute())
    except RehearsalError as error:
        print(f"rehearsal FAILED: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())

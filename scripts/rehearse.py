"""Deploy rehearsal without an AWS account: `make rehearse` runs this, and `make test` runs `make rehearse`.

`sam deploy` against moto "succeeds" hollowly (moto does not run the SAM transform, so the functions, the layer and
the state machine would be skipped), so the deploy is rehearsed step by step with the real tools:

1. `sam build` (the SAM CLI of .tools/sam) into .aws-sam/rehearse/, with its own cache;
2. a moto server on a port the OS picks (port 0: no race; its start is bounded, MOTO_START_SECONDS), and `sam package`
   of the built template into a bucket on it;
3. the SAM transform with aws-sam-translator (the one the SAM CLI ships, run with .tools/sam's Python: .venv has no
   samtranslator), with a managed-policy map from moto's IAM should the template name a managed policy;
4. the parameters against their constraints and the template's Rules, and the transformed template's IAM resources
   against the capabilities samconfig.toml grants `sam deploy` (moto checks none of these);
5. `create_stack` of the transformed template on moto's CloudFormation, by TemplateURL as `resolve_s3` deploys it,
   with those capabilities, for each of STACKS (the defaults; a Hub model on autoscaled instances with every optional
   resource; a model artifact on a serverless endpoint, EXPRESS, tensor-npy); CREATE_COMPLETE is required of each;
6. the stack's outputs against the template's Outputs whose Condition holds: a missing one fails the rehearsal
   (unless ALLOWED_MISSING_OUTPUTS gives its reason), and so does a hollow one (empty, "${", "None", or referring to
   a resource moto did not create; unless ALLOWED_HOLLOW_OUTPUTS gives its reason);
7. the packaged and transformed templates against CloudFormation's quotas;
8. what moto's CloudFormation skipped or did not really create, observed, not assumed: resources of the transformed
   template missing from the stack, and declared properties the created resource does not show when read back
   through moto's service APIs (READ_BACK). These are what the rehearsal does not prove. Every declared property of
   a created resource that READ_BACK has no check for is listed as "not read back": nothing counts as rehearsed
   without being read back.

Prints one line per figure, the template branches the stacks took, one "not rehearsed:" line per gap, one
"not read back:" line per unchecked property, and a summary line; exits 1 on any failure.
"""

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
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

# Outputs the rehearsal accepts hollow (empty, with an unresolved "${", the text "None", or referring to a resource moto
# did not create), each with the reason. Empty: every output that comes back must be a real value.
ALLOWED_HOLLOW_OUTPUTS: dict[str, str] = {}

# The capabilities a template's resources need from CreateStack/CreateChangeSet, from "CreateStack", Capabilities:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html. CAPABILITY_NAMED_IAM also
# acknowledges unnamed IAM resources. CAPABILITY_AUTO_EXPAND is not needed: `sam deploy` creates a change set, to which
# it does not apply, and this rehearsal submits the already-transformed template.
IAM_TYPES = {"AWS::IAM::AccessKey", "AWS::IAM::Group", "AWS::IAM::InstanceProfile", "AWS::IAM::Policy",
             "AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::UserToGroupAddition", "AWS::IAM::ManagedPolicy"}
IAM_NAME_PROPERTIES = {"AWS::IAM::Group": "GroupName", "AWS::IAM::InstanceProfile": "InstanceProfileName",
                       "AWS::IAM::ManagedPolicy": "ManagedPolicyName", "AWS::IAM::Role": "RoleName",
                       "AWS::IAM::User": "UserName"}
SAMCONFIG = ROOT / "samconfig.toml"

MOTO_START_SECONDS = 30  # ThreadedMotoServer.start() waits unbounded for its bind; this rehearsal waits this long

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


def broken_constraints(template: dict, parameters: dict[str, str]) -> list[str]:
    """Every parameter value CloudFormation would refuse by its AllowedValues, AllowedPattern, MinValue/MaxValue or
    MinLength/MaxLength (moto's CloudFormation checks none of them)."""
    broken = []
    for name, value in parameters.items():
        spec = template.get("Parameters", {}).get(name)
        if spec is None:
            broken.append(f"Parameter {name}: not a parameter of the template")
            continue
        text = str(value)
        if "AllowedValues" in spec and text not in [str(allowed) for allowed in spec["AllowedValues"]]:
            broken.append(f"Parameter {name}: {text!r} is not one of its AllowedValues")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], text):
            broken.append(f"Parameter {name}: {text!r} does not match its AllowedPattern")
        if spec.get("Type") == "Number":
            try:
                number = float(text)
            except ValueError:
                broken.append(f"Parameter {name}: {text!r} is not a Number")
                continue
            if "MinValue" in spec and number < float(spec["MinValue"]):
                broken.append(f"Parameter {name}: {text} is below its MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                broken.append(f"Parameter {name}: {text} is above its MaxValue {spec['MaxValue']}")
        if "MinLength" in spec and len(text) < int(spec["MinLength"]):
            broken.append(f"Parameter {name}: shorter than its MinLength {spec['MinLength']}")
        if "MaxLength" in spec and len(text) > int(spec["MaxLength"]):
            broken.append(f"Parameter {name}: longer than its MaxLength {spec['MaxLength']}")
    return broken


def granted_capabilities(samconfig: str) -> list[str]:
    """The capabilities `sam deploy` passes: ``[default.deploy.parameters] capabilities`` of samconfig.toml's text (a
    space-separated string or a list), none without it."""
    deploy = tomllib.loads(samconfig).get("default", {}).get("deploy", {}).get("parameters", {})
    granted = deploy.get("capabilities", [])
    return granted.split() if isinstance(granted, str) else list(granted)


def missing_capabilities(template: dict, granted: list[str]) -> list[str]:
    """The capabilities CloudFormation would refuse the stack without (InsufficientCapabilities), given ``granted``.
    moto's create_stack does not check capabilities at all (moto 5.2.5 accepts a stack of IAM roles with none), so
    this is checked here."""
    resources = template.get("Resources", {}).values()
    needs = set()
    if any(resource["Type"] in IAM_TYPES for resource in resources):
        needs.add("CAPABILITY_IAM")
    if any(IAM_NAME_PROPERTIES.get(resource["Type"]) in resource.get("Properties", {}) for resource in resources):
        needs.add("CAPABILITY_NAMED_IAM")
    if "CAPABILITY_NAMED_IAM" in granted:
        needs.discard("CAPABILITY_IAM")
    return sorted(needs - set(granted))


def hollow_outputs(values: dict[str, str | None], template: dict, expected: dict[str, str], created: set[str],
                   allowed: dict[str, str]) -> tuple[list[str], list[str]]:
    """(outputs that came back hollow, each with why, which fail the rehearsal; the names of those ``allowed``
    accepts). Hollow: empty, an unresolved "${", the text "None", or a Value that refers to a resource the stack
    should have but moto did not create."""
    failing, accepted = [], []
    for name, value in sorted(values.items()):
        value = value or ""
        why = []
        if not value.strip():
            why.append("empty")
        if "${" in value:
            why.append("an unresolved ${")
        if "None" in value:
            why.append('"None"')
        output = template.get("Outputs", {}).get(name, {})
        why += [f"refers to {ref} ({expected[ref]}), which moto did not create"
                for ref in sorted(referenced_resources(output.get("Value"))) if ref in expected and ref not in created]
        if why:
            if name in allowed:
                accepted.append(name)
            else:
                failing.append(f"output {name} is hollow ({'; '.join(why)}): {value!r}")
    return failing, accepted


def branches(template: dict, stacks: list[dict[str, str]]) -> dict[str, set[bool]]:
    """Condition -> the truth values it had across the stacks' parameters."""
    return {name: {holds(template, name, parameters) for parameters in stacks}
            for name in template.get("Conditions", {})}


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


def start_moto(server, timeout: float = MOTO_START_SECONDS) -> tuple[str, int]:
    """Start ``server`` (a ThreadedMotoServer, on port 0 so the OS picks a free port: no race with another process)
    and return its real (host, port), or raise RehearsalError within ``timeout`` s. moto 5.2.5's start() waits without
    a bound for its server thread to bind, and waits forever if the bind raises: so it is called in a thread of its
    own, and an exception of the server thread is caught (instead of its traceback) and named."""
    errors: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        starter = threading.Thread(target=server.start, name="moto-start", daemon=True)
        starter.start()
        deadline = time.monotonic() + timeout
        while starter.is_alive() and not errors and time.monotonic() < deadline:
            starter.join(0.05)
    finally:
        threading.excepthook = previous
    if errors or starter.is_alive():
        why = f": {type(errors[0]).__name__}: {errors[0]}" if errors else f" within {timeout:g} s"
        raise RehearsalError(f"the moto server did not start{why}")
    return server.get_host_and_port()


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

def create_stack(clients, stack: str, template_url: str, parameters: dict, capabilities: list[str]) -> None:
    """create_stack with the capabilities samconfig.toml grants `sam deploy` (moto does not check them:
    missing_capabilities does)."""
    cloudformation = clients("cloudformation")
    try:
        cloudformation.create_stack(
            StackName=stack, TemplateURL=template_url,
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
            Capabilities=capabilities)
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
        "BucketName": lambda d: covers(name, d),
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
        "KeySchema": lambda d: covers(table.get("KeySchema"), d),
        "AttributeDefinitions": lambda d: covers(sorted(table.get("AttributeDefinitions", []), key=str),
                                                 sorted(d, key=str)),
        "BillingMode": lambda d: covers(table.get("BillingModeSummary", {}).get("BillingMode"), d),
        "DeletionProtectionEnabled": lambda d: covers(table.get("DeletionProtectionEnabled"), d),
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
        "Handler": lambda d: covers(config.get("Handler"), d),
        "Runtime": lambda d: covers(config.get("Runtime"), d),
        "Role": lambda d: covers(config.get("Role"), d),
        "Description": lambda d: covers(config.get("Description"), d),
        "LoggingConfig": lambda d: covers(config.get("LoggingConfig"), d),
        "Code": lambda d: bool(config.get("CodeSize")),
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
        "StateMachineType": lambda d: covers(described.get("type"), d),  # STANDARD or EXPRESS
        "RoleArn": lambda d: covers(described.get("roleArn"), d),
    }


def _log_group_checks(clients, name: str) -> dict:
    groups = _client_value(lambda: clients("logs").describe_log_groups(logGroupNamePrefix=name), "logGroups",
                           missing=[])
    group = next((g for g in groups if g["logGroupName"] == name), {})
    return {"KmsKeyId": lambda d: bool(group.get("kmsKeyId")),
            "RetentionInDays": lambda d: group.get("retentionInDays") == d,
            "LogGroupName": lambda d: covers(group.get("logGroupName"), d)}


def _queue_checks(clients, url: str) -> dict:
    attributes = _client_value(lambda: clients("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
                               "Attributes", missing={})
    return {"KmsMasterKeyId": lambda d: bool(attributes.get("KmsMasterKeyId")),
            "RedrivePolicy": lambda d: bool(attributes.get("RedrivePolicy")),
            "VisibilityTimeout": lambda d: covers(attributes.get("VisibilityTimeout"), d),
            "MessageRetentionPeriod": lambda d: covers(attributes.get("MessageRetentionPeriod"), d),
            "KmsDataKeyReusePeriodSeconds": lambda d: covers(attributes.get("KmsDataKeyReusePeriodSeconds"), d)}


def _topic_checks(clients, arn: str) -> dict:
    attributes = _client_value(lambda: clients("sns").get_topic_attributes(TopicArn=arn), "Attributes", missing={})
    return {"KmsMasterKeyId": lambda d: bool(attributes.get("KmsMasterKeyId")),
            "DisplayName": lambda d: covers(attributes.get("DisplayName"), d)}


def _role_checks(clients, name: str) -> dict:
    iam = clients("iam")
    role = _client_value(lambda: iam.get_role(RoleName=name), "Role", missing={})
    trust = role.get("AssumeRolePolicyDocument")
    trust = json.loads(trust) if isinstance(trust, str) else trust or {}
    return {"AssumeRolePolicyDocument": lambda d: covers(trust.get("Statement"), d.get("Statement")),
            "Description": lambda d: covers(role.get("Description"), d),
            "ManagedPolicyArns": lambda d: len(_client_value(lambda: iam.list_attached_role_policies(RoleName=name),
                                                             "AttachedPolicies", missing=[])) == len(d),
            "Policies": lambda d: len(_client_value(lambda: iam.list_role_policies(RoleName=name), "PolicyNames",
                                                    missing=[])) == len(d)}


def _key_checks(clients, key_id: str) -> dict:
    # No Description check: moto 5.2.5's DescribeKey raises on a key its CloudFormation created (it keeps the policy
    # as an object, not JSON text), so the key's Description is listed as not read back.
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
            "ScalingConfig": lambda d: bool(mapping.get("ScalingConfig")),
            "BatchSize": lambda d: covers(mapping.get("BatchSize"), d),
            "MaximumBatchingWindowInSeconds": lambda d: covers(mapping.get("MaximumBatchingWindowInSeconds"), d),
            "EventSourceArn": lambda d: covers(mapping.get("EventSourceArn"), d),
            "FunctionName": lambda d: covers(mapping.get("FunctionArn", "").split(":function:")[-1], d)}



@dataclass(frozen=True)
class Refers:
    """A declared value that only the deploy knows (a GetAtt, a Sub of one), standing for the physical ids of the
    created resources it refers to: a value read back shows it when it contains one of them or is contained in one
    (an ARN holds its name; a name is part of its ARN)."""
    ids: tuple[str, ...]


def _intrinsic(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith(("Ref", "Fn::"))


def declared(value, template: dict, parameters: dict[str, str], physical: dict[str, str] | None = None,
             stack: str | None = None):
    """A property's value as the stack sees it where that is knowable offline, all the way down: an Fn::If on the
    condition's branch, a Ref to a parameter as its value (a number as an int), None for ``Ref AWS::NoValue`` (and
    left out of a list or object), a Sub, FindInMap, Join, Select or Split resolved where it can be (a Ref to a
    created resource as its ``physical`` id, AWS::StackName as ``stack``); a value still unknown is a Refers to the
    created resources it names, or stays as it is."""
    again = lambda inner: declared(inner, template, parameters, physical, stack)  # noqa: E731
    if isinstance(value, list):
        return [item for item in map(again, value) if item is not None]
    if not isinstance(value, dict):
        return value
    if not _intrinsic(value):
        return {key: item for key, item in ((key, again(inner)) for key, inner in value.items()) if item is not None}
    (function, argument), = value.items()
    if function == "Fn::If":
        condition, when_true, when_false = argument
        return again(when_true if holds(template, condition, parameters) else when_false)
    if function == "Ref":
        if argument == "AWS::NoValue":
            return None
        spec = template.get("Parameters", {}).get(argument)
        if spec is not None:
            literal = str(parameters.get(argument, spec.get("Default")))
            return int(literal) if spec.get("Type") == "Number" and literal.isdigit() else literal
        if physical and argument in physical:
            return physical[argument]
    elif function in ("Fn::Sub", "Fn::FindInMap", "Fn::Join", "Fn::Select", "Fn::Split"):
        resolve = _resolver(template, parameters)
        resolve.names = dict(physical or {})
        if stack:
            resolve.pseudo["AWS::StackName"] = stack
        try:
            return resolve(value)
        except Exception:  # a GetAtt, or a name only the deploy knows
            pass
    ids = tuple(physical[name] for name in sorted(referenced_resources(value)) if physical and name in physical)
    return Refers(ids) if ids else value


def _same_scalar(shown, value) -> bool:
    def text(item) -> str:
        if isinstance(item, bool):
            return str(item).lower()
        if isinstance(item, (int, float)) and float(item).is_integer():
            return str(int(item))
        return str(item)
    return shown is not None and text(shown) == text(value)


def covers(shown, value) -> bool:
    """Whether a value read back from moto shows the declared ``value``: every key of a declared object (a read-back
    object may have more), every item of a declared list in order, equal scalars (1 == "1" == 1.0, True == "true"); a
    Refers by containment; a declared value nothing offline can know, by being there at all."""
    if isinstance(value, Refers):  # the same resource: one contains the other, or they end in the same name
        last = lambda text: re.split(r"[/:]", text)[-1]  # noqa: E731 (a queue's URL and its ARN end in its name)
        return isinstance(shown, str) and bool(shown) and any(
            i in shown or shown in i or last(i) == last(shown) for i in value.ids)
    if _intrinsic(value):
        return shown not in (None, "", [], {})
    if isinstance(value, dict):
        return isinstance(shown, dict) and all(key in shown and covers(shown[key], inner)
                                               for key, inner in value.items())
    if isinstance(value, list):
        return (isinstance(shown, list) and len(shown) == len(value)
                and all(covers(item, inner) for item, inner in zip(shown, value)))
    return _same_scalar(shown, value)


def _name_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _sagemaker_endpoint_checks(clients, arn: str) -> dict:
    endpoint = _client_value(lambda: clients("sagemaker").describe_endpoint(EndpointName=_name_of(arn)), missing={})
    return {"EndpointName": lambda d: covers(endpoint.get("EndpointName"), d),  # the name the pipeline invokes
            "EndpointConfigName": lambda d: covers(endpoint.get("EndpointConfigName"), d)}


def _sagemaker_endpoint_config_checks(clients, arn: str) -> dict:
    config = _client_value(lambda: clients("sagemaker").describe_endpoint_config(EndpointConfigName=_name_of(arn)),
                           missing={})
    return {"ProductionVariants": lambda d: covers(config.get("ProductionVariants"), d),  # serverless or instances
            "KmsKeyId": lambda d: covers(config.get("KmsKeyId"), d)}


def _sagemaker_model_checks(clients, arn: str) -> dict:
    model = _client_value(lambda: clients("sagemaker").describe_model(ModelName=_name_of(arn)), missing={})
    return {"PrimaryContainer": lambda d: covers(model.get("PrimaryContainer"), d),  # image, artifact, environment
            "EnableNetworkIsolation": lambda d: covers(model.get("EnableNetworkIsolation"), d),
            "ExecutionRoleArn": lambda d: covers(model.get("ExecutionRoleArn"), d)}


def _layer_checks(clients, arn: str) -> dict:
    parts = arn.split(":")  # arn:aws:lambda:<region>:<account>:layer:<name>:<version>
    name, version = (parts[6], parts[7]) if len(parts) == 8 and parts[7].isdigit() else (None, None)
    layer = _client_value(lambda: clients("lambda").get_layer_version(LayerName=name, VersionNumber=int(version)),
                          missing={}) if name else {}  # moto has no get_layer_version_by_arn
    return {"LayerName": lambda d: covers(name, d),
            "Description": lambda d: covers(layer.get("Description"), d),
            "CompatibleRuntimes": lambda d: covers(layer.get("CompatibleRuntimes"), d),
            "CompatibleArchitectures": lambda d: covers(layer.get("CompatibleArchitectures"), d),
            "Content": lambda d: bool(layer.get("Content", {}).get("CodeSize"))}


def _dashboard_checks(clients, name: str) -> dict:
    dashboard = _client_value(lambda: clients("cloudwatch").get_dashboard(DashboardName=name), missing={})

    def body(d) -> bool:
        shown = json.loads(dashboard.get("DashboardBody") or "{}")
        return covers(shown, json.loads(d)) if isinstance(d, str) else bool(shown.get("widgets"))  # a Sub of a GetAtt
    return {"DashboardName": lambda d: covers(dashboard.get("DashboardName"), d), "DashboardBody": body}


def _alias_checks(clients, name: str) -> dict:
    aliases = _client_value(lambda: clients("kms").list_aliases(), "Aliases", missing=[])
    alias = next((a for a in aliases if a["AliasName"] == name), {})
    return {"AliasName": lambda d: covers(alias.get("AliasName"), d),
            "TargetKeyId": lambda d: covers(alias.get("TargetKeyId"), d)}


def _find_layer(clients, stack: str, logical: str) -> str:
    """moto's stack gives its layer version no physical id: the newest version of the layer moto named after the
    stack and the logical id (its generated name), found by listing."""
    layers = _client_value(lambda: clients("lambda").list_layers(), "Layers", missing=[])
    return next((layer["LatestMatchingVersion"]["LayerVersionArn"] for layer in layers
                 if layer["LayerName"].startswith(f"{stack}-{logical}")), "")


# Resource types moto's stack lists without a physical id, and how to find it instead.
FIND_PHYSICAL_ID = {"AWS::Lambda::LayerVersion": _find_layer}

READ_BACK = {
    "AWS::S3::Bucket": _bucket_checks,
    "AWS::DynamoDB::Table": _table_checks,
    "AWS::Lambda::Function": _function_checks,
    "AWS::Lambda::LayerVersion": _layer_checks,
    "AWS::Lambda::EventSourceMapping": _mapping_checks,
    "AWS::StepFunctions::StateMachine": _state_machine_checks,
    "AWS::Logs::LogGroup": _log_group_checks,
    "AWS::SQS::Queue": _queue_checks,
    "AWS::SNS::Topic": _topic_checks,
    "AWS::IAM::Role": _role_checks,
    "AWS::KMS::Key": _key_checks,
    "AWS::KMS::Alias": _alias_checks,
    "AWS::SageMaker::Endpoint": _sagemaker_endpoint_checks,
    "AWS::SageMaker::EndpointConfig": _sagemaker_endpoint_config_checks,
    "AWS::SageMaker::Model": _sagemaker_model_checks,
    "AWS::CloudWatch::Dashboard": _dashboard_checks,
}


@dataclass
class ReadBack:
    gaps: Counter  # "<type> <property>" -> created resources that do not show a property the template declares
    checked: int  # declared properties read back
    unchecked: Counter  # "<type> <property>" (or "<type>" without properties) -> declared but with no check here


def hollow_properties(clients, template: dict, parameters: dict[str, str], created: dict[str, dict],
                      stack: str | None = None) -> ReadBack:
    """Every declared property of every created resource, read back with the checks of READ_BACK: shown, not shown
    (a gap), or with no check (unchecked: nothing is counted as rehearsed without being read back)."""
    physical = {}
    for name, summary in created.items():
        find = FIND_PHYSICAL_ID.get(template["Resources"][name]["Type"])
        physical[name] = summary.get("PhysicalResourceId") or (find(clients, stack or "", name) if find else "")
    known = {logical: physical_id for logical, physical_id in physical.items() if physical_id}
    result = ReadBack(Counter(), 0, Counter())
    for name in created:
        resource = template["Resources"][name]
        kind = resource["Type"]
        checks_of = READ_BACK.get(kind)
        checks = checks_of(clients, physical[name]) if checks_of else {}
        properties = {prop: declared(value, template, parameters, known, stack)
                      for prop, value in resource.get("Properties", {}).items()}
        properties = {prop: value for prop, value in properties.items() if value not in (None, [], {})}
        if not properties and not checks:
            result.unchecked[kind] += 1
        for prop, value in properties.items():
            if prop not in checks:
                result.unchecked[f"{kind} {prop}"] += 1
                continue
            result.checked += 1
            try:
                shown = checks[prop](value)
            except Exception:  # e.g. a DefinitionS3Location whose object moto cannot serve: not shown either
                shown = False
            if not shown:
                result.gaps[f"{kind} {prop}"] += 1
    return result


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
    not_read_back: Counter  # "<type> <property>" (or "<type>") of created resources -> count, with no check here
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
    failures = broken_constraints(transformed, parameters) + broken_rules(transformed, parameters)
    for failure in failures:
        print(f"  CloudFormation would refuse the parameters: {failure}")
    for capability in missing_capabilities(transformed, tools["capabilities"]):
        failures.append(f"InsufficientCapabilities: the template needs {capability}, which samconfig.toml's "
                        f"capabilities ({' '.join(tools['capabilities']) or 'none'}) do not grant")
        print(f"  CloudFormation would refuse the stack: {failures[-1]}")
    moto_log.unsupported.clear()
    started = time.monotonic()
    create_stack(clients, stack, f"{tools['endpoint']}/{ARTIFACTS_BUCKET}/{key}", parameters, tools["capabilities"])
    status = _status(clients("cloudformation"), stack)
    print(f"  create_stack: {status} in {time.monotonic() - started:.0f} s")
    failures = [f"{stack}: {failure}" for failure in failures]

    # outputs: the template's whose Condition holds at these parameters must all come back
    expected = expected_outputs(transformed, parameters)
    description = clients("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    values = {output["OutputKey"]: output.get("OutputValue") for output in description.get("Outputs", [])}
    actual = set(values)
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
    hollow_failing, hollow_allowed = hollow_outputs(values, transformed, expected_all, set(created),
                                                    ALLOWED_HOLLOW_OUTPUTS)
    failures += [f"{stack}: {failure}" for failure in hollow_failing]
    for name in hollow_allowed:
        print(f"  hollow output allowed: {name}: {ALLOWED_HOLLOW_OUTPUTS[name]}")
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
    read_back = hollow_properties(clients, transformed, parameters, created, stack)
    hollow, checked = read_back.gaps, read_back.checked
    said = {kind: "skipped, moto has no CloudFormation support for it" if moto_log.unsupported.get(kind)
            else "skipped" for kind in skipped}
    said |= {what: "created without it" for what in hollow}
    print(f"  created on moto: {len(created)}/{len(expected_all)} resources; {sum(skipped.values())} skipped; "
          f"{checked} declared properties read back, {sum(hollow.values())} of them missing, "
          f"{sum(read_back.unchecked.values())} not read back")
    for kind in sorted(set(moto_log.unsupported) - set(skipped)):
        print(f"  moto also reported no CloudFormation support for {kind}")
    for message in moto_log.other:
        print(f"  moto: {message}")
    moto_log.other.clear()
    return StackResult(stack, status, (len(expected & actual), len(expected)), len(created), len(expected_all),
                       figures, skipped + hollow, said, read_back.unchecked, failures)


# The stacks rehearsed, so that every notable branch of the template is created once and what moto skips among them
# is observed too: the default deploy (an existing endpoint, STANDARD); a Hub model on autoscaled instances with an
# alarm e-mail subscription; and a model artifact in an own container on a serverless endpoint, EXPRESS, with the
# tensor-npy contract and a KMS-encrypted artifact (its own EndpointName: the endpoint's log group is named after it,
# and two stacks in one account could not both create it). {models_bucket} and {kms_key_arn} are a bucket and a key
# made on moto first. The parameters' constraints and the template's Rules must hold for each (moto checks neither).
MODELS_BUCKET = "lesionflow-rehearsal-models"
STACKS = {
    f"{STACK}-defaults": {},
    f"{STACK}-everything": {"EndpointSource": "huggingface", "EndpointCompute": "instance", "InitialInstanceCount": "1",
                            "MaxInstanceCount": "2", "AlarmEmail": "alarms@example.com",
                            "HuggingFaceModelRevision": "0123456789abcdef0123456789abcdef01234567"},
    f"{STACK}-artifact": {"EndpointName": "lesionflow-artifact", "EndpointSource": "artifact",
                          "EndpointCompute": "serverless", "WorkflowType": "EXPRESS",
                          "ModelDataUrl": "s3://{models_bucket}/model.tar.gz",
                          "ContainerImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/lesionflow-model:1.0.0",
                          "ModelDataKmsKeyArn": "{kms_key_arn}", "ModelContract": "tensor-npy"},
}


def stack_parameters(stacks: dict[str, dict[str, str]], **made: str) -> dict[str, dict[str, str]]:
    """STACKS with the names of what was made on moto first filled in."""
    return {stack: {key: value.format(**made) for key, value in parameters.items()}
            for stack, parameters in stacks.items()}


def branch_lines(coverage: dict[str, set[bool]], template: dict, stacks: list[dict[str, str]]) -> list[str]:
    """What the stacks rehearsed of the template's branches: each Condition both ways or one way only, and each
    parameter with AllowedValues, the values given."""
    both = sorted(name for name, seen in coverage.items() if seen == {True, False})
    only_true = sorted(name for name, seen in coverage.items() if seen == {True})
    only_false = sorted(name for name, seen in coverage.items() if seen == {False})
    lines = [f"branches: both ways: {', '.join(both) or 'none'}",
             f"branches: only true: {', '.join(only_true) or 'none'}; never true: {', '.join(only_false) or 'none'}"]
    values = []
    for name, spec in template.get("Parameters", {}).items():
        if "AllowedValues" in spec and len(spec["AllowedValues"]) <= 4:
            given = {str(parameters.get(name, spec.get("Default"))) for parameters in stacks}
            ordered = [str(value) for value in spec["AllowedValues"] if str(value) in given]
            untried = [str(value) for value in spec["AllowedValues"] if str(value) not in given]
            values.append(f"{name} {'/'.join(ordered)}" + (f" (not {'/'.join(untried)})" if untried else ""))
    lines.append(f"branches: parameter values: {'; '.join(values)}")
    return lines


def rehearse(sam: Path, translator_python: Path, template_path: Path) -> int:
    import boto3
    from moto.server import ThreadedMotoServer

    total_started = time.monotonic()
    capabilities = granted_capabilities(SAMCONFIG.read_text()) if SAMCONFIG.exists() else []
    built, build_seconds = sam_build(sam, template_path, aws_env("http://localhost:1"))  # build calls no AWS API
    print(f"sam build: {build_seconds:.0f} s")

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request
    moto_log = MotoLog()
    logging.getLogger("moto").addHandler(moto_log)
    # moto also warns once per skipped type ("Tried to parse ..."): its log above says it once per resource
    warnings.filterwarnings("ignore", message="Tried to parse .* not supported by moto", category=UserWarning)
    os.environ.update({key: value for key, value in DUMMY_CREDENTIALS.items()})  # nothing reaches AWS
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # port 0: the OS picks a free one
    try:
        _, port = start_moto(server)
    except RehearsalError:
        logging.getLogger("moto").removeHandler(moto_log)
        raise
    endpoint = f"http://localhost:{port}"  # not 127.0.0.1: moto would read "127" as a bucket in the TemplateURL
    env = aws_env(endpoint)
    os.environ.update({key: value for key, value in env.items() if key.startswith("AWS_")})  # nothing reaches AWS
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
            # what the artifact stack's parameters name: a model.tar.gz in a bucket, and the key that encrypts it
            clients("s3").create_bucket(Bucket=MODELS_BUCKET)
            kms_key_arn = clients("kms").create_key(Description="the model artifact's key")["KeyMetadata"]["Arn"]
            clients("s3").put_object(Bucket=MODELS_BUCKET, Key="model.tar.gz", Body=b"rehearsal",
                                     ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key_arn)
            stacks = stack_parameters(STACKS, models_bucket=MODELS_BUCKET, kms_key_arn=kms_key_arn)
            packaged = work / "packaged.json"
            started = time.monotonic()
            sam_package(sam, built, packaged, env)
            print(f"sam package: {time.monotonic() - started:.0f} s, into s3://{ARTIFACTS_BUCKET} on moto")
            print(f"capabilities (samconfig.toml, as sam deploy passes them): {' '.join(capabilities) or 'none'}")
            tools = {"translator_python": translator_python, "env": env, "endpoint": endpoint,
                     "capabilities": capabilities}
            results = [rehearse_stack(clients, stack, parameters, packaged, work, tools, moto_log)
                       for stack, parameters in stacks.items()]
            transformed = json.loads((work / f"{results[0].name}.template.json").read_text())
    finally:
        server.stop()
        logging.getLogger("moto").removeHandler(moto_log)

    for line in branch_lines(branches(transformed, list(stacks.values())), transformed, list(stacks.values())):
        print(line)
    failures = [failure for result in results for failure in result.failures]
    for failure in failures:
        print(f"FAILED: {failure}")
    default, everything = results[0], results[1]
    gaps, how, unread = Counter(), {}, Counter()
    for result in results:
        gaps |= result.not_rehearsed  # the most of each kind any stack had
        how |= result.how
        unread |= result.not_read_back

    def only(kind: str, field: str) -> str:
        having = [result.name for result in results if kind in getattr(result, field)]
        return "" if len(having) == len(results) else f" (only in {', '.join(having)})"

    for kind, count in sorted(gaps.items(), key=lambda item: (how[item[0]] == "created without it", item[0])):
        print(f"not rehearsed: {kind} ({count}): {how[kind]}{only(kind, 'not_rehearsed')}")
    for kind, count in sorted(unread.items()):
        print(f"not read back: {kind} ({count}){only(kind, 'not_read_back')}")
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
               f"{sum(gaps.values())} not rehearsed, {sum(unread.values())} not read back, "
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

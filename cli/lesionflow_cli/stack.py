"""Finding the stack a command works on: a deployed one by its CloudFormation outputs, or the local stack.

Region and credentials follow the AWS conventions (environment, ``--profile``, the shared config files); the stack
name defaults to the one ``sam deploy`` uses (samconfig.toml).
"""

import json
import tomllib
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from lesionflow_local.cli import STATE_FILE
from lesionflow_local.template import ROOT

SAMCONFIG = ROOT / "samconfig.toml"
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


class CommandError(Exception):
    """Something the person can fix, said in one line (no traceback)."""


@dataclass(frozen=True)
class Stack:
    """Where a LesionFlow stack keeps things, and clients for it."""

    bucket: str
    upload_prefix: str
    table_name: str
    queue_url: str
    dlq_url: str
    state_machine_arn: str
    region: str
    endpoint_url: str | None = None
    profile: str | None = None

    @cached_property
    def session(self) -> boto3.Session:
        credentials = LOCAL_CREDENTIALS if self.endpoint_url else {}
        return boto3.Session(profile_name=self.profile, region_name=self.region, **credentials)

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.endpoint_url)

    @cached_property
    def table(self):
        return self.session.resource("dynamodb", endpoint_url=self.endpoint_url).Table(self.table_name)


def find_stack(name: str | None, local: bool, endpoint_url: str | None, region: str | None,
               profile: str | None) -> Stack:
    if local or endpoint_url:
        return _local_stack(endpoint_url)
    return _deployed_stack(stack_name(name), region, profile)


def _local_stack(endpoint_url: str | None) -> Stack:
    """The local stack at ``endpoint_url`` (its names derived from the template, as the local stack derives them), or
    the one `lesionflow local up` is running (its names as it wrote them)."""
    if endpoint_url is None:
        if not STATE_FILE.is_file():
            raise CommandError("no local stack is running: start it with `lesionflow local up` (or `make local`)")
        names = json.loads(STATE_FILE.read_text())
    else:
        from lesionflow_local.stack import stack_names  # parses the template: only for a stack named by address

        names = asdict(stack_names()) | {"endpoint_url": endpoint_url}
    return Stack(bucket=names["bucket"], upload_prefix=names["upload_prefix"], table_name=names["table"],
                 queue_url=names["queue_url"], dlq_url=names["dlq_url"], state_machine_arn=names["state_machine_arn"],
                 region=names["region"], endpoint_url=names["endpoint_url"].rstrip("/"))


def stack_name(name: str | None) -> str:
    """The stack's name: as given, else samconfig.toml's (what `sam deploy` uses), else ``lesionflow``."""
    return name or _samconfig("stack_name", "lesionflow")


def deployed_session(region: str | None, profile: str | None) -> boto3.Session:
    """A session for a deployed stack: the region given, else AWS's usual sources, else samconfig.toml's."""
    session = boto3.Session(profile_name=profile, region_name=region or _samconfig("region"))
    if session.region_name is None:
        raise CommandError("no AWS region: set AWS_REGION or pass --region")
    return session


def _deployed_stack(name: str, region: str | None, profile: str | None) -> Stack:
    session = deployed_session(region, profile)
    try:
        [described] = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in error.response["Error"].get("Message", ""):
            raise CommandError(f"no stack named {name!r} in {session.region_name} (pass --stack NAME)") from None
        raise CommandError(f"cannot read stack {name!r}: {error.response['Error']['Code']}") from None
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
    try:
        return Stack(bucket=outputs["BucketName"], upload_prefix=outputs["UploadPrefix"],
                     table_name=outputs["PredictionTableName"], queue_url=outputs["IngestQueueUrl"],
                     dlq_url=outputs["DeadLetterQueueUrl"], state_machine_arn=outputs["StateMachineArn"],
                     region=session.region_name, profile=profile)
    except KeyError as missing:
        raise CommandError(f"stack {name!r} has no output {missing}: is it a LesionFlow stack?") from None


def _samconfig(key: str, default: str | None = None) -> str | None:
    """A setting of samconfig.toml's default environment (global, then deploy parameters)."""
    if not SAMCONFIG.is_file():
        return default
    environment = tomllib.loads(SAMCONFIG.read_text()).get("default", {})
    for section in ("global", "deploy"):
        value = environment.get(section, {}).get("parameters", {}).get(key)
        if value:
            return value
    return default

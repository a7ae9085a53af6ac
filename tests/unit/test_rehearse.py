"""scripts/rehearse.py's own checks, on templates built here: `make rehearse` runs the whole rehearsal (sam build,
sam package, the SAM transform, create_stack on a moto server)."""

import importlib.util
import sys

import boto3
from moto import mock_aws

from lesionflow_local.template import ROOT

_spec = importlib.util.spec_from_file_location("rehearse", ROOT / "scripts" / "rehearse.py")
rehearse = importlib.util.module_from_spec(_spec)
sys.modules["rehearse"] = rehearse
_spec.loader.exec_module(rehearse)

TEMPLATE = {
    "Parameters": {"Source": {"Type": "String", "Default": "existing"},
                   "Days": {"Type": "Number", "Default": 30}},
    "Conditions": {"CreatesEndpoint": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Source"}, "existing"]}]},
                   "InUsEast1": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}},
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "Alarm": {"Type": "AWS::CloudWatch::Alarm"},
        "OtherAlarm": {"Type": "AWS::CloudWatch::Alarm", "Condition": "InUsEast1"},
        "Endpoint": {"Type": "AWS::SageMaker::Endpoint", "Condition": "CreatesEndpoint"},
    },
    "Outputs": {
        "BucketName": {"Value": {"Ref": "Bucket"}},
        "AlarmArn": {"Value": {"Fn::GetAtt": ["Alarm", "Arn"]}},
        "EndpointArn": {"Condition": "CreatesEndpoint", "Value": {"Ref": "Endpoint"}},
    },
}


def test_an_output_whose_condition_is_false_is_not_expected_and_one_whose_condition_holds_is():
    # Given the template's parameters at their defaults, then with the endpoint created
    # When the expected outputs are worked out
    defaults = rehearse.expected_outputs(TEMPLATE, {})
    creating = rehearse.expected_outputs(TEMPLATE, {"Source": "huggingface"})
    # Then EndpointArn is expected only when its Condition holds
    assert defaults == {"BucketName", "AlarmArn"}
    assert creating == {"BucketName", "AlarmArn", "EndpointArn"}


def test_a_missing_output_fails_unless_the_allow_list_names_it():
    # Given a stack that came back without AlarmArn (moto skipped the alarm it refers to)
    expected = rehearse.expected_outputs(TEMPLATE, {})
    # When it is compared with no allow-list, then with one that names AlarmArn
    failing, _ = rehearse.missing_outputs(expected, {"BucketName"}, {})
    allowed_failing, allowed = rehearse.missing_outputs(expected, {"BucketName"}, {"AlarmArn": "a reason"})
    # Then it fails the rehearsal only without the allow-list entry
    assert failing == ["AlarmArn"]
    assert (allowed_failing, allowed) == ([], ["AlarmArn"])
    # and the resource it refers to is named in the failure
    assert rehearse.referenced_resources(TEMPLATE["Outputs"]["AlarmArn"]["Value"]) == {"Alarm"}


def test_resources_missing_from_the_stack_are_counted_by_type_and_false_conditions_are_not_missing():
    # Given the resources the template creates at its defaults in us-east-1 (no endpoint)
    expected = rehearse.expected_resources(TEMPLATE, {})
    # When the stack holds only the bucket
    skipped = rehearse.not_created(expected, {"Bucket"})
    # Then both alarms are reported and the endpoint, whose condition is false, is not
    assert expected == {"Bucket": "AWS::S3::Bucket", "Alarm": "AWS::CloudWatch::Alarm",
                        "OtherAlarm": "AWS::CloudWatch::Alarm"}
    assert skipped == {"AWS::CloudWatch::Alarm": 2}


def test_each_quota_figure_is_over_its_limit_only_past_it():
    # Given a template of 500 resources in a body of exactly 1 MB, and one of 501 resources in a byte more
    at_limit = {"Resources": {f"R{i}": {"Type": "AWS::SNS::Topic"} for i in range(500)}}
    over = {"Resources": {f"R{i}": {"Type": "AWS::SNS::Topic"} for i in range(501)},
            "Parameters": {f"P{i}": {"Type": "String"} for i in range(201)}}
    # When their figures are taken
    within = rehearse.quota_figures(at_limit, {"transformed": 1_048_576})
    beyond = {f.name: f for f in rehearse.quota_figures(over, {"transformed": 1_048_577})}
    # Then the first is within every quota and the second over the size, resources and parameters ones
    assert all(figure.within for figure in within)
    assert {name for name, figure in beyond.items() if not figure.within} == {
        "template body (transformed)", "resources", "parameters"}
    assert "OVER THE LIMIT" in beyond["resources"].line()


def test_a_declared_value_follows_its_condition_and_its_parameter():
    # Given property values built with Fn::If and Ref
    when = {"Fn::If": ["CreatesEndpoint", {"Ref": "Days"}, {"Ref": "AWS::NoValue"}]}
    # When they are read for the defaults and for a stack that creates the endpoint
    # Then the false branch's NoValue declares nothing, and a Number parameter reads as an int
    assert rehearse.declared(when, TEMPLATE, {}) is None
    assert rehearse.declared(when, TEMPLATE, {"Source": "artifact", "Days": "7"}) == 7
    assert rehearse.declared({"Fn::GetAtt": ["Key", "Arn"]}, TEMPLATE, {}) == {"Fn::GetAtt": ["Key", "Arn"]}


def test_a_bucket_created_without_its_declared_versioning_is_reported_and_one_with_it_is_not():
    # Given two buckets on moto, one versioned and one not, both declared versioned
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="rehearse-versioned")
        s3.put_bucket_versioning(Bucket="rehearse-versioned", VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket="rehearse-plain")
        template = {"Resources": {name: {"Type": "AWS::S3::Bucket", "Properties": {
            "VersioningConfiguration": {"Status": "Enabled"}}} for name in ("Versioned", "Plain")}}
        created = {"Versioned": {"PhysicalResourceId": "rehearse-versioned"},
                   "Plain": {"PhysicalResourceId": "rehearse-plain"}}
        # When the declared properties are read back
        read_back = rehearse.hollow_properties(lambda service: boto3.client(service, region_name="us-east-1"),
                                               template, {}, created)
    # Then only the unversioned bucket is reported
    assert read_back.checked == 2
    assert read_back.gaps == {"AWS::S3::Bucket VersioningConfiguration": 1}


def test_parameters_a_rule_of_the_template_refuses_fail_the_rehearsal_though_moto_would_create_the_stack():
    # Given a rule like the template's: a Hub endpoint needs a pinned revision
    template = TEMPLATE | {"Parameters": TEMPLATE["Parameters"] | {"Revision": {"Type": "String", "Default": ""}},
                           "Rules": {"HubModelIsPinned": {
                               "RuleCondition": {"Fn::Equals": [{"Ref": "Source"}, "huggingface"]},
                               "Assertions": [{"Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Revision"}, ""]}]},
                                               "AssertDescription": "pin the revision"}]}}}
    # When the rules are evaluated for the defaults, a pinned Hub endpoint and an unpinned one
    # Then only the unpinned one is refused, with the rule's own words
    assert rehearse.broken_rules(template, {}) == []
    assert rehearse.broken_rules(template, {"Source": "huggingface", "Revision": "0" * 40}) == []
    assert rehearse.broken_rules(template, {"Source": "huggingface"}) == ["Rule HubModelIsPinned: pin the revision"]


VARIANT_TEMPLATE = {
    "Parameters": {"Compute": {"Type": "String", "Default": "serverless"},
                   "Memory": {"Type": "Number", "Default": 4096}},
    "Conditions": {"RunsServerless": {"Fn::Equals": [{"Ref": "Compute"}, "serverless"]},
                   "RunsOnInstances": {"Fn::Equals": [{"Ref": "Compute"}, "instance"]}},
    "Resources": {},
}
VARIANTS = [{"VariantName": "AllTraffic", "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
             "InitialVariantWeight": 1,
             "ServerlessConfig": {"Fn::If": ["RunsServerless", {"MemorySizeInMB": {"Ref": "Memory"}},
                                             {"Ref": "AWS::NoValue"}]},
             "InstanceType": {"Fn::If": ["RunsOnInstances", "ml.m5.large", {"Ref": "AWS::NoValue"}]}}]


def test_a_declared_variant_is_resolved_all_the_way_down_and_covered_only_by_what_shows_it():
    # Given a production variant declared with conditions inside, and the model it names created on moto
    physical = {"Model": "arn:aws:sagemaker:us-east-1:123456789012:model/stack-Model-ABC"}
    # When it is read for a serverless stack
    variants = rehearse.declared(VARIANTS, VARIANT_TEMPLATE, {}, physical)
    # Then the instance type is left out, the memory is the parameter's, the model is the created one's
    assert variants == [{"VariantName": "AllTraffic", "ModelName": rehearse.Refers((physical["Model"],)),
                         "InitialVariantWeight": 1, "ServerlessConfig": {"MemorySizeInMB": 4096}}]
    # and a variant read back with them (and more) covers it, one without the serverless config does not
    shown = {"VariantName": "AllTraffic", "ModelName": "stack-Model-ABC", "InitialVariantWeight": 1.0,
             "ServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 5}}
    assert rehearse.covers([shown], variants)
    assert not rehearse.covers([{key: value for key, value in shown.items() if key != "ServerlessConfig"}], variants)
    assert not rehearse.covers([shown | {"ModelName": "another-model"}], variants)


def test_an_endpoint_created_under_another_name_is_reported_and_a_property_without_a_check_is_not_read_back():
    # Given an endpoint on moto under a generated name, declared as lesionflow-vit, and a resource nothing reads back
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        sagemaker.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                               PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"})
        sagemaker.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 1024,
                                                                                 "MaxConcurrency": 1}}])
        arn = sagemaker.create_endpoint(EndpointName="stack-Endpoint-XYZ", EndpointConfigName="c")["EndpointArn"]
        template = {"Parameters": {"EndpointName": {"Type": "String", "Default": "lesionflow-vit"}}, "Resources": {
            "Endpoint": {"Type": "AWS::SageMaker::Endpoint", "Properties": {
                "EndpointName": {"Ref": "EndpointName"}, "EndpointConfigName": "c"}},
            "Thing": {"Type": "AWS::Example::Thing", "Properties": {"Size": 3}}}}
        created = {"Endpoint": {"PhysicalResourceId": arn}, "Thing": {"PhysicalResourceId": "thing-1"}}
        # When the declared properties are read back
        read_back = rehearse.hollow_properties(lambda service: boto3.client(service, region_name="us-east-1"),
                                               template, {}, created)
    # Then the endpoint's name is a gap, its configuration is shown, and the unchecked property is listed
    assert read_back.gaps == {"AWS::SageMaker::Endpoint EndpointName": 1}
    assert read_back.checked == 2
    assert read_back.unchecked == {"AWS::Example::Thing Size": 1}


def test_a_moto_server_that_never_binds_fails_in_bounded_time_with_one_line():
    # Given a server whose start() waits forever (moto's, when its bind fails), and one whose server thread raises
    import threading
    import time

    import pytest

    class Hangs:
        def start(self):
            threading.Event().wait()

    class BindFails:
        def start(self):
            def serve():
                raise OSError(98, "Address already in use")
            threading.Thread(target=serve, daemon=True).start()
            threading.Event().wait()

    # When each is started with a bound
    started = time.monotonic()
    with pytest.raises(rehearse.RehearsalError, match="did not start within 0.2 s"):
        rehearse.start_moto(Hangs(), timeout=0.2)
    with pytest.raises(rehearse.RehearsalError, match="OSError: .*Address already in use"):
        rehearse.start_moto(BindFails(), timeout=10)
    # Then both fail well within the bound of the second, instead of hanging
    assert time.monotonic() - started < 5


def test_a_real_moto_server_on_port_0_reports_the_port_it_bound():
    # Given moto's threaded server asked for port 0
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # When it is started
    host, port = rehearse.start_moto(server)
    try:
        # Then it answers on the port the OS gave it
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://localhost:{port}",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        assert port > 0 and s3.list_buckets()["Buckets"] == []
    finally:
        server.stop()


def test_parameter_values_outside_their_constraints_are_refused_as_cloudformation_would():
    # Given parameters with a pattern, allowed values and a range
    template = {"Parameters": {"Url": {"Type": "String", "AllowedPattern": "^$|^s3://[a-z0-9.-]+/.+$"},
                               "Source": {"Type": "String", "AllowedValues": ["existing", "artifact"]},
                               "Count": {"Type": "Number", "MinValue": 1, "MaxValue": 200}}}
    # When values inside and outside them are checked
    good = rehearse.broken_constraints(template, {"Url": "s3://models/model.tar.gz", "Source": "artifact",
                                                  "Count": "200"})
    bad = rehearse.broken_constraints(template, {"Url": "https://models/model.tar.gz", "Source": "hub", "Count": "0",
                                                 "Typo": "x"})
    # Then only the second set is refused, each value by its own constraint
    assert good == []
    assert [line.split(":")[0] for line in bad] == ["Parameter Url", "Parameter Source", "Parameter Count",
                                                    "Parameter Typo"]


def test_the_artifact_stack_satisfies_the_templates_rules_and_constraints_and_rehearses_new_branches():
    # Given the real template and the rehearsed stacks with a bucket and key filled in
    from lesionflow_local.template import load
    template = load()
    key = "arn:aws:kms:us-east-1:123456789012:key/0123abcd-0000-4000-8000-000000000000"
    stacks = rehearse.stack_parameters(rehearse.STACKS, models_bucket="lesionflow-rehearsal-models", kms_key_arn=key)
    # When their Rules and constraints are evaluated, and the branches they take
    refused = {stack: rehearse.broken_constraints(template, parameters) + rehearse.broken_rules(template, parameters)
               for stack, parameters in stacks.items()}
    coverage = rehearse.branches(template, list(stacks.values()))
    # Then CloudFormation would take every stack, and the artifact stack is what makes these branches both ways
    assert refused == {stack: [] for stack in stacks}
    for condition in ("ServesArtifact", "RunsServerless", "UsesOwnImage", "DecryptsModelData"):
        assert coverage[condition] == {True, False}
    without = rehearse.branches(template, [p for s, p in stacks.items() if not s.endswith("-artifact")])
    assert without["DecryptsModelData"] == {False}


def test_an_output_that_is_empty_unresolved_none_or_refers_to_a_resource_not_created_fails_unless_allowed():
    # Given outputs as a stack returned them, the template's resources and what moto created
    template = {"Outputs": {"Good": {"Value": {"Ref": "Bucket"}}, "Empty": {"Value": {"Ref": "Bucket"}},
                            "Sub": {"Value": {"Fn::Sub": "${Bucket}"}}, "Nothing": {"Value": "x"},
                            "Skipped": {"Value": {"Fn::GetAtt": ["Alarm", "Arn"]}}}}
    expected = {"Bucket": "AWS::S3::Bucket", "Alarm": "AWS::CloudWatch::Alarm"}
    values = {"Good": "my-bucket", "Empty": "", "Sub": "${Bucket}", "Nothing": "None", "Skipped": "arn:x"}
    # When they are judged without an allow-list, then with one naming Skipped
    failing, _ = rehearse.hollow_outputs(values, template, expected, {"Bucket"}, {})
    failing_allowed, allowed = rehearse.hollow_outputs(values, template, expected, {"Bucket"}, {"Skipped": "why"})
    # Then every hollow one fails, each saying why, and only the allow-list lets one pass
    assert [line.split(" ")[1] for line in failing] == ["Empty", "Nothing", "Skipped", "Sub"]
    assert "moto did not create" in failing[2] and "unresolved ${" in failing[3]
    assert allowed == ["Skipped"] and len(failing_allowed) == 3


def test_capabilities_are_samconfigs_and_a_named_role_needs_more_than_moto_asks():
    # Given samconfig.toml's deploy capabilities, and templates with an unnamed and a named role
    granted = rehearse.granted_capabilities('[default.deploy.parameters]\ncapabilities = "CAPABILITY_IAM"\n')
    unnamed = {"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}}}}
    named = {"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "fixed"}}}}
    # When the capabilities they need are compared with those granted
    # Then the named role needs CAPABILITY_NAMED_IAM, which samconfig does not grant, and a list form parses too
    assert granted == ["CAPABILITY_IAM"]
    assert rehearse.missing_capabilities(unnamed, granted) == []
    assert rehearse.missing_capabilities(named, granted) == ["CAPABILITY_NAMED_IAM"]
    assert rehearse.missing_capabilities(unnamed, []) == ["CAPABILITY_IAM"]
    assert rehearse.granted_capabilities('[default.deploy.parameters]\ncapabilities = ["CAPABILITY_NAMED_IAM"]\n') \
        == ["CAPABILITY_NAMED_IAM"]
    assert rehearse.missing_capabilities(named, ["CAPABILITY_NAMED_IAM"]) == []
    # and moto's CloudFormation creates the named role with no capabilities at all: why the check is here
    import json
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        cloudformation.create_stack(StackName="named", TemplateBody=json.dumps(named | {"Resources": {"Role": {
            "Type": "AWS::IAM::Role", "Properties": {"RoleName": "fixed", "AssumeRolePolicyDocument": {
                "Version": "2012-10-17", "Statement": []}}}}}))
        assert cloudformation.describe_stacks(StackName="named")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"

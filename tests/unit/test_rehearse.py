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
        gaps, checked = rehearse.hollow_properties(lambda service: boto3.client(service, region_name="us-east-1"),
                                                   template, {}, created)
    # Then only the unversioned bucket is reported
    assert checked == 2
    assert gaps == {"AWS::S3::Bucket VersioningConfiguration": 1}


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

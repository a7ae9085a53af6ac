"""scripts/scan.py's own logic, without the scanners: `make scan` runs them (they live in .tools/scan and node_modules)."""

import importlib.util
import json
import re
import sys

import pytest

from lesionflow_local.template import ROOT

_spec = importlib.util.spec_from_file_location("scan", ROOT / "scripts" / "scan.py")
scan = importlib.util.module_from_spec(_spec)
sys.modules["scan"] = scan
_spec.loader.exec_module(scan)

TEXT = (ROOT / "template.yaml").read_text()
TEMPLATE = scan.yaml.load(TEXT, Loader=scan.CfnLoader)


def test_every_suppression_in_the_template_gives_its_reason():
    suppressions, problems = scan.suppressions_in(TEMPLATE, TEXT)
    assert problems == []
    assert {s.scanner for s in suppressions} == {"checkov", "cfn-lint", "cfn-guard"}
    assert all(len(s.reason) > 20 for s in suppressions), [s for s in suppressions if len(s.reason) <= 20]


FIXTURE = """\
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_1
      cfn-lint:
        config:
          ignore_checks:
            - ES6000 # the reason on the line
            # the reason
            # above the entry
            - ES6001
            - ES6002
      guard:
        SuppressedRules:
          - sqs_dlq_check
"""


def test_a_suppression_without_a_reason_is_reported_wherever_the_reason_may_be():
    suppressions, problems = scan.suppressions_in(scan.yaml.load(FIXTURE, Loader=scan.CfnLoader), FIXTURE)
    reasons = {(s.scanner, s.rule): s.reason for s in suppressions}
    assert reasons[("cfn-lint", "ES6000")] == "the reason on the line"
    assert reasons[("cfn-lint", "ES6001")] == "the reason above the entry"
    assert problems == [
        "checkov suppression of CKV_AWS_1 on Queue gives no reason",
        "cfn-lint suppression of ES6002 on Queue gives no reason",
        "cfn-guard suppression of sqs_dlq_check on Queue gives no reason",
    ]


def test_a_guard_failure_names_its_control_and_the_resources_whose_values_failed():
    clause = {"Clause": {"Binary": {"check": {"Resolved": {"from": {"path": "/Resources/Bucket/Properties/X"}}}}}}
    result = {"not_compliant": [{"Rule": {
        "name": "s3_bucket_logging_enabled_check",
        "messages": {"custom_message": "\n [CT.S3.PR.2]: Require logging\n"},
        "checks": [clause, {"Clause": {"Unary": {"check": {"UnResolved": {"value": {"path": "/Resources/Other"}}}}}}],
    }}]}
    assert scan.guard_failures(result) == [("s3_bucket_logging_enabled_check", "CT.S3.PR.2", ["Bucket", "Other"])]


def test_a_suppression_covers_only_its_rule_on_its_resource_and_one_that_covers_nothing_is_stale():
    keep = scan.Suppression("cfn-guard", "Bucket", "rule_a", "a reason")
    unused = scan.Suppression("cfn-guard", "Bucket", "rule_b", "a reason")
    other_scanner = scan.Suppression("checkov", "Bucket", "rule_a", "a reason")
    report = scan.Report("cfn-guard", "1", "test")
    findings = [scan.Finding("rule_a", "Bucket", "t", ""), scan.Finding("rule_a", "Queue", "t", ""),
                scan.Finding("rule_c", "Bucket", "t", "")]
    scan.apply_suppressions(report, [(f, f.resource) for f in findings], [keep, unused, other_scanner])
    assert report.suppressed == [(findings[0], keep)]
    assert report.findings == findings[1:]
    assert scan.stale([keep, unused, other_scanner], [report]) == [unused]  # checkov did not run here


def test_a_generated_resource_is_traced_to_the_template_resource_it_came_from():
    transformed = {"Resources": {"FnRole": {"Metadata": {scan.SOURCE_KEY: "Fn"}}, "Bucket": {}}}
    assert scan.source_of(transformed, "FnRole") == "Fn"
    assert scan.source_of(transformed, "Bucket") == "Bucket"


def test_every_state_machine_placeholder_gets_a_plausible_value():
    values = scan.placeholder_values(TEMPLATE)
    definition = (ROOT / "statemachine" / "pipeline.asl.json").read_text()
    for name, value in values.items():
        definition = definition.replace("${%s}" % name, value)
    assert not re.findall(r"\$\{\w+\}", definition)
    json.loads(definition)
    for name, value in values.items():
        if name.endswith("FunctionArn"):
            assert re.fullmatch(r"arn:aws:lambda:us-east-1:\d{12}:function:\w+", value), value


@pytest.mark.parametrize(("system", "machine", "folder"), [
    ("Linux", "x86_64", "ubuntu/x86_64"), ("Linux", "aarch64", "ubuntu/aarch64"), ("Darwin", "arm64", "macos/aarch64"),
])
def test_the_cfn_guard_binary_is_the_one_built_for_this_machine(monkeypatch, system, machine, folder):
    monkeypatch.setattr(scan.platform, "system", lambda: system)
    monkeypatch.setattr(scan.platform, "machine", lambda: machine)
    assert scan.guard_binary() == scan.GUARD_PACKAGE / "bin" / folder / "cfn-guard"

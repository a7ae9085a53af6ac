"""Security scanners for LesionFlow's infrastructure: `make scan` runs this, and `make test` runs `make scan`.

template.yaml is the single source of truth for what is deployed, so every test run checks it with four tools, each
seeing something the others miss:

- checkov: general infrastructure-as-code security checks, on template.yaml and on the CloudFormation SAM makes of it;
- cfn-lint with the serverless rules (cfn-lint-serverless), on both templates too;
- cfn-guard with the AWS Control Tower proactive-control rules, on the CloudFormation (they know no SAM types);
- asl-validator on statemachine/pipeline.asl.json, with its ${...} substitutions filled in.

cfn-lint 1.x no longer applies the SAM transform, and what SAM generates (roles, the event source mapping, the state
machine with its definition inlined) is what gets deployed, so the template is transformed here with
aws-sam-translator, offline: a fake account and region, and an empty managed-policy map instead of asking IAM.

A finding is either fixed in template.yaml or suppressed there, in the resource's Metadata, in each scanner's own
format and with its reason: `checkov: skip: [{id, comment}]`, `cfn-lint: config: ignore_checks: [ID]` and
`guard: SuppressedRules: [rule name]`, each list entry with a YAML comment on its line or just above it. SAM copies
a resource's Metadata to what it generates from it, so a function's suppression also covers its role and its event
source mapping. The scan fails on any finding left, on a suppression without a reason, and on a suppression that no
longer suppresses anything (stale: delete it).

Runs with the scan tools' own Python (.tools/scan, from requirements-scan.txt) and the npm tools in node_modules
(package.json). Writes the transformed template and the raw reports to .lesionflow/scan/.
"""

import argparse
import copy
import json
import os
import platform
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))  # the template reader of the local stack, without installing the package
from lesionflow_local.template import CfnLoader  # noqa: E402
BUILD = ROOT / ".lesionflow" / "scan"
TOOLS_BIN = Path(sys.executable).parent  # the scan venv's bin (not resolved: that would leave the venv)
NODE_MODULES = ROOT / "node_modules"
GUARD_PACKAGE = NODE_MODULES / "@cdklabs" / "cdk-validator-cfnguard"
GUARD_RULES = GUARD_PACKAGE / "rules" / "control-tower" / "cfn-guard"

ACCOUNT = "123456789012"  # fake: nothing here talks to AWS
REGION = "us-east-1"
SOURCE_KEY = "LesionFlowScanSource"  # Metadata key naming the template.yaml resource a transformed one came from


# ---------------------------------------------------------------------------------------------------- the template

# Where a state machine names its definition file: SAM's state machine, and CloudFormation's (which sam package uploads)
DEFINITION_PATHS = ("DefinitionUri", "DefinitionS3Location")


def find_file(template_path: Path, relative: str) -> Path:
    """A path the template names (a state machine's definition): next to the template, or in the repository for a
    copy elsewhere."""
    beside = template_path.parent / relative
    return beside if beside.exists() else ROOT / relative


def transform(template: dict, template_path: Path) -> dict:
    """The CloudFormation that SAM would deploy, made offline.

    Code locations become fake S3 URIs (the scanners look at configuration, not code) and the state machine's
    definition is inlined so the scanners see it. Each resource's Metadata is tagged with its own logical id first;
    SAM passes Metadata through to what it generates, so every transformed resource names its source.
    """
    import boto3  # the scan venv's; a Session only carries the region here, no call leaves the machine
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(template)
    for logical_id, resource in sam["Resources"].items():
        resource.setdefault("Metadata", {})[SOURCE_KEY] = logical_id
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://lesionflow-scan-artifacts/{properties[key]}"
        for key in DEFINITION_PATHS:
            if isinstance(properties.get(key), str):
                properties["Definition"] = json.loads(find_file(template_path, properties.pop(key)).read_text())
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=REGION))
    return translator.translate(sam, parameter_values={"AWS::AccountId": ACCOUNT}, passthrough_metadata=True,
                                get_managed_policy_map=dict)  # no managed policy is named: no lookup needed


def source_of(transformed: dict, logical_id: str) -> str:
    """The template.yaml resource that a transformed resource was generated from (itself, for plain CloudFormation)."""
    resource = transformed.get("Resources", {}).get(logical_id, {})
    return resource.get("Metadata", {}).get(SOURCE_KEY, logical_id)


# ---------------------------------------------------------------------------------------------------- suppressions

@dataclass(frozen=True)
class Suppression:
    scanner: str  # checkov, cfn-lint or cfn-guard
    resource: str  # logical id in template.yaml
    rule: str
    reason: str


def suppressions_in(template: dict, text: str) -> tuple[list[Suppression], list[str]]:
    """Every suppression in the template's resource Metadata with its reason, and the problems (a missing reason).

    checkov's reason is its `comment`. cfn-lint's and cfn-guard's lists have no field for one, so it is the YAML
    comment on the entry's line or on the lines just above it, read from the text (PyYAML drops comments).
    """
    comments = _entry_comments(text)
    found, problems = [], []
    for logical_id, resource in template.get("Resources", {}).items():
        meta = resource.get("Metadata") or {}
        for skip in meta.get("checkov", {}).get("skip", []):
            found.append(Suppression("checkov", logical_id, skip.get("id", ""), (skip.get("comment") or "").strip()))
        for rule in meta.get("cfn-lint", {}).get("config", {}).get("ignore_checks", []):
            reason = comments.get((logical_id, "ignore_checks", rule), "")
            found.append(Suppression("cfn-lint", logical_id, rule, reason))
        for rule in meta.get("guard", {}).get("SuppressedRules", []):
            reason = comments.get((logical_id, "SuppressedRules", rule), "")
            found.append(Suppression("cfn-guard", logical_id, rule, reason))
    for suppression in found:
        if not suppression.reason:
            problems.append(f"{suppression.scanner} suppression of {suppression.rule} on {suppression.resource} "
                            "gives no reason")
    return found, problems


def _entry_comments(text: str) -> dict[tuple[str, str, str], str]:
    """(resource, list name, entry) -> the comment on the entry's line or on the comment lines right above it.

    Relies on the template's layout: resources at two spaces of indentation under `Resources:`.
    """
    comments, resource, in_resources, listing, above = {}, None, False, None, []
    for line in text.splitlines():
        stripped = line.strip()
        if re.fullmatch(r"[A-Za-z]\w*:.*", line):  # a top-level section
            in_resources, resource, listing = line.startswith("Resources:"), None, None
        elif in_resources and (match := re.fullmatch(r"  (\w+):\s*(#.*)?", line)):
            resource, listing = match.group(1), None
        elif match := re.fullmatch(r"\s*(ignore_checks|SuppressedRules):\s*(#.*)?", line):
            listing = match.group(1)
        elif listing and (match := re.fullmatch(r"\s*-\s*([\w.]+)\s*(?:#\s*(.*))?", line)):
            reason = (match.group(2) or "").strip() or " ".join(above).strip()
            comments[(resource, listing, match.group(1))] = reason
        elif stripped and not stripped.startswith("#"):
            listing = None
        above = above + [stripped.lstrip("#").strip()] if stripped.startswith("#") else []
    return comments


# ---------------------------------------------------------------------------------------------------- reports

@dataclass
class Finding:
    rule: str
    resource: str  # as the scanner names it (a transformed resource may have been generated from another)
    where: str  # which template
    message: str


@dataclass
class Report:
    scanner: str
    version: str
    scope: str
    passed: str = ""  # what passed, in the scanner's own terms
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[tuple[Finding, Suppression]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def apply_suppressions(report: Report, raw: list[tuple[Finding, str]], suppressions: list[Suppression]) -> None:
    """Split raw findings (each with the template.yaml resource it comes from) into suppressed and left."""
    by_key = {(s.resource, s.rule): s for s in suppressions if s.scanner == report.scanner}
    for finding, source in raw:
        suppression = by_key.get((source, finding.rule))
        if suppression:
            report.suppressed.append((finding, suppression))
        else:
            report.findings.append(finding)


def stale(suppressions: list[Suppression], reports: list[Report]) -> list[Suppression]:
    """Suppressions that suppressed nothing in any scan: what they excused is gone or was never reported."""
    used = {suppression for report in reports for _, suppression in report.suppressed}
    scanned = {report.scanner for report in reports if not report.errors}
    return [s for s in suppressions if s.scanner in scanned and s not in used]


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)


def tool_error(process: subprocess.CompletedProcess) -> str:
    output = (process.stderr or process.stdout).strip().splitlines()
    return f"exit {process.returncode}: " + " / ".join(output[-5:])


def json_output(process: subprocess.CompletedProcess, report: "Report", name: str):
    """A tool's JSON report, kept in the build folder; None (and the tool's error on the report) if it wrote none."""
    (BUILD / name).write_text(process.stdout)
    try:
        return json.loads(process.stdout)
    except json.JSONDecodeError:
        report.errors.append(tool_error(process))
        return None


# ---------------------------------------------------------------------------------------------------- checkov

def scan_checkov(template_path: Path, transformed_path: Path, transformed: dict,
                 suppressions: list[Suppression]) -> Report:
    """checkov on both templates in one run. It applies its `skip` Metadata itself and reports what it skipped."""
    report = Report("checkov", metadata.version("checkov"), "template.yaml and the transformed CloudFormation")
    env = os.environ | {"BC_SKIP_MAPPING": "TRUE"}  # no download of Prisma Cloud's guideline mappings
    process = run([TOOLS_BIN / "checkov", "--framework", "cloudformation", "--skip-download", "--output", "json",
                   "--compact", "--file", template_path, "--file", transformed_path], env=env)
    results = json_output(process, report, "checkov.json")
    if results is None:
        return report
    results = results if isinstance(results, list) else [results]
    passed = sum(len(r["results"].get("passed_checks", [])) for r in results)
    report.passed = f"{passed} checks passed"
    raw = []  # what checkov skipped is counted again here, so that a skip from elsewhere (an inline comment) fails
    for result in results:
        for check in result["results"].get("failed_checks", []) + result["results"].get("skipped_checks", []):
            transformed_file = check["file_path"].endswith(transformed_path.name)
            resource = check["resource"].rsplit(".", 1)[-1]
            finding = Finding(check["check_id"], resource, "transformed.json" if transformed_file else "template.yaml",
                              check["check_name"])
            raw.append((finding, source_of(transformed, resource) if transformed_file else resource))
    apply_suppressions(report, raw, suppressions)
    return report


# ---------------------------------------------------------------------------------------------------- cfn-lint

def scan_cfn_lint(template: dict, transformed: dict, suppressions: list[Suppression]) -> Report:
    """cfn-lint and the serverless rules on both templates, with its Metadata suppressions removed: so that this
    script sees what each suppression suppresses. It honours only exact rule ids (cfn-lint also takes prefixes)."""
    versions = f"{metadata.version('cfn-lint')}, cfn-lint-serverless {metadata.version('cfn-lint-serverless')}"
    report = Report("cfn-lint", versions, "template.yaml and the transformed CloudFormation")
    copies = {"template.yaml": BUILD / "cfn-lint" / "template.json",
              "transformed.json": BUILD / "cfn-lint" / "transformed.json"}
    copies["template.yaml"].parent.mkdir(parents=True, exist_ok=True)
    for path, content in zip(copies.values(), (template, transformed)):
        path.write_text(json.dumps(_without_cfn_lint_metadata(content), indent=1))
    rules = ["--append-rules", "cfn_lint_serverless.rules"]
    process = run([TOOLS_BIN / "cfn-lint", "--format", "json", "--regions", REGION, *rules, "--", *copies.values()])
    matches = json_output(process, report, "cfn-lint.json")
    if matches is None:
        return report
    listed = run([TOOLS_BIN / "cfn-lint", "--list-rules", *rules]).stdout
    report.passed = f"{len(re.findall(r'(?m)^[A-Z]+[0-9]+:', listed))} rules run on 2 templates"
    raw = []
    for match in matches:
        where = "template.yaml" if Path(match["Filename"]) == copies["template.yaml"] else "transformed.json"
        path = match["Location"]["Path"]
        resource = path[1] if len(path) > 1 and path[0] == "Resources" else "(template)"
        source = source_of(transformed, resource) if where == "transformed.json" else resource
        raw.append((Finding(match["Rule"]["Id"], resource, where, match["Message"]), source))
    apply_suppressions(report, raw, suppressions)
    return report


def _without_cfn_lint_metadata(template: dict) -> dict:
    template = copy.deepcopy(template)
    template.get("Metadata", {}).pop("cfn-lint", None)
    for resource in template.get("Resources", {}).values():
        (resource.get("Metadata") or {}).pop("cfn-lint", None)
    return template


# ---------------------------------------------------------------------------------------------------- cfn-guard

def guard_binary() -> Path:
    """The cfn-guard build the npm package ships for this machine (Linux or macOS, x86_64 or aarch64)."""
    system = {"Linux": "ubuntu", "Darwin": "macos"}.get(platform.system(), platform.system().lower())
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    return GUARD_PACKAGE / "bin" / system / machine / "cfn-guard"


def scan_guard(transformed_path: Path, transformed: dict, suppressions: list[Suppression]) -> Report:
    """cfn-guard with the Control Tower rules on the transformed template. Those rules read no suppression
    Metadata, so this script applies `guard: SuppressedRules` itself, resource by resource."""
    binary = guard_binary()
    version = json.loads((GUARD_PACKAGE / "guard-version.json").read_text())["version"]
    package = json.loads((GUARD_PACKAGE / "package.json").read_text())["version"]
    report = Report("cfn-guard", f"{version}, Control Tower rules of @cdklabs/cdk-validator-cfnguard {package}",
                    "the transformed CloudFormation")
    if not binary.exists():
        report.errors.append(f"no cfn-guard for {platform.system()} {platform.machine()} in {GUARD_PACKAGE}")
        return report
    process = run([binary, "validate", "--rules", GUARD_RULES, "--data", transformed_path, "--output-format", "json",
                   "--show-summary", "none", "--structured"])
    (BUILD / "cfn-guard.json").write_text(process.stdout)
    try:
        [result] = json.loads(process.stdout)
    except (json.JSONDecodeError, ValueError):
        report.errors.append(tool_error(process))
        return report
    total = len(list(GUARD_RULES.rglob("*.guard")))
    report.passed = f"{len(result.get('compliant', []))} rules passed (of {total}; the others do not apply)"
    raw = []
    for rule, control, resources in guard_failures(result):
        for resource in resources or ["(template)"]:
            raw.append((Finding(rule, resource, "transformed.json", control), source_of(transformed, resource)))
    apply_suppressions(report, raw, suppressions)
    return report


def guard_failures(result: dict) -> list[tuple[str, str, list[str]]]:
    """(rule name, Control Tower control, resources whose values failed it) for each failed rule of a guard result.

    cfn-guard reports a failed rule as a tree of failed clauses, each with the path of the value it checked: the
    resources are the logical ids in those paths.
    """
    failures = []
    for entry in result.get("not_compliant", []):
        rule = entry.get("Rule", {}).get("name", "unknown rule")
        text = json.dumps(entry)
        control = re.search(r"\[(CT\.[A-Z0-9.]+)\]", text)
        resources = sorted(set(re.findall(r'"path": "/Resources/([^/"]+)', text)))
        failures.append((rule, control.group(1) if control else "", resources))
    return failures


# ---------------------------------------------------------------------------------------------------- asl-validator

def placeholder_values(template: dict) -> dict[str, str]:
    """What CloudFormation would put in each state machine's DefinitionSubstitutions: plausible names and ARNs."""
    values = {}
    for resource in template["Resources"].values():
        for name, value in resource.get("Properties", {}).get("DefinitionSubstitutions", {}).items():
            values[name] = _plausible(template, value)
    return values


def _plausible(template: dict, value) -> str:
    if not isinstance(value, dict):
        return str(value)
    (function, argument), = value.items()
    if function == "Fn::FindInMap":
        mapping, top, second = argument
        return template["Mappings"][mapping][top][second]
    if function == "Ref" and argument in template.get("Parameters", {}):
        return str(template["Parameters"][argument].get("Default", argument))
    name = argument[0] if function == "Fn::GetAtt" else argument
    if function not in ("Ref", "Fn::GetAtt") or name not in template["Resources"]:
        raise ValueError(f"add a plausible value for {value} to scripts/scan.py")
    kind = template["Resources"][name]["Type"]
    arns = {  # resource type -> (ARN, what Ref returns)
        "AWS::Serverless::Function": (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}", name),
        "AWS::Lambda::Function": (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}", name),
        "AWS::DynamoDB::Table": (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}", name),
        "AWS::SQS::Queue": (f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
                            f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"),
        "AWS::SNS::Topic": (f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",) * 2,
        "AWS::S3::Bucket": (f"arn:aws:s3:::{name.lower()}", name.lower()),
    }
    if kind not in arns:
        raise ValueError(f"add a plausible value for a {kind} to scripts/scan.py")
    arn, ref = arns[kind]
    return ref if function == "Ref" else arn


def scan_asl(template: dict, template_path: Path) -> Report:
    """asl-validator (schema, JSONPath and Resource ARN checks) on each state machine definition file."""
    package = json.loads((NODE_MODULES / "asl-validator" / "package.json").read_text())["version"]
    report = Report("asl-validator", package, "the state machine definitions, placeholders filled in")
    values = placeholder_values(template)
    definitions = [resource["Properties"][key] for resource in template["Resources"].values() for key in DEFINITION_PATHS
                   if isinstance(resource.get("Properties", {}).get(key), str)]
    for relative in definitions:
        text = find_file(template_path, relative).read_text()
        for name, value in values.items():
            text = text.replace("${%s}" % name, value)
        filled = BUILD / Path(relative).name
        filled.write_text(text)
        if left := sorted(set(re.findall(r"\$\{(\w+)\}", text))):
            report.findings.append(Finding("placeholder", relative, "definition", f"no substitution for {left}"))
        process = run([NODE_MODULES / ".bin" / "asl-validator", "--json-path", filled])
        if process.returncode != 0:
            message = (process.stdout + process.stderr).strip()
            report.findings.append(Finding("invalid", relative, "definition", message))
    report.passed = f"{len(definitions) - len(report.findings)} of {len(definitions)} definitions valid"
    return report


# ---------------------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml",
                        help="the SAM template to scan (default: the repository's template.yaml)")
    parser.add_argument("--verbose", "-v", action="store_true", help="list each suppressed finding and its reason")
    args = parser.parse_args(argv)

    BUILD.mkdir(parents=True, exist_ok=True)
    text = args.template.read_text()
    template = yaml.load(text, Loader=CfnLoader)
    suppressions, problems = suppressions_in(template, text)
    try:
        transformed = transform(template, args.template)
    except Exception as error:  # samtranslator lists every problem of the document in its message
        print(f"SAM transform failed: {error}", file=sys.stderr)
        return 2
    transformed_path = BUILD / "transformed.json"
    transformed_path.write_text(json.dumps(transformed, indent=1))

    with ThreadPoolExecutor(max_workers=2) as pool:  # checkov takes as long as the other three together
        reports = [future.result() for future in [
            pool.submit(scan_checkov, args.template, transformed_path, transformed, suppressions),
            pool.submit(scan_cfn_lint, template, transformed, suppressions),
            pool.submit(scan_guard, transformed_path, transformed, suppressions),
            pool.submit(scan_asl, template, args.template),
        ]]
    leftovers = stale(suppressions, reports)
    for report in reports:
        state = "ERROR" if report.errors else "FAIL" if report.findings else "ok"
        print(f"{report.scanner} {report.version} ({report.scope}): {report.passed or 'did not run'}, "
              f"findings: {len(report.findings)}, suppressed: {len(report.suppressed)} [{state}]")
        for error in report.errors:
            print(f"    error: {error}")
        for finding in report.findings:
            message = finding.message.strip().replace("\n", "\n        ")
            print(f"    {finding.rule} on {finding.resource} ({finding.where}): {message}")
        if args.verbose:
            for finding, suppression in report.suppressed:
                print(f"    suppressed {finding.rule} on {finding.resource} ({finding.where}): {suppression.reason}")
    for suppression in leftovers:
        problems.append(f"stale {suppression.scanner} suppression of {suppression.rule} on {suppression.resource}: "
                        "it suppresses nothing, delete it")
    for problem in problems:
        print(f"template.yaml: {problem}")
    if any(report.errors for report in reports):
        return 2
    failed = problems or any(report.findings for report in reports)
    print("scan: " + ("FAILED (fix the template, or suppress with a reason: see scripts/scan.py)" if failed else
                      "passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

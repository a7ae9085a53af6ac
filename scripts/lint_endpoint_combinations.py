"""`sam validate --lint` on every combination of the endpoint parameters; checkov on each one that creates an endpoint.

template.yaml is deployed with its parameters, and the endpoint parameters (EndpointSource x EndpointCompute, plus the
few that change what is created: an own image or the Hugging Face one, a fixed fleet or autoscaling, another region)
decide which resources exist and which branch of each Fn::If is taken. `sam validate` on template.yaml sees only the
defaults, where the stack creates no endpoint at all. So for each combination this script writes a copy of
template.yaml whose parameter Defaults are that combination (required values filled with plausible ones), then:

- runs `sam validate --lint` on it (SAM's transform and cfn-lint), two at a time;
- transforms it with aws-sam-translator as scripts/scan.py does, and prints what the combination creates;
- for a combination that creates an endpoint, runs checkov on the copy and its transformed CloudFormation. checkov
  drops resources whose Condition is false with the defaults, so `make scan` (scripts/scan.py, on the defaults)
  never shows it the endpoint's resources. cfn-lint and cfn-guard see every resource in `make scan` already (and
  cfn-lint runs again here, through sam validate).

checkov's findings are suppressed as in scripts/scan.py: by `checkov: skip` in a resource's Metadata, and for the
endpoint's resources by `checkov-when-created: skip` (same format; scan.py would call those stale, since in its scan
checkov never sees these resources). A finding left, or a `checkov-when-created` skip that suppresses nothing in any
combination, fails the run.

Runs with the scan tools' Python (.tools/scan: PyYAML, aws-sam-translator, checkov); `make lint` runs it. Copies and
reports go to .lesionflow/lint-combinations/.
"""

import argparse
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
BUILD = ROOT / ".lesionflow" / "lint-combinations"
SAM = ROOT / ".tools" / "sam" / "bin" / "sam"
WHEN_CREATED = "checkov-when-created"  # Metadata key of the checkov skips for the endpoint's resources

_spec = importlib.util.spec_from_file_location("scan", ROOT / "scripts" / "scan.py")
scan = importlib.util.module_from_spec(_spec)
sys.modules["scan"] = scan
_spec.loader.exec_module(scan)  # also puts local/ on sys.path, for the template reader below
from lesionflow_local.template import placeholder_resolver  # noqa: E402

logging.getLogger("samtranslator").setLevel(logging.ERROR)  # not its "unpublished metrics" warning per transform

# Plausible values for what a combination requires (nothing here talks to AWS).
MODEL_DATA = "s3://lesionflow-models-123456789012/vit-ham10000/model.tar.gz"
OWN_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/lesionflow-model:1.0.0"
MODEL_DATA_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
HUB_REVISION = {"HuggingFaceModelRevision": "0123456789abcdef0123456789abcdef01234567"}  # a Hub model must be pinned


@dataclass(frozen=True)
class Combination:
    name: str
    parameters: dict[str, str] = field(default_factory=dict)  # new Defaults
    region: str = "us-east-1"
    scan: bool = True  # with checkov, if it creates an endpoint (a region changes nothing checkov looks at)


COMBINATIONS = [
    Combination("existing-serverless"),  # the defaults: nothing created
    Combination("existing-instance", {"EndpointCompute": "instance"}),
    Combination("huggingface-serverless", {"EndpointSource": "huggingface"} | HUB_REVISION),
    Combination("huggingface-instance", {"EndpointSource": "huggingface", "EndpointCompute": "instance"} | HUB_REVISION),
    Combination("artifact-serverless", {"EndpointSource": "artifact", "ModelDataUrl": MODEL_DATA,
                                        "ContainerImageUri": OWN_IMAGE}),
    Combination("artifact-instance", {"EndpointSource": "artifact", "EndpointCompute": "instance",
                                      "ModelDataUrl": MODEL_DATA, "ContainerImageUri": OWN_IMAGE,
                                      "ModelDataKmsKeyArn": MODEL_DATA_KEY, "MaxInstanceCount": "4",
                                      "ModelContract": "tensor-npy"}),
    # an artifact served by the Hugging Face container, on a fixed fleet (no autoscaling)
    Combination("artifact-hf-image-fixed-fleet", {"EndpointSource": "artifact", "EndpointCompute": "instance",
                                                  "ModelDataUrl": MODEL_DATA, "InitialInstanceCount": "2",
                                                  "MaxInstanceCount": "2"}),
    # the Hugging Face image's registry comes from a mapping by region
    Combination("huggingface-serverless-eu-west-1", {"EndpointSource": "huggingface"} | HUB_REVISION, region="eu-west-1",
                scan=False),
]


# ---------------------------------------------------------------------------------------------------- the copies

def with_defaults(text: str, parameters: dict[str, str]) -> str:
    """template.yaml's text with new Defaults for some parameters; everything else (tags, comments) as it was."""
    for name, value in parameters.items():
        pattern = re.compile(r"(?m)^(  %s:\n(?:    .*\n)*?    Default: ).*$" % re.escape(name))
        text, found = pattern.subn(lambda match: match.group(1) + f'"{value}"', text, count=1)
        if not found:
            raise ValueError(f"no parameter {name} with a Default in template.yaml")
    return text


def write_copy(combination: Combination, text: str) -> tuple[Path, dict]:
    copy_text = with_defaults(text, combination.parameters)
    template = scan.yaml.load(copy_text, Loader=scan.CfnLoader)
    for name, value in combination.parameters.items():  # the regular expression changed what it should
        assert str(template["Parameters"][name]["Default"]) == value, (combination.name, name)
    path = BUILD / combination.name / "template.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(copy_text)
    return path, template


# ---------------------------------------------------------------------------------------------------- what it creates

def created(template: dict, region: str) -> dict[str, dict]:
    """The conditional resources a deploy with the template's defaults creates, with their properties resolved."""
    resolve = placeholder_resolver(template, region)
    return {name: resolve(resource.get("Properties", {}))
            for name, resource in template["Resources"].items()
            if "Condition" in resource and resolve.condition(resource["Condition"])}


def summary(resources: dict[str, dict]) -> str:
    if "SageMakerEndpoint" not in resources:
        return "no endpoint resource (invokes the existing endpoint EndpointName)"
    model = resources["SageMakerModel"]
    [variant] = resources["SageMakerEndpointConfig"]["ProductionVariants"]
    compute = (f"serverless {variant['ServerlessConfig']['MemorySizeInMB']} MB x "
               f"{variant['ServerlessConfig']['MaxConcurrency']}" if "ServerlessConfig" in variant else
               f"{variant['InitialInstanceCount']} x {variant['InstanceType']}")
    if "SageMakerScalableTarget" in resources:
        target = resources["SageMakerScalableTarget"]
        compute += f", autoscaling {target['MinCapacity']}-{target['MaxCapacity']}"
    container = model["PrimaryContainer"]
    serves = container.get("Environment", {}).get("HF_MODEL_ID") or container.get("ModelDataUrl")
    isolation = "isolated" if model["EnableNetworkIsolation"] else "network on"
    return f"{compute}; serves {serves} with {container['Image']} ({isolation})"


# ---------------------------------------------------------------------------------------------------- checks

def validate(sam: Path, path: Path, region: str) -> tuple[bool, str]:
    env = os.environ | {"SAM_CLI_TELEMETRY": "0"}
    process = subprocess.run([str(sam), "validate", "--lint", "--region", region, "--template-file", str(path)],
                             capture_output=True, text=True, env=env)
    return process.returncode == 0, (process.stdout + process.stderr).strip()


def when_created_skips(template: dict) -> list:
    return [scan.Suppression("checkov", logical_id, skip.get("id", ""), (skip.get("comment") or "").strip())
            for logical_id, resource in template["Resources"].items()
            for skip in (resource.get("Metadata") or {}).get(WHEN_CREATED, {}).get("skip", [])]


@dataclass
class Target:
    """A combination for checkov: its copy, the CloudFormation SAM makes of it, and the skips that apply."""

    path: Path
    transformed_path: Path
    transformed: dict
    suppressions: list


def target(path: Path, template: dict) -> Target:
    transformed = scan.transform(template, path)
    transformed_path = path.parent / "transformed.json"
    transformed_path.write_text(json.dumps(transformed, indent=1))
    suppressions, _ = scan.suppressions_in(template, path.read_text())  # `make scan` checks their reasons
    return Target(path, transformed_path, transformed, suppressions + when_created_skips(template))


def checkov(targets: dict[str, Target]) -> dict[str, "scan.Report"]:
    """One checkov run over every target (its start-up is most of its time), one report per combination, made as
    scripts/scan.py's scan_checkov makes its report."""
    if not targets:
        return {}
    reports = {name: scan.Report("checkov", metadata.version("checkov"), "the copy and its CloudFormation")
               for name in targets}
    files = [part for t in targets.values() for part in ("--file", t.path, "--file", t.transformed_path)]
    process = scan.run([scan.TOOLS_BIN / "checkov", "--framework", "cloudformation", "--skip-download", "--output",
                        "json", "--compact", *files], env=os.environ | {"BC_SKIP_MAPPING": "TRUE"}, cwd=ROOT)
    (BUILD / "checkov.json").write_text(process.stdout)
    try:
        results = json.loads(process.stdout)
    except json.JSONDecodeError:
        for report in reports.values():
            report.errors.append(scan.tool_error(process))
        return reports
    passed, raw = dict.fromkeys(targets, 0), {name: [] for name in targets}
    for result in results if isinstance(results, list) else [results]:
        for check in result["results"].get("passed_checks", []):
            passed[Path(check["file_path"]).parent.name] += 1
        for check in result["results"].get("failed_checks", []) + result["results"].get("skipped_checks", []):
            name, file = Path(check["file_path"]).parent.name, Path(check["file_path"]).name
            resource = check["resource"].rsplit(".", 1)[-1]
            transformed = file == targets[name].transformed_path.name
            finding = scan.Finding(check["check_id"], resource, "transformed.json" if transformed else "template.yaml",
                                   check["check_name"])
            source = scan.source_of(targets[name].transformed, resource) if transformed else resource
            raw[name].append((finding, source))
    for name, report in reports.items():
        report.passed = f"{passed[name]} checks passed"
        scan.apply_suppressions(report, raw[name], targets[name].suppressions)
    return reports


# ---------------------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sam", type=Path, default=SAM, help="the SAM CLI (default: .tools/sam/bin/sam)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    BUILD.mkdir(parents=True, exist_ok=True)
    text = TEMPLATE.read_text()
    skips = when_created_skips(scan.yaml.load(text, Loader=scan.CfnLoader))
    problems = [f"{s.resource}: {WHEN_CREATED} skip of {s.rule} gives no reason" for s in skips if len(s.reason) < 20]

    copies = {c.name: write_copy(c, text) for c in COMBINATIONS}
    creates = {c.name: created(copies[c.name][1], c.region) for c in COMBINATIONS}
    with ThreadPoolExecutor(max_workers=2) as pool:  # sam validate, two at a time (two cores), while checkov runs here
        validations = {c.name: pool.submit(validate, args.sam, copies[c.name][0], c.region) for c in COMBINATIONS}
        targets = {}
        for combination in COMBINATIONS:
            try:
                transformed = target(*copies[combination.name])
            except Exception as error:  # samtranslator lists every problem of the document in its message
                problems.append(f"{combination.name}: SAM transform failed: {error}")
                continue
            if combination.scan and "SageMakerEndpoint" in creates[combination.name]:
                targets[combination.name] = transformed
        reports = checkov(targets)

    for combination in COMBINATIONS:
        valid, output = validations[combination.name].result()
        report = reports.get(combination.name)
        state = "ok" if valid and not (report and (report.findings or report.errors)) else "FAIL"
        checked = f", checkov {report.passed}" if report else ""
        print(f"{combination.name} ({combination.region}): {summary(creates[combination.name])}{checked} [{state}]")
        if not valid:
            problems.append(f"{combination.name}: sam validate --lint failed")
            print("    " + output.replace("\n", "\n    "))
        for error in report.errors if report else []:
            problems.append(f"{combination.name}: checkov did not run: {error}")
        for finding in report.findings if report else []:
            problems.append(f"{combination.name}: {finding.rule} on {finding.resource} ({finding.where}): "
                            f"{finding.message}")
    used = {suppression for report in reports.values() for _, suppression in report.suppressed}
    for skip in skips if reports else []:
        if skip not in used:
            problems.append(f"stale {WHEN_CREATED} skip of {skip.rule} on {skip.resource}: it suppresses nothing in "
                            "any combination, delete it")
    for problem in problems:
        print(problem)
    print(f"endpoint combinations: {len(COMBINATIONS)} validated, {len(reports)} scanned with checkov, in "
          f"{time.monotonic() - started:.0f} s: " + ("FAILED" if problems else "passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

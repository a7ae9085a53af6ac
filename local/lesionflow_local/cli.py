"""The local commands of `lesionflow` (local up, invoke, demo, fault-run): the whole pipeline on this machine."""

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

import boto3

from lesionflow_local.fault_plan import FaultRunSettings
from lesionflow_local.template import ROOT, load, resources_of_type
from lesionflow.contracts import contract_names
from lesionflow_model.faults import FaultInjector, FaultKind

STATE_FILE = ROOT / ".lesionflow" / "local.json"


def register(commands) -> None:
    """Add the local stack's commands to the ``lesionflow`` parser; each sets ``run`` to what executes it."""
    local = commands.add_parser("local", help="the local stack").add_subparsers(dest="action", required=True)
    up = local.add_parser("up", help="start the whole pipeline on this machine and serve until interrupted")
    up.set_defaults(run=lambda args: local_up(args.port, args.json, args.model, args.endpoint_faults, args.contract,
                                              args.parameter_overrides))
    up.add_argument("--port", type=int, default=4747, help="loopback port (0 picks a free one; default 4747)")
    up.add_argument("--json", action="store_true", help="print the connection details as one line of JSON")
    up.add_argument("--model", type=Path, help="an ONNX image classifier to serve instead of the untrained demo model")
    up.add_argument("--contract", choices=contract_names(), help="the model contract the pipeline and the local "
                    "endpoint speak (default: the template's ModelContract)")
    up.add_argument("--parameter-overrides", nargs="+", type=_parameter, default=[], metavar="KEY=VALUE",
                    help="template parameters, as `sam deploy --parameter-overrides` takes them; e.g. "
                         "EndpointName=lesionflow-gone makes the pipeline call an endpoint the local one is not "
                         "(it serves lesionflow-local)")
    up.add_argument("--endpoint-faults", type=FaultInjector.parse, metavar="SPEC", default=None,
                    help="make the model endpoint misbehave, e.g. rate=0.2,kinds=throttle+timeout,delay=2,seed=1 "
                         f"(kinds: {'+'.join(FaultKind)}; default all)")

    invoke = commands.add_parser("invoke", help="run one function's handler against the local stack")
    invoke.set_defaults(run=lambda args: invoke_function(args.function, args.event, args.endpoint_url))
    invoke.add_argument("function", help="logical id (ValidateFunction) or short name (validate)")
    invoke.add_argument("--event", type=Path, required=True, help="event file, e.g. events/validate.json")
    invoke.add_argument("--endpoint-url", help="the local stack's endpoint (default: the running `local up`)")

    demo = commands.add_parser("demo", help="run the sample images through a fresh local stack and print the results")
    demo.set_defaults(run=lambda args: run_demo(args.model, args.timeout))
    demo.add_argument("--model", type=Path, help="an ONNX image classifier instead of the untrained demo model")
    demo.add_argument("--timeout", type=float, default=120, help="seconds to wait for every record")

    faults = commands.add_parser("fault-run", help="hundreds of uploads while faults are injected, then an audit "
                                                  "(exits 1 unless 0 lost and 0 duplicated)")
    faults.set_defaults(run=fault_run)
    defaults = FaultRunSettings()
    faults.add_argument("--uploads", type=int, default=defaults.uploads, help="how many keys to upload")
    faults.add_argument("--endpoint-fault-rate", type=float, default=defaults.endpoint_fault_rate,
                        help="share of endpoint requests answered with a fault (every kind)")
    faults.add_argument("--duplicate-rate", type=float, default=defaults.duplicate_rate,
                        help="share of queue messages delivered twice")
    faults.add_argument("--crash-rate", type=float, default=defaults.crash_rate,
                        help="share of dispatcher batches that die halfway")
    faults.add_argument("--seed", type=int, default=defaults.seed)
    faults.add_argument("--timeout", type=float, default=defaults.timeout_seconds, help="seconds to wait for records")
    faults.add_argument("--json", action="store_true", help="print the audit as one line of JSON")


def run_demo(model: Path | None, timeout: float) -> int:
    from lesionflow_local.demo import run_demo as demo

    return demo(model, timeout)


def fault_run(args: argparse.Namespace) -> int:
    from lesionflow_local.fault_run import LOG, print_report, run_fault_injection

    report = run_fault_injection(FaultRunSettings(
        uploads=args.uploads, endpoint_fault_rate=args.endpoint_fault_rate, duplicate_rate=args.duplicate_rate,
        crash_rate=args.crash_rate, seed=args.seed, timeout_seconds=args.timeout))
    print_report(report, args.json)
    print(f"Handler logs and metrics: {LOG.relative_to(ROOT)}", file=sys.stderr)
    return 0 if report.ok else 1


def _parameter(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not (name and equals):
        raise argparse.ArgumentTypeError(f"a parameter override is KEY=VALUE, not {text!r}")
    return name, value


def local_up(port: int, as_json: bool, model: Path | None, endpoint_faults: FaultInjector | None,
             contract: str | None, parameter_overrides: list[tuple[str, str]] = ()) -> int:
    from lesionflow_local.server import LocalStackServer

    out = sys.stdout
    sys.stdout = sys.stderr  # handlers log and emit metrics on stdout: keep stdout for the connection details
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    parameters = dict(parameter_overrides) | ({"ModelContract": contract} if contract else {})
    with LocalStackServer(port=port, model_path=model, endpoint_faults=endpoint_faults,
                          parameters=parameters) as server:
        details = server.details()
        STATE_FILE.parent.mkdir(exist_ok=True)
        STATE_FILE.write_text(json.dumps(details, indent=2))
        if as_json:
            print(json.dumps(details), file=out, flush=True)
        else:
            print(_describe(details), file=out, flush=True)
        stopped.wait()
        print("lesionflow local: shutting down", file=sys.stderr)
    STATE_FILE.unlink(missing_ok=True)
    return 0


def _describe(details: dict) -> str:
    lines = [f"LesionFlow local stack ready at {details['endpoint_url']} (region {details['region']})", ""]
    lines += [f"  {name:<18} {details[name]}" for name in
              ("bucket", "upload_prefix", "table", "queue_url", "dlq_url", "state_machine_arn", "endpoint_name",
               "served_endpoint_name", "model_contract")]
    lines += [f"  {'model':<18} {details['model']}" + (f" ({details['model_disclaimer']})"
                                                        if details["model_disclaimer"] else ""), ""]
    lines += ["Upload with any AWS client, for example:",
              f"  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws --endpoint-url {details['endpoint_url']} "
              f"--region {details['region']} s3 cp samples/ham-size-dark.jpg s3://{details['bucket']}/"
              f"{details['upload_prefix']}", "Ctrl-C stops it."]
    return "\n".join(lines)


def invoke_function(function: str, event: Path, endpoint_url: str | None) -> int:
    """Call the function through the local stack's Lambda API: its template environment, its real handler."""
    details = json.loads(STATE_FILE.read_text()) if endpoint_url is None and STATE_FILE.is_file() else {}
    endpoint_url = endpoint_url or details.get("endpoint_url")
    if not endpoint_url:
        print("lesionflow invoke: no local stack is running (start `lesionflow local up`, or pass --endpoint-url)",
              file=sys.stderr)
        return 2
    target = function_id(function)
    client = boto3.client("lambda", endpoint_url=endpoint_url, region_name=details.get("region", "us-east-1"),
                          aws_access_key_id="local", aws_secret_access_key="local")
    response = client.invoke(FunctionName=target, Payload=event.read_bytes())
    print(json.dumps(json.loads(response["Payload"].read()), indent=2))
    return 1 if "FunctionError" in response else 0


def function_id(name: str) -> str:
    """A function's logical id from itself or from its code folder's name (``validate`` -> ``ValidateFunction``)."""
    functions = resources_of_type(load(), "AWS::Serverless::Function")
    by_folder = {Path(f["Properties"]["CodeUri"]).name: logical_id for logical_id, f in functions.items()}
    return name if name in functions else by_folder.get(name, name)


"""The local stack: LesionFlow's whole pipeline on one loopback port, built from template.yaml.

One HTTP endpoint serves moto (S3, SQS, DynamoDB, Step Functions executing statemachine/*.asl.json), the Lambda
Invoke API in front of the real handlers, and the SageMaker runtime API in front of an ONNX model. Any AWS SDK or the
AWS CLI pointed at it with dummy credentials works; moto's Step Functions calls back into the same port.
"""

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import asdict
from functools import cache
from pathlib import Path

import boto3
from moto.core.config import default_user_config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from lesionflow.contracts import load_contract
from lesionflow_local.event_source import DeliveryFaults, SqsEventSource
from lesionflow_local.lambdas import LambdaApi
from lesionflow_local.stack import ACCOUNT, LocalStack, provision, publish, with_overrides
from lesionflow_local.template import ROOT, function_properties, load
from lesionflow_model.classifier import OnnxImageClassifier
from lesionflow_model.demo_model import MODEL_NAME, build, write
from lesionflow_model.faults import FaultInjector
from lesionflow_model.server import ModelServer

DEFAULT_MODEL = ROOT / ".lesionflow" / "models" / f"{MODEL_NAME}.onnx"
LOCAL_ENDPOINT_NAME = "lesionflow-local"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}

log = logging.getLogger("lesionflow.local")


class _Front:
    """Route each request: Lambda Invoke and SageMaker runtime to local code, everything else to moto."""

    def __init__(self, moto_app, lambdas: LambdaApi, model: ModelServer):
        self.routes = [lambdas, model]
        self.moto_app = moto_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        app = next((route for route in self.routes if route.handles(path)), self.moto_app)
        return app(environ, start_response)


class LocalStackServer:
    """The local stack on one port. ``parameters`` override the template's parameters, as ``sam deploy
    --parameter-overrides`` does; ``overrides`` replace resources' properties (``stack.with_overrides``) for
    everything the stack reads from the template; ``middleware`` wraps the WSGI app that serves every request (to
    count or time them); ``on_invoke(function, seconds)`` hears of every Lambda invocation once its handler returns
    or raises.

    The local endpoint stands for an endpoint created outside the stack (``EndpointSource=existing``, the template's
    default): it serves one name, ``endpoint_name`` (default ``lesionflow-local``), which is also the stack's
    ``EndpointName`` unless ``parameters`` say otherwise. Overriding ``EndpointName`` alone makes the pipeline call an
    endpoint that does not exist, which the local endpoint answers as SageMaker does (400 ``ValidationError``)."""

    def __init__(self, port: int = 0, model_path: Path | None = None, parameters: dict[str, str] | None = None,
                 endpoint_faults: FaultInjector | None = None, delivery_faults: DeliveryFaults | None = None,
                 overrides: dict[str, dict] | None = None, middleware: Callable | None = None,
                 on_invoke: Callable[[str, float], None] | None = None, endpoint_name: str = LOCAL_ENDPOINT_NAME):
        self.model_path = Path(model_path) if model_path else default_model()
        self.parameters = {"EndpointName": endpoint_name} | (parameters or {})
        self.template = with_overrides(load(), overrides or {})
        unknown = set(self.parameters) - set(self.template["Parameters"])
        if unknown:
            raise ValueError(f"the template has no parameter {', '.join(sorted(unknown))}")
        self.delivery_faults = delivery_faults or DeliveryFaults()
        self.lambdas = LambdaApi({})
        self.model = ModelServer(OnnxImageClassifier(self.model_path), faults=endpoint_faults,
                                 contract=load_contract(self.parameter("ModelContract")), endpoint_name=endpoint_name,
                                 account=ACCOUNT)
        app = _Front(DomainDispatcherApplication(create_backend_app), self.lambdas, self.model)
        app = middleware(app) if middleware else app
        self.on_invoke = on_invoke
        self.httpd = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
        self.stop_polling = threading.Event()
        self.stack: LocalStack | None = None

    def parameter(self, name: str) -> str:
        """A template parameter as this stack sets it: overridden, or the template's default."""
        return str(self.parameters.get(name, self.template["Parameters"][name]["Default"]))

    def parameter_values(self) -> dict[str, str]:
        """Every template parameter as this stack sets it."""
        return {name: self.parameter(name) for name in self.template["Parameters"]}

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def start(self) -> "LocalStackServer":
        quiet_engines()
        # moto's Step Functions interpreter calls AWS back at localhost:MOTO_PORT: that is this server.
        os.environ["MOTO_PORT"] = str(self.httpd.server_port)
        default_user_config["stepfunctions"]["execute_state_machine"] = True
        # The handlers run in this process: their AWS calls go to this server too.
        os.environ.update(CREDENTIALS | {"AWS_ENDPOINT_URL": self.endpoint_url})
        threading.Thread(target=self.httpd.serve_forever, name="lesionflow-local", daemon=True).start()
        self.stack = provision(self.parameters, template=self.template, endpoint_url=self.endpoint_url)
        publish(boto3.client("cloudformation", region_name=self.stack.region, endpoint_url=self.endpoint_url),
                self.stack, self.parameter_values())
        for function in self.stack.functions.values():
            function.on_invoke = self.on_invoke
        self.lambdas.functions.update(self.stack.functions)
        threading.Thread(target=self._event_source().run, args=(self.stop_polling,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.stop_polling.set()
        self.httpd.shutdown()

    def __enter__(self) -> "LocalStackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def details(self) -> dict:
        """Connection details, as ``lesionflow local up --json`` prints them."""
        stack = asdict(self.stack)
        del stack["functions"]
        card = self.model.classifier.card
        return {"endpoint_url": self.endpoint_url} | stack | {
            "endpoint_name": self.parameters["EndpointName"], "served_endpoint_name": self.model.endpoint_name,
            "model": card.name, "model_disclaimer": card.disclaimer, "model_contract": self.model.contract.name,
            "parameters": self.parameter_values(),
            "functions": sorted(self.stack.functions)}

    def _event_source(self) -> SqsEventSource:
        """The dispatcher's SQS event source mapping, configured as the template's ``Events`` declare it."""
        [event] = function_properties(self.template, "DispatchFunction")["Events"].values()
        settings = event["Properties"]
        return SqsEventSource(
            sqs=boto3.client("sqs", endpoint_url=self.endpoint_url, region_name=self.stack.region),
            queue_url=self.stack.queue_url, queue_arn=self.stack.queue_arn,
            function=self.stack.functions["DispatchFunction"], batch_size=int(settings.get("BatchSize", 10)),
            window_seconds=float(settings.get("MaximumBatchingWindowInSeconds", 0)),
            report_batch_item_failures="ReportBatchItemFailures" in settings.get("FunctionResponseTypes", []),
            faults=self.delivery_faults,
        )


def quiet_engines() -> None:
    """Keep the engines' chatter (every HTTP request; moto's interpreter logging a Choice's absent path as an
    error) out of the way; the handlers' own structured logs are what a person reads."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("moto").setLevel(logging.CRITICAL)


@cache
def default_model() -> Path:
    """The offline default model, generated (reproducibly) on first use, and again whenever its builder changed;
    built once per process to compare with the file."""
    model = build()
    current = DEFAULT_MODEL.is_file() and DEFAULT_MODEL.read_bytes() == model.SerializeToString()
    return DEFAULT_MODEL if current else write(DEFAULT_MODEL, model)

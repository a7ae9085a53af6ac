"""Run the real Lambda handlers locally, as the template declares them, without Docker.

``LocalFunction`` imports a function's handler from its ``CodeUri`` and ``Handler``, gives it the template's
environment and a context whose remaining time honours the template's ``Timeout``. ``LambdaServer`` speaks the
Lambda Invoke API on loopback, so boto3 (and moto's Step Functions interpreter) can call the handlers through
``AWS_ENDPOINT_URL_LAMBDA``.
"""

import importlib.util
import json
import os
import sys
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from lesionflow_local.template import ROOT, Resolver, function_properties, resources_of_type

# Handlers read os.environ at entry, and one process has one environment: invocations take turns.
_ENVIRONMENT_LOCK = threading.RLock()


@dataclass
class LambdaContext:
    """The context object Lambda passes to a handler; Powertools reads these attributes."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    region: str
    account: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


@dataclass
class LocalFunction:
    logical_id: str
    code_dir: str
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    region: str
    account: str

    def load(self):
        module_name, function_name = self.handler.rsplit(".", 1)
        path = ROOT / self.code_dir / f"{module_name.replace('.', '/')}.py"
        unique = f"lesionflow_functions.{self.logical_id}.{module_name}"
        if unique not in sys.modules:
            spec = importlib.util.spec_from_file_location(unique, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            spec.loader.exec_module(module)
        return getattr(sys.modules[unique], function_name)

    def invoke(self, event):
        """Call the handler with this function's environment and a fresh context; exceptions propagate."""
        context = LambdaContext(self.logical_id, self.memory_mb, self.timeout_seconds, self.region, self.account)
        with _ENVIRONMENT_LOCK, _environment(self.environment | {"AWS_LAMBDA_FUNCTION_NAME": self.logical_id}):
            return self.load()(event, context)


@contextmanager
def _environment(variables: dict[str, str]):
    saved = dict(os.environ)
    os.environ.update({name: str(value) for name, value in variables.items()})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def functions_from_template(template: dict, resolve: Resolver) -> dict[str, LocalFunction]:
    """Every ``AWS::Serverless::Function`` of the template, with its resolved handler, limits and environment."""
    region, account = resolve.ref("AWS::Region"), resolve.ref("AWS::AccountId")
    found = {}
    for logical_id in resources_of_type(template, "AWS::Serverless::Function"):
        properties = resolve(function_properties(template, logical_id))
        found[logical_id] = LocalFunction(
            logical_id=logical_id,
            code_dir=properties["CodeUri"],
            handler=properties["Handler"],
            timeout_seconds=int(properties.get("Timeout", 3)),
            memory_mb=int(properties.get("MemorySize", 128)),
            environment={k: str(v) for k, v in properties["Environment"]["Variables"].items()},
            region=region,
            account=account,
        )
    return found


class LambdaServer(ThreadingHTTPServer):
    """The Lambda ``Invoke`` API on loopback (``POST /2015-03-31/functions/{name}/invocations``)."""

    daemon_threads = True

    def __init__(self, functions: dict[str, LocalFunction], port: int = 0):
        self.functions = functions
        super().__init__(("127.0.0.1", port), _InvokeHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def start(self) -> "LambdaServer":
        threading.Thread(target=self.serve_forever, name="local-lambda", daemon=True).start()
        return self


class _InvokeHandler(BaseHTTPRequestHandler):
    server: LambdaServer

    def do_POST(self):
        name = unquote(self.path.split("/functions/", 1)[-1].rsplit("/invocations", 1)[0]).rsplit(":", 1)[-1]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        function = self.server.functions.get(name)
        if function is None:
            return self._reply(404, {"Type": "User", "message": f"Function not found: {name}"},
                               {"x-amzn-ErrorType": "ResourceNotFoundException"})
        try:
            result = function.invoke(json.loads(body or b"{}"))
        except Exception as error:  # noqa: BLE001 - every handler error is reported the way Lambda reports it
            payload = {"errorType": type(error).__name__, "errorMessage": str(error),
                       "stackTrace": traceback.format_tb(error.__traceback__)}
            return self._reply(200, payload, {"X-Amz-Function-Error": "Unhandled"})
        self._reply(200, result, {})

    def _reply(self, status: int, payload, headers: dict[str, str]):
        data = json.dumps(payload).encode()
        self.send_response(status)
        for header, value in (headers | {"Content-Type": "application/json", "Content-Length": str(len(data))}).items():
            self.send_header(header, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # the handlers log for themselves
        pass

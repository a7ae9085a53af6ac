"""Run the real Lambda handlers locally, as the template declares them, without Docker.

``LocalFunction`` imports a function's handler from its ``CodeUri`` and ``Handler``, gives it the template's
environment and a context whose remaining time honours the template's ``Timeout``. ``LambdaApi`` speaks the
Lambda Invoke API, so boto3 (and moto's Step Functions interpreter) can call the handlers over HTTP.
"""

import importlib.util
import json
import os
import sys
import threading
import time
import re
import traceback
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote
from uuid import uuid4

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

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
    on_invoke: Callable[[str, float], None] | None = None  # hears (logical id, seconds) of every invocation

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
        """Call the handler with this function's environment and a fresh context; exceptions propagate.

        The context reports the time left of the template's Timeout; nothing stops a handler that runs past it."""
        with _ENVIRONMENT_LOCK, _environment(self.environment | {"AWS_LAMBDA_FUNCTION_NAME": self.logical_id}):
            context = LambdaContext(self.logical_id, self.memory_mb, self.timeout_seconds, self.region, self.account)
            handler = self.load()
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                if self.on_invoke:
                    self.on_invoke(self.logical_id, time.perf_counter() - started)


@contextmanager
def _environment(variables: dict[str, str]):
    """Set ``variables`` for the duration; restore only those (other threads never see an emptied environment)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update({name: str(value) for name, value in variables.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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


class LambdaApi:
    """The Lambda ``Invoke`` API as a WSGI app (``POST /2015-03-31/functions/{name}/invocations``).

    Errors are reported the way Lambda reports them: status 200, ``X-Amz-Function-Error: Unhandled`` and a payload
    with ``errorType`` (the exception's class name, which Step Functions matches in Retry and Catch).
    """

    PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")

    def __init__(self, functions: dict[str, LocalFunction]):
        self.functions = functions

    def handles(self, path: str) -> bool:
        return bool(self.PATH.match(path))

    def __call__(self, environ, start_response):
        request = Request(environ)
        name = unquote(self.PATH.match(request.path)["name"]).rsplit(":", 1)[-1]
        function = self.functions.get(name)
        if function is None:
            response = _json(404, {"Type": "User", "message": f"Function not found: {name}"})
            response.headers["x-amzn-ErrorType"] = "ResourceNotFoundException"
            return response(environ, start_response)
        try:
            response = _json(200, function.invoke(json.loads(request.get_data() or b"{}")))
        except Exception as error:  # noqa: BLE001 - every handler error is reported the way Lambda reports it
            response = _json(200, {"errorType": type(error).__name__, "errorMessage": str(error),
                                   "stackTrace": traceback.format_tb(error.__traceback__)})
            response.headers["X-Amz-Function-Error"] = "Unhandled"
        return response(environ, start_response)


def _json(status: int, payload) -> Response:
    """A response as Lambda sends it: every one, errors included, names its request (botocore reads the id)."""
    return Response(json.dumps(payload), status=status, mimetype="application/json",
                    headers={"x-amzn-RequestId": str(uuid4())})


def serve(app, port: int = 0) -> BaseWSGIServer:
    """Serve a WSGI app on loopback from a daemon thread; ``server.shutdown()`` stops it."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="lesionflow-local-http", daemon=True).start()
    return server

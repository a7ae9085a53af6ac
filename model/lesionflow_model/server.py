"""The model server: SageMaker's container contract and its runtime API, from one WSGI application.

- Container contract (what SageMaker calls inside an endpoint): ``GET /ping``, ``POST /invocations``.
- Runtime API (what ``sagemaker-runtime InvokeEndpoint`` calls): ``POST /endpoints/{name}/invocations``, with
  SageMaker's error shapes (a container failure becomes ``ModelError`` with the original status).

A ``FaultInjector`` can make the runtime API answer a share of requests as a troubled endpoint would (throttling,
5xx, model not ready, timeouts, malformed answers), for tests and the fault-injection run.

Every answer carries ``X-Amzn-SageMaker-Custom-Attributes`` naming the model (and its disclaimer, if it has one), so
each prediction record can say which model produced it.
"""

import json
import re
import time

from werkzeug.wrappers import Request, Response

from lesionflow_model.classifier import OnnxImageClassifier, UnreadableImage
from lesionflow_model.faults import FaultInjector

ACCEPTED_TYPES = {"image/jpeg", "image/png", "application/x-image"}
RUNTIME_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")


class ModelServer:
    def __init__(self, classifier: OnnxImageClassifier, variant: str = "AllTraffic",
                 faults: FaultInjector | None = None):
        self.classifier = classifier
        self.variant = variant
        self.faults = faults or FaultInjector()

    @property
    def custom_attributes(self) -> str:
        card = self.classifier.card
        parts = [f"model={card.name}"] + ([f"disclaimer={card.disclaimer}"] if card.disclaimer else [])
        return ";".join(parts)

    def handles(self, path: str) -> bool:
        return path in ("/ping", "/invocations") or bool(RUNTIME_PATH.match(path))

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == "/ping" and request.method == "GET":
            response = Response(status=200)
        elif request.path == "/invocations" and request.method == "POST":
            response = self._container(request)
        elif RUNTIME_PATH.match(request.path) and request.method == "POST":
            response = self._runtime(request)
        else:
            response = Response(status=404)
        return response(environ, start_response)

    def _container(self, request: Request) -> Response:
        """The container contract: the answer, or the status a real inference container would give."""
        if request.mimetype not in ACCEPTED_TYPES:
            return _json(415, {"message": f"unsupported content type {request.mimetype!r}"})
        try:
            answer = self.classifier.classify(request.get_data())
        except UnreadableImage as error:
            return _json(400, {"message": str(error)})
        except Exception as error:  # noqa: BLE001 - a model failure is a 500 answer, never a dropped connection
            return _json(500, {"message": f"the model failed ({type(error).__name__})"})
        response = _json(200, answer)
        response.headers["X-Amzn-SageMaker-Custom-Attributes"] = self.custom_attributes
        return response

    def _runtime(self, request: Request) -> Response:
        """The runtime API around the container, as SageMaker wraps it (or an injected fault instead)."""
        fault = self.faults.draw()
        if fault and fault.delay_seconds:
            time.sleep(fault.delay_seconds)  # the client has given up by now; answer as if nothing happened
        elif fault:
            response = Response(fault.body, status=fault.status, mimetype="application/json")
            if fault.error_type:
                response.headers["x-amzn-ErrorType"] = fault.error_type
            return response
        inner = self._container(request)
        if inner.status_code != 200:
            body = json.loads(inner.get_data()) | {"OriginalStatusCode": inner.status_code}
            response = _json(424, body)
            response.headers["x-amzn-ErrorType"] = "ModelError"
            return response
        inner.headers["x-Amzn-Invoked-Production-Variant"] = self.variant
        return inner


def _json(status: int, payload) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")

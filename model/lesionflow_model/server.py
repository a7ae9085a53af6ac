"""The model server: SageMaker's container contract and its runtime API, from one WSGI application.

- Container contract (what SageMaker calls inside an endpoint): ``GET /ping``, ``POST /invocations``.
- Runtime API (what ``sagemaker-runtime InvokeEndpoint`` calls): ``POST /endpoints/{name}/invocations``, with
  SageMaker's error shapes (a container failure becomes ``ModelError`` with the original status). Given the
  ``endpoint_name`` it serves, it answers any other name as SageMaker answers an endpoint that does not exist:
  400 ``ValidationError``, "Endpoint <name> of account <account> not found.".

A ``FaultInjector`` can make the runtime API answer a share of requests as a troubled endpoint would (throttling,
5xx, model not ready, timeouts, malformed answers), for tests and the fault-injection run.

The server speaks one model contract (``lesionflow.contracts``), as a real container would: it decodes the request
as the contract encodes it (an image, or a JSON, npy or CSV array) and answers in the contract's response format
(Hugging Face's label/score list, logits, probabilities or a class index, in the model's own class order).

Every answer carries ``X-Amzn-SageMaker-Custom-Attributes`` naming the model, its version (and its disclaimer, if it
has one), so each prediction record can say which model produced it.
"""

import json
import re
import time

import numpy as np
from PIL import Image
from werkzeug.wrappers import Request, Response

from lesionflow.arrays import decode_array
from lesionflow.contracts import IMAGE_ENCODINGS, ModelContract, load_contract
from lesionflow_model.classifier import OnnxImageClassifier, UnreadableImage, softmax
from lesionflow_model.faults import FaultInjector

IMAGE_TYPES = {"image/jpeg", "image/png", "application/x-image"}
DEFAULT_CONTRACT = "hf-image-classification"
RUNTIME_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
DEFAULT_ACCOUNT = "123456789012"


class ModelServer:
    def __init__(self, classifier: OnnxImageClassifier, variant: str = "AllTraffic",
                 faults: FaultInjector | None = None, contract: ModelContract | None = None,
                 endpoint_name: str | None = None, account: str = DEFAULT_ACCOUNT):
        """``endpoint_name``: the one name the runtime API serves, as a SageMaker endpoint has one (None: any name,
        for the container, where SageMaker itself has already routed the request)."""
        self.classifier = classifier
        self.endpoint_name = endpoint_name
        self.account = account
        self.variant = variant
        self.faults = faults or FaultInjector()
        self.contract = contract or load_contract(DEFAULT_CONTRACT)

    @property
    def custom_attributes(self) -> str:
        card = self.classifier.card
        parts = [f"model={card.name}", f"version={card.version}"]
        return ";".join(parts + ([f"disclaimer={card.disclaimer}"] if card.disclaimer else []))

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
        spec = self.contract.input
        accepted = IMAGE_TYPES if spec.encoding in IMAGE_ENCODINGS else {self.contract.content_type}
        if request.mimetype not in accepted:
            return _json(415, {"message": f"unsupported content type {request.mimetype!r}"})
        try:
            image = (self.classifier.read_image(request.get_data()) if spec.encoding in IMAGE_ENCODINGS
                     else Image.fromarray(_as_rgb(decode_array(request.get_data(), spec))))
        except UnreadableImage as error:
            return _json(400, {"message": str(error)})
        except (ValueError, TypeError) as error:
            return _json(400, {"message": f"the body is not the {spec.encoding} array expected ({type(error).__name__})"})
        try:
            response = self._answer(self.classifier.logits(image))
        except Exception as error:  # noqa: BLE001 - a model failure is a 500 answer, never a dropped connection
            return _json(500, {"message": f"the model failed ({type(error).__name__})"})
        response.headers["X-Amzn-SageMaker-Custom-Attributes"] = self.custom_attributes
        return response

    def _answer(self, logits: np.ndarray) -> Response:
        """The answer in the contract's response format, classes in the model's own order."""
        kind = self.contract.response.format
        if kind == "label_scores":
            return _json(200, self.classifier.label_scores(logits))
        values = {"logits": logits, "probabilities": softmax(logits)}.get(kind)
        if values is None:  # class_index
            return Response(str(int(np.argmax(logits))), status=200, mimetype=self.contract.accept)
        if self.contract.accept == "text/csv":
            return Response(",".join(f"{value:.6g}" for value in values.tolist()), status=200, mimetype="text/csv")
        return _json(200, [values.tolist()])

    def _runtime(self, request: Request) -> Response:
        """The runtime API around the container, as SageMaker wraps it (or an injected fault instead)."""
        name = RUNTIME_PATH.match(request.path)["name"]  # werkzeug has decoded the path
        if self.endpoint_name is not None and name != self.endpoint_name:  # refused before it reaches any endpoint
            response = _json(400, {"message": f"Endpoint {name} of account {self.account} not found."})
            response.headers["x-amzn-ErrorType"] = "ValidationError"
            return response
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


def _as_rgb(pixels: np.ndarray) -> np.ndarray:
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels

"""The inference container's entry point: SageMaker runs the image with the argument ``serve`` and sends requests to
port 8080 (``GET /ping``, ``POST /invocations``).

The model is ``model.onnx`` in ``SM_MODEL_DIR`` (``/opt/ml/model``, where SageMaker unpacks ``model.tar.gz``); the
contract it speaks is ``LESIONFLOW_CONTRACT`` (default ``hf-image-classification``). The same ``ModelServer`` serves
the local stack's endpoint, so what runs here is what the tests run.
"""

import os
import sys
from pathlib import Path

from werkzeug.serving import run_simple

from lesionflow.contracts import load_contract
from lesionflow_model.classifier import OnnxImageClassifier
from lesionflow_model.server import DEFAULT_CONTRACT, ModelServer


def application(environ: dict[str, str] = os.environ) -> ModelServer:
    model_dir = Path(environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    contract = load_contract(environ.get("LESIONFLOW_CONTRACT", DEFAULT_CONTRACT))
    return ModelServer(OnnxImageClassifier(model_dir / "model.onnx"), contract=contract)


def main(argv: list[str]) -> int:
    if argv[1:] != ["serve"]:
        print("usage: serve   (as SageMaker starts an inference container)", file=sys.stderr)
        return 2
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", 8080))
    run_simple("0.0.0.0", port, application(), threaded=True)  # noqa: S104 - inside the container, for SageMaker
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Shared fixtures: moto's AWS (with Step Functions really executing), the stack built from template.yaml, and the
real handlers served on loopback as the Lambda API."""

import os
import sys

# Before any handler module is imported: Powertools reads these when the logger and metrics are created.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1", POWERTOOLS_METRICS_NAMESPACE="LesionFlow",
    POWERTOOLS_SERVICE_NAME="lesionflow",
)

import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from lesionflow import clients  # noqa: E402
from lesionflow.observability import logger, metrics  # noqa: E402
from lesionflow_local.lambdas import LambdaApi, serve  # noqa: E402
from lesionflow_local.stack import provision  # noqa: E402
from tests.support import ScriptedEndpoint  # noqa: E402


class _CurrentStdout:
    """Powertools binds its log handler to the stdout of import time; write to whatever stdout is now, as on Lambda,
    so that capsys sees the handlers' logs."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


logger.registered_handler.stream = _CurrentStdout()


def _clear_clients():
    for factory in (clients.s3, clients.stepfunctions, clients.sagemaker_runtime):
        factory.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_metrics():
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def moto_config() -> dict:
    """moto's settings; integration tests turn on real execution of the state machine."""
    return {}


@pytest.fixture
def aws(moto_config):
    _clear_clients()
    with mock_aws(config=moto_config):
        yield
    _clear_clients()


@pytest.fixture
def stack_parameters() -> dict:
    """Template parameter overrides for the stack (tests parametrize this to try other settings)."""
    return {}


@pytest.fixture
def stack(aws, stack_parameters):
    return provision(parameters=stack_parameters)


@pytest.fixture
def lambda_api(stack, monkeypatch):
    """The real handlers behind the Lambda Invoke API, where moto's Step Functions calls them."""
    server = serve(LambdaApi(stack.functions))
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", f"http://127.0.0.1:{server.server_port}")
    yield server
    server.shutdown()


@pytest.fixture
def endpoint(monkeypatch):
    server = ScriptedEndpoint().start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", server.url)
    _clear_clients()
    yield server
    server.shutdown()

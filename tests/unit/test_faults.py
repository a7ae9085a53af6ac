"""The local endpoint's injected faults look like a troubled SageMaker endpoint to the real InvokeModel handler, which turns
each into the error the state machine retries (transient) or records as FAILED (permanent)."""

import pytest

from lesionflow import clients, errors
from lesionflow_local.lambdas import serve
from lesionflow_model.classifier import OnnxImageClassifier
from lesionflow_model.demo_model import write
from lesionflow_model.faults import PERMANENT, FaultInjector, FaultKind
from lesionflow_model.server import ModelServer
from tests.support import jpeg, preprocessed, state_for

RAISED = {
    FaultKind.THROTTLE: errors.EndpointThrottled,
    FaultKind.NOT_READY: errors.ModelNotReady,
    FaultKind.UNAVAILABLE: errors.EndpointUnavailable,
    FaultKind.ERROR: errors.EndpointUnavailable,
    FaultKind.TIMEOUT: errors.EndpointUnavailable,
    FaultKind.MALFORMED: errors.ModelResponseInvalid,
    FaultKind.WRONG_SHAPE: errors.ModelResponseInvalid,
}
TRANSIENT = {"EndpointThrottled", "EndpointUnavailable", "ModelNotReady"}  # what the ASL's InvokeModel Retry names


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return OnnxImageClassifier(write(tmp_path_factory.mktemp("model") / "demo.onnx"))


@pytest.fixture
def model_endpoint(classifier, monkeypatch):
    """The real model server on loopback, where the InvokeModel handler's SageMaker runtime calls go."""
    server = ModelServer(classifier)
    http = serve(server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{http.server_port}")
    clients.sagemaker_runtime.cache_clear()
    yield server
    http.shutdown()


@pytest.fixture
def stack_parameters():
    return {"InvokeTimeoutSeconds": "1"}  # so that the timeout fault costs about a second per SDK attempt


def test_every_kind_of_fault_is_covered():
    assert set(RAISED) == set(FaultKind)


@pytest.mark.parametrize("kind", list(FaultKind), ids=str)
def test_each_injected_fault_becomes_the_pipeline_error_for_it(stack, model_endpoint, kind):
    # Given a preprocessed upload and an endpoint that answers every request with this fault
    prepared = preprocessed(stack, state_for(stack, "uploads/f.jpg", jpeg(300, 300)))
    model_endpoint.faults = FaultInjector(rate=1.0, kinds=(kind,), delay_seconds=1.3)

    # When the InvokeModel handler calls it, Then it raises the matching error...
    with pytest.raises(RAISED[kind]) as raised:
        stack.functions["InvokeModelFunction"].invoke(prepared)

    # ...which the state machine retries exactly when the fault is transient
    assert (raised.type.__name__ in TRANSIENT) == (kind not in PERMANENT)
    assert model_endpoint.faults.injected[kind] >= 1


def test_without_faults_the_same_endpoint_answers_with_the_model(stack, model_endpoint):
    result = stack.functions["InvokeModelFunction"].invoke(
        preprocessed(stack, state_for(stack, "uploads/ok.jpg", jpeg(300, 300))))
    assert result["result"]["record"]["status"] == "SUCCEEDED"


def test_faults_are_drawn_at_the_configured_rate_and_counted_by_kind():
    injector = FaultInjector(rate=0.25, kinds=(FaultKind.THROTTLE, FaultKind.MALFORMED), seed=3)
    drawn = [injector.draw() for _ in range(4000)]
    faults = [fault for fault in drawn if fault]
    assert 0.22 < len(faults) / len(drawn) < 0.28
    assert set(injector.injected) == {FaultKind.THROTTLE, FaultKind.MALFORMED}
    assert sum(injector.injected.values()) == len(faults)


def test_a_fault_setting_is_parsed_from_one_line_and_bad_settings_are_refused():
    injector = FaultInjector.parse("rate=0.1,kinds=throttle+timeout,delay=1.5,seed=7")
    assert (injector.rate, injector.kinds, injector.delay_seconds, injector.seed) == (
        0.1, (FaultKind.THROTTLE, FaultKind.TIMEOUT), 1.5, 7)
    assert FaultInjector.parse("rate=0.2").kinds == tuple(FaultKind)
    for bad in ("rate=2", "kinds=meteor", "speed=3"):
        with pytest.raises(ValueError):
            FaultInjector.parse(bad)

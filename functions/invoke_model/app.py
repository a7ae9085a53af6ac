"""InvokeModel: send the preprocessed input to the SageMaker endpoint and turn its answer into a SUCCEEDED record."""

import os

from pydantic import BaseModel, ConfigDict, Field

from lesionflow import clients
from lesionflow.contracts import load_contract
from lesionflow.errors import parse
from lesionflow.inference import invoke_model
from lesionflow.observability import pipeline_step
from lesionflow.state import PipelineState


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    endpoint_name: str = Field(alias="ENDPOINT_NAME", min_length=1)
    model_contract: str = Field(alias="MODEL_CONTRACT")
    invoke_timeout_seconds: int = Field(alias="INVOKE_TIMEOUT_SECONDS", gt=0)
    review_threshold: float = Field(alias="REVIEW_THRESHOLD", ge=0.0, le=1.0)


@pipeline_step("InvokeModel")
def lambda_handler(state: PipelineState, context) -> PipelineState:
    settings = parse(Settings, os.environ, "InvokeModelFunction environment")
    sagemaker = clients.sagemaker_runtime(settings.invoke_timeout_seconds)
    contract = load_contract(settings.model_contract)
    return invoke_model(state, clients.s3(), sagemaker, settings.endpoint_name, contract, settings.review_threshold)

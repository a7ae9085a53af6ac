"""Preprocess: decode, orient, convert and resize the image as the model contract says; store it as an artifact."""

import os

from pydantic import BaseModel, ConfigDict, Field

from lesionflow import clients
from lesionflow.contracts import load_contract
from lesionflow.errors import parse
from lesionflow.observability import pipeline_step
from lesionflow.preprocessing import preprocess
from lesionflow.state import PipelineState


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    artifact_prefix: str = Field(alias="ARTIFACT_PREFIX", min_length=1)
    model_contract: str = Field(alias="MODEL_CONTRACT")


@pipeline_step("Preprocess")
def lambda_handler(state: PipelineState, context) -> PipelineState:
    settings = parse(Settings, os.environ, "PreprocessFunction environment")
    return preprocess(state, clients.s3(), settings.artifact_prefix, load_contract(settings.model_contract))

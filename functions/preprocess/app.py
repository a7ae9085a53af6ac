"""Preprocess: decode the validated upload once, as the model contract says, and hand the model input to InvokeModel
(REJECTED with a reason if the image cannot be decoded after all)."""

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

    model_contract: str = Field(alias="MODEL_CONTRACT")
    handover_prefix: str = Field(alias="HANDOVER_PREFIX", min_length=1)


@pipeline_step("Preprocess")
def lambda_handler(state: PipelineState, context) -> PipelineState:
    settings = parse(Settings, os.environ, "PreprocessFunction environment")
    return preprocess(state, clients.s3(), load_contract(settings.model_contract), settings.handover_prefix)

"""Validate: is the uploaded object a usable image within the configured limits? (REJECTED with a reason if not.)"""

import os

from pydantic import BaseModel, ConfigDict, Field

from lesionflow import clients
from lesionflow.images import ImageLimits
from lesionflow.errors import parse
from lesionflow.observability import pipeline_step
from lesionflow.state import PipelineState
from lesionflow.validation import validate


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    max_image_bytes: int = Field(alias="MAX_IMAGE_BYTES", gt=0)
    max_image_pixels: int = Field(alias="MAX_IMAGE_PIXELS", gt=0)
    min_image_side: int = Field(alias="MIN_IMAGE_SIDE", gt=0)


@pipeline_step("Validate")
def lambda_handler(state: PipelineState, context) -> PipelineState:
    settings = parse(Settings, os.environ, "ValidateFunction environment")
    limits = ImageLimits(
        max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels, min_side=settings.min_image_side
    )
    return validate(state, clients.s3(), limits)

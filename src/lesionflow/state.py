"""The document the state machine passes between its states: references and small facts, never image bytes.

Each Lambda task receives the whole document and returns it with its own part filled in; a task that reaches a final
verdict (a rejection, a prediction) sets ``result``, which the Persist states write as they are.
"""

from pydantic import BaseModel, Field

from lesionflow.errors import ImageRejected
from lesionflow.records import PredictionRecord
from lesionflow.uploads import Upload


class ImageFacts(BaseModel):
    """What validation learned about an image; travels through the state machine instead of the image."""

    format: str
    width: int
    height: int
    mode: str
    frames: int = Field(description="frames in the file; only the first is classified")
    size: int
    sha256: str


class Result(BaseModel):
    """A terminal record in both forms the Persist states need."""

    record: dict
    item: dict

    @classmethod
    def of(cls, record: PredictionRecord) -> "Result":
        return cls(record=record.model_dump(mode="json", exclude_none=True), item=record.to_item())


class PipelineState(BaseModel):
    upload: Upload
    execution_arn: str
    prediction_key: str
    image: ImageFacts | None = None
    result: Result | None = None

    @property
    def prediction_uri(self) -> str:
        return f"s3://{self.upload.bucket}/{self.prediction_key}"

    def record(self, **fields) -> PredictionRecord:
        """A record for this run with provenance from everything learned so far."""
        known = {"input_sha256": self.image.sha256, "input_format": self.image.format} if self.image else {}
        return PredictionRecord.for_upload(self.upload, self.execution_arn, **(known | fields))

    def concluded(self, record: PredictionRecord) -> "PipelineState":
        return self.model_copy(update={"result": Result.of(record)})

    def rejected(self, rejection: ImageRejected) -> "PipelineState":
        return self.concluded(
            self.record(status="REJECTED", reason=str(rejection), rejection_class=rejection.rejection_class)
        )

    def to_output(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)

"""The document the state machine passes between its states: references and small facts, never the upload's bytes.

Each Lambda task receives the whole document and returns it with its own part filled in; a task that reaches a final
verdict (a rejection, a prediction, a failure) sets ``result``, which the Persist states write as they are. The one
exception to "no pixels": Preprocess hands the model input to InvokeModel inline when it is small
(``lesionflow.handover``); the verdict drops it again.
"""

from pydantic import BaseModel, Field, model_validator

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


class ModelInput(BaseModel):
    """The preprocessed model input, exactly as the endpoint will receive it: inline or an S3 object, never both."""

    size: int = Field(ge=0)
    sha256: str = Field(pattern="^[0-9a-f]{64}$")
    preprocessing_version: str = Field(description="how it was made from the upload (provenance of the record)")
    inline: str | None = Field(default=None, description="the bytes, base64")
    key: str | None = Field(default=None, description="else where they are stored, in the upload's bucket")
    version_id: str | None = None

    @model_validator(mode="after")
    def _one_place(self) -> "ModelInput":
        if (self.inline is None) == (self.key is None):
            raise ValueError("a model input is either inline or stored")
        return self


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
    execution_started_at: str | None = Field(default=None, description=(
        "with the ARN, names this run: executions started before it was passed have none"))
    prediction_key: str
    image: ImageFacts | None = None
    model_input: ModelInput | None = None
    result: Result | None = None

    @property
    def prediction_uri(self) -> str:
        return f"s3://{self.upload.bucket}/{self.prediction_key}"

    def record(self, **fields) -> PredictionRecord:
        """A record for this run with provenance from everything learned so far."""
        known = {"input_sha256": self.image.sha256, "input_format": self.image.format} if self.image else {}
        return PredictionRecord.for_upload(self.upload, self.execution_arn, self.execution_started_at,
                                           **(known | fields))

    def concluded(self, record: PredictionRecord) -> "PipelineState":
        """The state with its verdict; the model input, if any, is not carried further."""
        return self.model_copy(update={"result": Result.of(record), "model_input": None})

    def rejected(self, rejection: ImageRejected) -> "PipelineState":
        return self.concluded(
            self.record(status="REJECTED", reason=str(rejection), rejection_class=rejection.rejection_class)
        )

    def to_output(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)


class FailureNotice(BaseModel):
    """What RecordFailure is given when any state failed: the upload (in the document from the execution input on),
    this run's names, and why. Nothing else is certain to exist at that point: the failed state may be the first."""

    upload: Upload
    execution_arn: str
    execution_started_at: str | None = None
    prediction_key: str
    reason: str = Field(min_length=1)

    def state(self) -> PipelineState:
        return PipelineState(upload=self.upload, execution_arn=self.execution_arn,
                             execution_started_at=self.execution_started_at, prediction_key=self.prediction_key)

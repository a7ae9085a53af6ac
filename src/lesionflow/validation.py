"""The Validate step: is the uploaded object a usable image within the configured limits?"""

from hashlib import sha256

from lesionflow.errors import ImageRejected
from lesionflow.images import ImageLimits, check_size, inspect
from lesionflow.state import PipelineState
from lesionflow.storage import read_upload


def validate(state: PipelineState, s3, limits: ImageLimits) -> PipelineState:
    """Return the state with the image's facts, or concluded with a REJECTED record and its reason."""
    try:
        check_size(state.upload.size, limits)
        data = read_upload(s3, state.upload, limits.max_bytes)
        facts = inspect(data, limits, sha256(data).hexdigest())
    except ImageRejected as rejection:
        return state.rejected(rejection)
    return state.model_copy(update={"image": facts})

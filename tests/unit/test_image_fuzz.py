"""Structure-aware fuzzing of Validate and Preprocess: mutants of valid PNG and JPEG files (tests/image_mutants.py)
must each end classified or REJECTED, never with another exception, and never with metadata in a model input.

A fixed seed and count (about 50 s on a 2-core machine), so a failure here is a failure everywhere; ``make fuzz`` runs
the same mutator far longer with a fresh seed. A sample also goes through the real Validate and Preprocess handlers.
"""

import boto3
import pytest
from PIL import Image

from lesionflow.contracts import contract_names
from tests.image_mutants import campaign, mutant, run_steps
from tests.support import state_for

SEED = 20261202
COUNT = 1700  # about 50 s here (2 cores): measured with `scripts/fuzz_images.py --seed 20261202 --count 1700`
QUIET = [pytest.mark.filterwarnings("ignore::UserWarning"),  # Pillow warns of the corrupt EXIF it skips
         pytest.mark.filterwarnings(f"ignore::{Image.DecompressionBombWarning.__module__}.DecompressionBombWarning")]


@QUIET[0]
@QUIET[1]
def test_no_mutant_crashes_validate_or_preprocess_or_leaks_metadata():
    # Given mutants of every base image: chunks inserted and rewritten with their CRC, IHDR fields, APPn and COM
    # segments with consistent or broken lengths, SOF dimensions, DQT and DHT tables, entropy-coded data
    # When each goes through Validate (inspect) and Preprocess (model_input, for every contract)
    result = campaign(SEED, count=COUNT)
    print(result.summary())

    # Then none crashed (each crash's line is its reproducer: scripts/fuzz_images.py --seed S --case I)
    assert result.crashes == [], result.summary()
    # and the run was no formality: mutants reached every verdict, Preprocess's included
    labels = set(result.outcomes)
    assert result.outcomes["classified"] > COUNT // 10
    assert {"rejected: Validate damaged", "rejected: Preprocess damaged", "rejected: Validate too-small"} <= labels
    assert any("decompression-bomb" in label or "too-large" in label for label in labels)


def sample(verdict: str, size: int) -> list:
    """The first ``size`` mutants of the run whose direct verdict starts with ``verdict``."""
    found, index = [], 0
    while len(found) < size:
        case = mutant(SEED, index)
        outcome = run_steps(case.data)
        if outcome.label.startswith(verdict):
            found.append((case, outcome))
        index += 1
    return found


@QUIET[0]
@QUIET[1]
def test_a_sample_of_mutants_through_the_real_handlers_ends_as_the_steps_said(stack, monkeypatch):
    # Given mutants the steps classified, and mutants they rejected at each step
    cases = sample("classified", 6) + sample("rejected: Validate", 6) + sample("rejected: Preprocess", 6)
    s3 = boto3.client("s3")

    for case, outcome in cases:
        # When each is uploaded and the Validate handler, then the Preprocess handler for every contract, run
        state = state_for(stack, f"uploads/fuzz/{case.index}", case.data)
        validated = stack.functions["ValidateFunction"].invoke(state)
        verdicts = set()
        if "result" in validated:
            verdicts.add(f"rejected: Validate {validated['result']['record']['rejection_class']}")
        else:
            for name in contract_names():
                monkeypatch.setitem(stack.functions["PreprocessFunction"].environment, "MODEL_CONTRACT", name)
                handed = stack.functions["PreprocessFunction"].invoke(validated)
                verdicts.add(f"rejected: Preprocess {handed['result']['record']['rejection_class']}"
                             if "result" in handed else "classified")

        # Then the handlers reached the verdict the steps reached (a crash would have raised out of invoke)
        assert verdicts == {outcome.label}, case.reproducer
        s3.delete_object(Bucket=stack.bucket, Key=f"uploads/fuzz/{case.index}")

"""Structure-aware fuzzing of Validate and Preprocess: mutants of valid PNG and JPEG files (tests/image_mutants.py)
must each end classified or REJECTED, never with another exception, and never with metadata in a model input.

A fixed seed and count (about a minute on a 2-core machine), so a failure here is a failure everywhere; ``make fuzz``
runs the same mutator far longer with a fresh seed. A sample also goes through the real Validate and Preprocess
handlers.
"""

from base64 import b64decode
from functools import partial
from itertools import count, islice

import boto3
import pytest

from lesionflow.contracts import contract_names
from lesionflow.errors import ImageRejected
from lesionflow.images import inspect
from tests.image_mutants import LIMITS, campaign, metadata_left_in, mutant, run_steps
from tests.support import state_for

SEED = 20261202
# 45 s on this 2-core machine when idle, 70 s when busy (scripts/fuzz_images.py --seed 20261202 --count 2400)
COUNT = 2400
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),  # Pillow's notes on the corrupt EXIF it skips
              pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")]


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


def samples(wanted: dict[str, int]) -> list:
    """The run's first mutants with each direct verdict, as many as ``wanted`` says (Preprocess skipped once only
    Validate's verdicts are still wanted: rare ones take a few hundred mutants to find)."""
    found, index = [], 0
    while any(wanted.values()):
        case = mutant(SEED, index)
        index += 1
        try:
            inspect(case.data, LIMITS, "0" * 64)
            if not (wanted["classified"] or wanted["rejected: Preprocess damaged"]):
                continue
        except ImageRejected:
            pass
        outcome = run_steps(case.data)
        if wanted.get(outcome.label):
            wanted[outcome.label] -= 1
            found.append((case, outcome))
    return found


def carrying_metadata(size: int) -> list:
    """The run's first mutants that carry metadata (mutants of the base images holding every kind, or inserting EXIF
    or text), whatever their verdict."""
    def carries(case) -> bool:
        return case.base.endswith("-metadata") or any(kind in case.mutations[0] for kind in ("eXIf", "Exif", "tEXt"))

    chosen = islice((case for case in map(partial(mutant, SEED), count()) if carries(case)), size)
    return [(case, run_steps(case.data)) for case in chosen]


def test_a_sample_of_mutants_through_the_real_handlers_ends_as_the_steps_said(stack, monkeypatch):
    # Given mutants the steps classified, mutants they rejected at each step, and mutants inserting metadata
    cases = samples({"classified": 4, "rejected: Preprocess damaged": 4, "rejected: Validate damaged": 3,
                     "rejected: Validate too-small": 2, "rejected: Validate decompression-bomb": 2})
    cases += carrying_metadata(8)
    s3 = boto3.client("s3")

    for case, outcome in cases:
        # When each is uploaded and the Validate handler, then the Preprocess handler for every contract, run
        state = state_for(stack, f"uploads/fuzz/{case.index}", case.data)
        validated = stack.functions["ValidateFunction"].invoke(state)
        verdicts, leaks = set(), set()
        if "result" in validated:
            verdicts.add(f"rejected: Validate {validated['result']['record']['rejection_class']}")
        else:
            for name in contract_names():
                monkeypatch.setitem(stack.functions["PreprocessFunction"].environment, "MODEL_CONTRACT", name)
                handed = stack.functions["PreprocessFunction"].invoke(validated)
                verdicts.add(f"rejected: Preprocess {handed['result']['record']['rejection_class']}"
                             if "result" in handed else "classified")
                if name == "hf-image-classification" and "model_input" in handed:  # its JPEG travels inline
                    leaks |= set(metadata_left_in(b64decode(handed["model_input"]["inline"]), "jpeg"))

        # Then the handlers reached the verdict the steps reached (a crash would have raised out of invoke)
        assert outcome.kind != "crash" and verdicts == {outcome.label}, case.reproducer
        assert leaks == set(), case.reproducer
        s3.delete_object(Bucket=stack.bucket, Key=f"uploads/fuzz/{case.index}")

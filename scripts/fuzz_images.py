"""Fuzz Validate and Preprocess with structure-aware mutants of PNG and JPEG files (the mutator is
tests/image_mutants.py, the one the unit test runs for a minute), and print what became of them.

    scripts/fuzz_images.py --seconds 600            # a fresh seed, ten minutes (make fuzz)
    scripts/fuzz_images.py --seed 7 --count 5000    # a given run
    scripts/fuzz_images.py --seed 7 --case 1234     # one mutant again: its mutations, verdict and traceback
    scripts/fuzz_images.py --seed 7 --case 1234 --write mutant.png

Exits 1 if any mutant crashed a step (an exception other than a rejection, or metadata left in a model input).
"""

import argparse
import random
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.image_mutants

from PIL import Image  # noqa: E402

from tests.image_mutants import campaign, mutant, run_steps  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: a fresh one, printed)")
    parser.add_argument("--seconds", type=float, default=None, help="run for this long")
    parser.add_argument("--count", type=int, default=None, help="run this many mutants")
    parser.add_argument("--start", type=int, default=0, help="the first mutant's index")
    parser.add_argument("--case", type=int, default=None, help="run only this mutant, and show it")
    parser.add_argument("--write", type=Path, default=None, help="with --case: write the mutant's bytes here")
    args = parser.parse_args(argv)
    seed = random.SystemRandom().randrange(2 ** 32) if args.seed is None else args.seed
    warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on the corrupt EXIF it skips
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)

    if args.case is not None:
        case = mutant(seed, args.case)
        print(f"{case.base} ({case.image_format}, {len(case.data)} bytes): {'; '.join(case.mutations)}")
        if args.write:
            args.write.write_bytes(case.data)
        outcome = run_steps(case.data)
        print(outcome.label)
        print(outcome.error)
        return 1 if outcome.kind == "crash" else 0

    seconds = args.seconds if args.seconds is not None or args.count is not None else 60.0
    print(f"fuzzing with --seed {seed}", flush=True)  # first, so that a run killed or hung can still be replayed
    result = campaign(seed, seconds=seconds, count=args.count, start=args.start)
    print(result.summary())
    return 1 if result.crashes else 0


if __name__ == "__main__":
    sys.exit(main())

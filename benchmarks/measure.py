"""How everything here is measured: side-by-side rounds, min and median, fresh processes, and the machine.

The machine is small and noisy (2 cores shared with other work). So cases being compared run interleaved in the same
rounds, in a rotating order, and every figure is given as the minimum (what the code can do) and the median (what it
usually does) of those rounds; ratios come from the same run, never from figures taken at different times.
"""

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Stats:
    """Seconds over repeated rounds."""

    min: float
    median: float
    rounds: int

    @classmethod
    def of(cls, samples: list[float]) -> "Stats":
        return cls(min=min(samples), median=statistics.median(samples), rounds=len(samples))

    def ms(self) -> str:
        return f"{self.median * 1000:.1f} ({self.min * 1000:.1f})"


def side_by_side(cases: dict[str, Callable[[], object]], rounds: int, warmup: int = 1) -> dict[str, Stats]:
    """Time each case once per round, all cases in every round, the order rotated from round to round so that no
    case always runs first (cold caches) or right after the heaviest one."""
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            cases[name]()
            samples[name].append(time.perf_counter() - started)
    return {name: Stats.of(values) for name, values in samples.items()}


def run_fresh(code: str, args: list[str] | None = None, env: dict[str, str] | None = None) -> tuple[dict, float]:
    """Run ``code`` in a new interpreter that prints one JSON line; return it and the process's wall time."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *(args or [])], check=True, capture_output=True, text=True,
                          env=env if env is not None else os.environ.copy(), cwd=ROOT)
    wall = time.perf_counter() - started
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (p50, p95) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True)
class Machine:
    date: str
    python: str
    machine: str
    system: str
    cpus: int
    packages: dict[str, str]

    def line(self) -> str:
        versions = ", ".join(f"{name} {version}" for name, version in self.packages.items())
        return (f"{self.date}; Python {self.python} on {self.machine} ({self.system}), {self.cpus} CPUs; {versions}")


def machine() -> Machine:
    names = ("Pillow", "numpy", "onnxruntime", "boto3", "moto", "aws-lambda-powertools", "pydantic")
    return Machine(
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        python=platform.python_version(),
        machine=platform.machine(),
        system=f"{platform.system()} {platform.release()}",
        cpus=os.cpu_count() or 1,
        packages={name: metadata.version(name) for name in names},
    )


def as_data(value):
    """Dataclasses (and dicts and lists of them) as plain JSON-able data."""
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, dict):
        return {key: as_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_data(item) for item in value]
    return value

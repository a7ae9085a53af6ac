"""Fault injection for the local endpoint: answer a share of requests the way a troubled SageMaker endpoint does.

Tests and the fault-injection run use it to prove that transient faults are retried and permanent ones end as FAILED
records. Each fault is drawn per request from a seeded generator and counted, so a run can compare what it injected
with what the prediction log recorded.
"""

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    THROTTLE = "throttle"  # 429 ThrottlingException: transient
    NOT_READY = "not-ready"  # 429 ModelNotReadyException (model loading, serverless scaling from zero): transient
    UNAVAILABLE = "unavailable"  # 503 ServiceUnavailable: transient
    ERROR = "error"  # the container answers 500, wrapped by the runtime as ModelError: transient
    TIMEOUT = "timeout"  # the answer comes only after ``delay_seconds``: transient once the client gives up
    MALFORMED = "malformed"  # 200 with a body that is not JSON: permanent
    WRONG_SHAPE = "wrong-shape"  # 200 with JSON that is not a label/score list: permanent


PERMANENT = frozenset({FaultKind.MALFORMED, FaultKind.WRONG_SHAPE})


@dataclass(frozen=True)
class Fault:
    """What the runtime API answers instead of the model: status, SageMaker error type, body, and a delay."""

    kind: FaultKind
    status: int
    body: bytes
    error_type: str | None = None
    delay_seconds: float = 0.0


@dataclass
class FaultInjector:
    rate: float = 0.0
    kinds: tuple[FaultKind, ...] = tuple(FaultKind)
    delay_seconds: float = 2.0
    seed: int = 0
    injected: Counter = field(default_factory=Counter)

    def __post_init__(self):
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"the fault rate must be between 0 and 1, not {self.rate}")
        if self.rate and not self.kinds:
            raise ValueError("a fault rate needs at least one fault kind")
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def draw(self) -> Fault | None:
        """The fault for this request, or None to let the model answer."""
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            self.injected[kind] += 1
        return self._fault(kind)

    def _fault(self, kind: FaultKind) -> Fault:
        message = lambda text: json.dumps({"message": text}).encode()  # noqa: E731
        if kind is FaultKind.THROTTLE:
            return Fault(kind, 429, message("Rate exceeded (injected)"), "ThrottlingException")
        if kind is FaultKind.NOT_READY:
            return Fault(kind, 429, message("Model is not ready (injected)"), "ModelNotReadyException")
        if kind is FaultKind.UNAVAILABLE:
            return Fault(kind, 503, message("Service unavailable (injected)"), "ServiceUnavailable")
        if kind is FaultKind.ERROR:
            body = json.dumps({"message": "the model failed (injected)", "OriginalStatusCode": 500}).encode()
            return Fault(kind, 424, body, "ModelError")
        if kind is FaultKind.TIMEOUT:
            return Fault(kind, 0, b"", delay_seconds=self.delay_seconds)
        if kind is FaultKind.MALFORMED:
            return Fault(kind, 200, b'[{"label": "mel", "sco')
        return Fault(kind, 200, json.dumps({"predictions": [[0.1, 0.2, 0.7]]}).encode())

    @classmethod
    def parse(cls, spec: str) -> "FaultInjector":
        """From ``rate=0.2,kinds=throttle+timeout,delay=1.5,seed=7`` (every part optional; kinds default to all)."""
        settings = dict(part.split("=", 1) for part in spec.split(",") if part)
        unknown = set(settings) - {"rate", "kinds", "delay", "seed"}
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        kinds = tuple(FaultKind(kind) for kind in settings["kinds"].split("+")) if "kinds" in settings else tuple(FaultKind)
        return cls(rate=float(settings.get("rate", 0.0)), kinds=kinds,
                   delay_seconds=float(settings.get("delay", 2.0)), seed=int(settings.get("seed", 0)))

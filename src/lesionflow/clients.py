"""AWS clients, built once per execution environment and reused across invocations (warm starts skip this)."""

from functools import cache

import boto3
from botocore.config import Config

_STANDARD = {"mode": "standard", "max_attempts": 3}


@cache
def s3():
    return boto3.client("s3", config=Config(retries=_STANDARD, connect_timeout=5, read_timeout=30))


@cache
def stepfunctions():
    return boto3.client("stepfunctions", config=Config(retries=_STANDARD, connect_timeout=5, read_timeout=10))


@cache
def sagemaker_runtime(read_timeout: int):
    """One SDK attempt: the state machine retries endpoint errors with backoff and jitter, visibly in its history, and
    within a schedule that fits an Express workflow (an SDK retry inside the function would double its worst case)."""
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2,
                    read_timeout=read_timeout)
    return boto3.client("sagemaker-runtime", config=config)

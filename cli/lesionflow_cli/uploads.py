"""Uploading files and folders to the upload prefix, in parallel, and waiting for each one's terminal record."""

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lesionflow.uploads import iso_utc
from lesionflow_cli.predictions import latest
from lesionflow_cli.stack import CommandError, Stack

CLOCK_SKEW = timedelta(seconds=5)  # between this machine and S3's event time


@dataclass(frozen=True)
class Uploaded:
    key: str
    etag: str
    version_id: str | None
    not_before: str  # a record of this upload has uploaded_at at or after this


def files_in(paths: list[Path]) -> list[tuple[Path, str]]:
    """Each file, with the name it gets under the prefix: a folder's files keep their path inside it."""
    found = []
    for path in paths:
        if path.is_file():
            found.append((path, path.name))
        elif path.is_dir():
            found += [(file, file.relative_to(path.parent).as_posix()) for file in sorted(path.rglob("*"))
                      if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts)]
        else:
            raise CommandError(f"no such file or folder: {path}")
    if not found:
        raise CommandError("nothing to upload: the folders are empty")
    return found


def upload(stack: Stack, files: list[tuple[Path, str]], sub_prefix: str, workers: int) -> list[Uploaded]:
    prefix = stack.upload_prefix + (sub_prefix.strip("/") + "/" if sub_prefix.strip("/") else "")
    s3 = stack.client("s3")
    progress = Progress("uploaded", len(files))

    def put(item: tuple[Path, str]) -> Uploaded:
        path, name = item
        not_before = iso_utc(datetime.now(UTC) - CLOCK_SKEW)
        response = s3.put_object(Bucket=stack.bucket, Key=prefix + name, Body=path.read_bytes())
        progress.advance()
        return Uploaded(prefix + name, response["ETag"].strip('"'), response.get("VersionId"), not_before)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        uploaded = list(pool.map(put, files))
    progress.done()
    return uploaded


def wait_for_records(stack: Stack, uploaded: list[Uploaded], timeout: float, interval: float = 1.0) -> dict:
    """Each upload's terminal record (None where none came within ``timeout``)."""
    records: dict[str, dict | None] = dict.fromkeys((item.key for item in uploaded), None)
    progress = Progress("recorded", len(uploaded))
    deadline = time.monotonic() + timeout
    while True:
        for item in uploaded:
            if records[item.key] is None:
                records[item.key] = next((r for r in latest(stack.table, item.key, all_versions=True)
                                          if _is_record_of(r, item)), None)
                progress.advance(records[item.key] is not None)
        if all(records.values()) or time.monotonic() > deadline:
            progress.done()
            return records
        time.sleep(interval)


def _is_record_of(record: dict, item: Uploaded) -> bool:
    """By the version token every record carries: S3's version id (a versioned bucket's notifications name it); else
    the ETag and time the token holds where S3 named no version (an identical re-upload has the same ETag)."""
    token = record.get("version_token", "")
    if token.startswith("v:"):
        return token == f"v:{item.version_id}"
    return token.startswith(f"e:{item.etag}@") and record["uploaded_at"] >= item.not_before


class Progress:
    """A one-line progress count on stderr when it is a terminal (quiet in pipes and logs)."""

    def __init__(self, verb: str, total: int):
        self.verb, self.total, self.count = verb, total, 0
        self.live = sys.stderr.isatty()

    def advance(self, by: int = 1) -> None:
        self.count += by
        if self.live and by:
            print(f"\r{self.verb} {self.count}/{self.total}", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.live:
            print(file=sys.stderr)

"""Test helpers: images built in code, events built from the shapes AWS sends, and a scripted model endpoint."""

import json
import threading
from collections import deque
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from PIL import Image

from lesionflow.contracts import HAM10000_LABELS
from lesionflow.dispatch import execution_input
from lesionflow.records import PredictionRecord
from lesionflow.storage import describe
from lesionflow.uploads import ObjectVersion, iso_utc
from lesionflow_local.fault_plan import encode
from lesionflow_local.stack import LOCAL_HASH_KEY

EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:sm:run"


def jpeg(width: int = 64, height: int = 48, colour=(180, 120, 100), **options) -> bytes:
    return encode(Image.new("RGB", (width, height), colour), "JPEG", **options)


def png(width: int = 64, height: int = 48, colour=(180, 120, 100), mode: str = "RGB", **options) -> bytes:
    return encode(Image.new(mode, (width, height), colour), "PNG", **options)


def s3_notification(bucket: str, key: str, size: int, etag: str = "etag", version_id: str | None = None,
                    sequencer: str = "0062D5F4F3A2B1C0D1", event_time: str = "2026-11-23T10:00:00.000Z") -> dict:
    """An S3 ObjectCreated notification as S3 sends it to SQS (``key`` URL-encoded by the caller, as S3 does)."""
    obj = {"key": key, "size": size, "eTag": etag, "sequencer": sequencer}
    if version_id:
        obj["versionId"] = version_id
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": event_time,
        "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "198.51.100.7"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "uploads", "object": obj,
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                          "arn": f"arn:aws:s3:::{bucket}"}},
    }]}


def sqs_event(*bodies: str) -> dict:
    """An SQS event as Lambda's event source mapping delivers it, one record per body."""
    return {"Records": [{
        "messageId": f"m-{index}", "receiptHandle": f"r-{index}", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763892000000",
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1763892000001"},
        "messageAttributes": {}, "md5OfBody": "0", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:lesionflow-local-IngestQueue", "awsRegion": "us-east-1",
    } for index, body in enumerate(bodies)]}


def upload_input(bucket: str, key: str, data: bytes, etag: str, version_id: str | None = None,
                 last_modified: datetime | None = None) -> dict:
    """The execution input the dispatcher builds for one uploaded object."""
    upload = ObjectVersion(bucket=bucket, key=key, size=len(data), etag=etag, version_id=version_id,
                           last_modified=last_modified or datetime.now(UTC).replace(microsecond=0))
    return json.loads(execution_input(upload.identified(LOCAL_HASH_KEY.encode())))


def state_for(stack, key: str, data: bytes, **changes) -> dict:
    """The state document the Validate task receives for ``data`` uploaded at ``key`` (inside ``mock_aws``), with
    the upload described by S3, as the dispatcher describes it."""
    response = boto3.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=data)
    version = describe(boto3.client("s3"), stack.bucket, key, response.get("VersionId"))
    state = json.loads(execution_input(version.identified(LOCAL_HASH_KEY.encode())))
    state["upload"] |= changes
    return state | {"execution_arn": EXECUTION_ARN,
                    "prediction_key": "predictions/run.json"}


def preprocessed(stack, state: dict) -> dict:
    """The document InvokeModel receives for ``state``, made by the real Validate and Preprocess handlers."""
    return stack.functions["PreprocessFunction"].invoke(stack.functions["ValidateFunction"].invoke(state))


def handover_objects(bucket: str) -> list[dict]:
    """Every version and delete marker under the hand-over prefix, where Preprocess stores large model inputs."""
    listing = boto3.client("s3").list_object_versions(Bucket=bucket, Prefix="model-inputs/")
    return listing.get("Versions", []) + listing.get("DeleteMarkers", [])



def put_record(table_name: str, name: str, created: datetime, uploaded: datetime | None = None, **fields) -> None:
    """A record of ``uploads/<name>.jpg`` put straight into the prediction table, created at ``created`` (uploaded
    then too, unless ``uploaded`` says otherwise: the same upload time is the same upload version)."""
    upload = ObjectVersion(bucket="b", key=f"uploads/{name}.jpg", size=1, etag=name,
                           last_modified=uploaded or created).identified(LOCAL_HASH_KEY.encode())
    record = PredictionRecord.for_upload(upload, EXECUTION_ARN, **fields)
    item = record.model_copy(update={"created_at": iso_utc(created)}).to_item()
    boto3.client("dynamodb").put_item(TableName=table_name, Item=item)

def hf_answer(**scores: float) -> bytes:
    """A Hugging Face image-classification answer: labels as the seed ViT names them, best first."""
    return json.dumps([{"label": label, "score": score}
                       for label, score in sorted(scores.items(), key=lambda item: -item[1])]).encode()


class ScriptedEndpoint(ThreadingHTTPServer):
    """The SageMaker runtime InvokeEndpoint API on loopback, answering what each test scripts.

    A test double for the model's peer, so a test can say exactly what the endpoint answers (a label, a 429, a 500,
    malformed JSON); the real ONNX-serving endpoint belongs to the local stack.
    """

    daemon_threads = True

    def __init__(self):
        self.answers: deque[tuple[int, bytes, dict]] = deque()
        self.default = (200, hf_answer(**{label: 0.01 for label in HAM10000_LABELS} | {"melanoma": 0.94}), {})
        self.requests: list[tuple[str, dict, bytes]] = []
        super().__init__(("127.0.0.1", 0), _EndpointHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def start(self) -> "ScriptedEndpoint":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def then(self, status: int, body: bytes, error_type: str | None = None,
             headers: dict[str, str] | None = None) -> "ScriptedEndpoint":
        self.answers.append((status, body, ({"x-amzn-ErrorType": error_type} if error_type else {}) | (headers or {})))
        return self


class _EndpointHandler(BaseHTTPRequestHandler):
    server: ScriptedEndpoint

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append((self.path, dict(self.headers), body))
        status, answer, headers = self.server.answers.popleft() if self.server.answers else self.server.default
        self.send_response(status)
        for name, value in (headers | {"Content-Type": "application/json", "Content-Length": str(len(answer))}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass

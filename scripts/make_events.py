"""Write events/*.json: one sample event per function (named as its folder in functions/), for `sam local invoke -e` and for the tests that replay them.

They describe samples/ham-size-dark.jpg uploaded to the local stack's bucket, so every event is consistent with the
one before it. Run again after changing the sample, the template's names or the state document.
"""

import json
from datetime import UTC, datetime
from hashlib import md5, sha256
from pathlib import Path

from lesionflow.contracts import load_contract
from lesionflow.dispatch import execution_input
from lesionflow.handover import hand_over
from lesionflow.images import ImageLimits, inspect
from lesionflow.preprocessing import PREPROCESSING_VERSION, model_input
from lesionflow.uploads import ObjectVersion
from lesionflow_local.stack import LOCAL_HASH_KEY, stack_names
from lesionflow_local.template import load

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "ham-size-dark.jpg"
KEY = "uploads/clinic 7/lesion dark+1.jpg"  # spaces and a plus sign, as people name files
SEQUENCER = "0067419F5E2C8D41A3"
# No version id: the events must work against any bucket holding the sample at KEY (a version id is S3's to choose).
# The dispatcher then asks S3 for the current version, as it does for any notification without one.
WHEN = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)


def main() -> None:
    names = stack_names()
    data = SAMPLE.read_bytes()
    etag = md5(data).hexdigest()
    upload = ObjectVersion(bucket=names.bucket, key=KEY, size=len(data), etag=etag, last_modified=WHEN).identified(LOCAL_HASH_KEY.encode())
    notification = {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": names.region,
        "eventTime": "2026-11-23T10:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLEUSER"}, "requestParameters": {"sourceIPAddress": "198.51.100.7"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "uploads",
               "bucket": {"name": names.bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKEXAMPLE"},
                          "arn": f"arn:aws:s3:::{names.bucket}"},
               "object": {"key": "uploads/clinic+7/lesion+dark%2B1.jpg", "size": len(data), "eTag": etag,
                          "sequencer": SEQUENCER}},
    }]}
    dispatch = {"Records": [{
        "messageId": "2e1424d4-f796-459a-8184-9c92662be6da", "receiptHandle": "AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq",
        "body": json.dumps(notification),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795428000000", "SenderId": "AIDAEXAMPLE",
                       "ApproximateFirstReceiveTimestamp": "1795428000010"},
        "messageAttributes": {}, "md5OfBody": md5(json.dumps(notification).encode()).hexdigest(),
        "eventSource": "aws:sqs", "eventSourceARN": names.queue_arn, "awsRegion": names.region,
    }]}
    execution_arn = f"{names.execution_prefix}:{upload.upload_id}"
    validate = json.loads(execution_input(upload)) | {
        "execution_arn": execution_arn, "execution_started_at": "2026-11-23T10:00:01.250Z",
        "prediction_key": f"{names.prediction_prefix}{upload.upload_id}.json"}
    facts = inspect(data, ImageLimits(), sha256(data).hexdigest())
    preprocess = validate | {"image": facts.model_dump(mode="json")}
    # the template's default contract, whose input for this sample travels inline: no S3 object to stage
    contract = load_contract(load()["Parameters"]["ModelContract"]["Default"])
    handed_over = hand_over(None, upload, model_input(data, facts.format, contract), "", PREPROCESSING_VERSION)
    invoke_model = preprocess | {"model_input": handed_over.model_dump(mode="json", exclude_none=True)}
    record_failure = {name: validate[name] for name in (
        "upload", "execution_arn", "execution_started_at", "prediction_key")} | {
        "reason": "the pipeline could not finish: States.Timeout (details in the execution history)"}
    events = {"dispatch": dispatch, "validate": validate, "preprocess": preprocess, "invoke_model": invoke_model,
              "record_failure": record_failure}
    for name, event in events.items():
        (ROOT / "events" / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")


if __name__ == "__main__":
    main()

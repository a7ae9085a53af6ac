"""The `lesionflow` command as a person uses it, against the local stack (`--endpoint-url`): upload and wait, the
prediction log's queries with pagination, watch, backfill, redrive, report, and one clear line for bad input."""

import csv
import json
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from tests.e2e.local import ROOT, client, records_of, started_local_stack
from tests.support import jpeg, png


@pytest.fixture(scope="module")
def local_stack():
    # Every request to the endpoint answers nonsense, so that uploads end FAILED for `redrive` to find
    with started_local_stack("--endpoint-faults", "rate=1,kinds=malformed") as details:
        yield details


def lesionflow(stack: dict, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lesionflow_cli", "--endpoint-url", stack["endpoint_url"],
                           *arguments], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A folder as a clinic exports it: HAM10000-style file names, one not an image, one hidden file."""
    folder = tmp_path_factory.mktemp("export") / "ham"
    folder.mkdir()
    (folder / "ISIC_0000001.jpg").write_bytes(jpeg(300, 225, colour=(150, 80, 70)))
    (folder / "ISIC_0000002.png").write_bytes(png(200, 200, colour=(90, 60, 50)))
    (folder / "ISIC_0000003.jpg").write_bytes(b"not an image")
    (folder / ".DS_Store").write_bytes(b"\0")
    return folder


@pytest.fixture(scope="module")
def uploaded(local_stack, dataset):
    result = lesionflow(local_stack, "upload", str(dataset), "--prefix", "clinic-7", "--wait", "--json")
    return result


def test_upload_wait_prints_each_files_terminal_record(uploaded):
    # (the endpoint fails every request here, so valid images end FAILED, the text file REJECTED)
    assert uploaded.returncode == 0, uploaded.stderr
    records = {r["image_key"]: r for r in map(json.loads, uploaded.stdout.splitlines())}
    assert set(records) == {f"uploads/clinic-7/ham/ISIC_000000{i}.{ext}" for i, ext in ((1, "jpg"), (2, "png"),
                                                                                        (3, "jpg"))}
    assert records["uploads/clinic-7/ham/ISIC_0000003.jpg"]["status"] == "REJECTED"
    assert records["uploads/clinic-7/ham/ISIC_0000001.jpg"]["status"] == "FAILED"


def test_list_pages_through_an_index_and_filters_by_status_and_time(local_stack, uploaded):
    # When the log is listed one record to a page (forcing pagination) for the last hour
    everything = lesionflow(local_stack, "predictions", "list", "--since", "1h", "--page-size", "1", "--limit", "0",
                            "--csv")
    failed = lesionflow(local_stack, "predictions", "list", "--status", "FAILED", "--page-size", "1", "--json")
    future = lesionflow(local_stack, "predictions", "list", "--since", "2999-01-01T00:00:00Z", "--json")

    # Then every page was read, the status filter holds, and a window with nothing in it is empty
    rows = list(csv.DictReader(everything.stdout.splitlines()))
    assert len(rows) == 3 and {row["status"] for row in rows} == {"FAILED", "REJECTED"}
    assert [json.loads(line)["status"] for line in failed.stdout.splitlines()] == ["FAILED", "FAILED"]
    assert future.stdout.strip() == ""


def test_get_prints_the_latest_record_of_a_key(local_stack, uploaded):
    result = lesionflow(local_stack, "predictions", "get", "uploads/clinic-7/ham/ISIC_0000003.jpg", "--json")
    [record] = map(json.loads, result.stdout.splitlines())
    assert record["status"] == "REJECTED" and "not a supported image" in record["reason"]


def test_watch_prints_records_as_they_arrive(local_stack):
    # Given a watcher started before an upload, from the time it was started (its own clock starts only once Python
    # and boto3 have loaded, which on a busy machine can be after the upload's record)
    started = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    watcher = subprocess.Popen([sys.executable, "-m", "lesionflow_cli", "--endpoint-url",
                                local_stack["endpoint_url"], "watch", "--json", "--count", "1", "--interval", "0.5",
                                "--timeout", "60", "--since", started], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(2)

    # When something is uploaded
    client(local_stack, "s3").put_object(
        Bucket=local_stack["bucket"], Key="uploads/watched/notes.jpg", Body=b"text")

    # Then the watcher prints its record and stops after it
    out, err = watcher.communicate(timeout=90)
    assert watcher.returncode == 0, err
    assert json.loads(out.splitlines()[0])["image_key"] == "uploads/watched/notes.jpg"


def test_backfill_classifies_objects_that_never_notified_and_is_idempotent(local_stack):
    # Given objects copied into the bucket while it sent no notifications (as before the stack existed)
    s3 = client(local_stack, "s3")
    bucket = local_stack["bucket"]
    notifications = s3.get_bucket_notification_configuration(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    keys = [f"uploads/dataset/ISIC_{i:07d}.txt" for i in range(3)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"not an image")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        name: value for name, value in notifications.items() if name.endswith("Configurations")})

    # When they are backfilled twice
    first = lesionflow(local_stack, "backfill", "--prefix", "dataset/")
    deadline = time.monotonic() + 90
    while not all(records_of(local_stack, key) for key in keys):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    second = lesionflow(local_stack, "backfill", "--prefix", "dataset/")
    time.sleep(4)

    # Then each was processed exactly once
    assert "3 object(s) listed, 3 notification(s) queued" in first.stdout
    assert second.returncode == 0
    assert [len(records_of(local_stack, key)) for key in keys] == [1, 1, 1]


def test_redrive_moves_dead_letters_and_runs_failed_uploads_again(local_stack, uploaded):
    # Given a dead letter waiting in the DLQ, and the two FAILED uploads
    sqs = client(local_stack, "sqs")
    sqs.send_message(QueueUrl=local_stack["dlq_url"], MessageBody="a message that could not be dispatched")

    # When they are redriven
    result = lesionflow(local_stack, "redrive")

    # Then the dead letter is back in the ingest queue and each FAILED upload ran again under a new name
    assert result.returncode == 0, result.stderr
    assert "1 dead letter(s) moved" in result.stdout and "2 FAILED upload(s) started again" in result.stdout
    sfn = client(local_stack, "stepfunctions")
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=local_stack["state_machine_arn"])["executions"]]
    assert sum(name.endswith("-redrive-1") for name in names) == 2


@pytest.fixture(scope="module")
def healthy_stack():
    """A second local stack whose endpoint answers, for what needs predictions."""
    with started_local_stack() as details:
        yield details


def test_report_joins_the_log_with_ground_truth(healthy_stack, dataset, tmp_path):
    # Given the dataset classified, and its ground truth in HAM10000's metadata format
    uploaded = lesionflow(healthy_stack, "upload", str(dataset), "--prefix", "study", "--wait")
    assert uploaded.returncode == 0, uploaded.stderr
    truth = tmp_path / "HAM10000_metadata.csv"
    truth.write_text("lesion_id,image_id,dx,dx_type,age,sex,localization\n"
                     "HAM_1,ISIC_0000001,mel,histo,55,male,back\nHAM_2,ISIC_0000002,nv,follow_up,40,female,face\n"
                     "HAM_3,ISIC_0000003,bkl,histo,70,female,trunk\n")

    # When the report is written
    result = lesionflow(healthy_stack, "report", "--truth", str(truth), "--out", str(tmp_path / "report"))

    # Then it evaluates the two classified images, counts the rejected one, and says the demo model means nothing
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert (metrics["counts"]["evaluated"], metrics["counts"]["rejected"]) == (2, 1)
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "Balanced accuracy" in summary and "untrained" in summary
    assert (tmp_path / "report" / "confusion_matrix.png").is_file()


@pytest.mark.parametrize(("arguments", "message"), [
    (("upload", "/no/such/folder"), "no such file or folder"),
    (("predictions", "get", "uploads/never-uploaded.jpg"), "no record of"),
    (("backfill", "--prefix", "empty/"), "no objects under"),
    (("report", "--truth", "/no/such.csv"), "/no/such.csv: no such file"),
])
def test_bad_input_gets_one_clear_line_not_a_traceback(local_stack, arguments, message):
    result = lesionflow(local_stack, *arguments)
    assert result.returncode == 2
    assert result.stderr.startswith("lesionflow: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_stack_without_credentials_is_one_clear_line():
    result = subprocess.run([sys.executable, "-m", "lesionflow_cli", "--stack", "nope", "--region", "us-east-1",
                             "predictions", "list"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "AWS_CONFIG_FILE": "/dev/null",
                                 "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"})
    assert result.returncode == 2 and result.stderr.startswith("lesionflow: no AWS credentials")

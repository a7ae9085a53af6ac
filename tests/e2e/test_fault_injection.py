"""The fault-injection run: 500 uploads through the local stack while the endpoint, SQS and the dispatcher misbehave.

`make fault-run` runs a bigger one; this is the same command, at the size the issue promises."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_upload_ends_in_exactly_one_terminal_record_whatever_goes_wrong():
    # When 500 uploads (about 45% invalid, some keys uploaded twice, some by multipart upload) go through the local
    # stack, some are backfilled again after S3's notification, forged notifications name real keys and another
    # bucket's objects, the endpoint faults on 15% of requests, SQS delivers 10% of messages twice, 5% of dispatcher
    # batches die halfway, and poison messages sit in the queue
    result = subprocess.run([sys.executable, "-m", "lesionflow_cli", "fault-run", "--uploads", "500", "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    audit = json.loads(result.stdout)

    # Then every fault kind was really injected...
    assert {"throttle", "not-ready", "unavailable", "error", "timeout", "malformed", "wrong-shape",
            "duplicate_deliveries"} <= set(audit["injected"]), audit["injected"]
    # ...and nothing was lost or duplicated, every verdict fits its input, every execution ended
    assert (audit["lost"], audit["duplicated"], audit["wrong_verdicts"]) == (0, 0, []), audit
    assert audit["executions_running"] == 0 and audit["prediction_json_missing"] == 0
    assert sum(audit["records"].values()) == audit["upload_versions"] > 500
    # the bad input was rejected and the valid input classified, apart from the endpoint's permanent faults
    assert audit["records"]["REJECTED"] > 200 and audit["records"]["SUCCEEDED"] > 200
    permanent = audit["injected"]["malformed"] + audit["injected"]["wrong-shape"]
    assert audit["failed_by_permanent_fault"] == permanent == audit["records"].get("FAILED", 0)
    # poison messages ended in the dead-letter queue, and nothing else did
    assert (audit["poison_messages_in_dlq"], audit["other_messages_in_dlq"]) == (5, 0)
    assert audit["latest_record_not_newest"] == 0
    # every other way of announcing an upload happened, and none added a record or touched another bucket
    assert audit["sent_again"] == {"backfilled": 50, "forged for real keys": 150, "forged for another bucket": 5}
    assert audit["records_for_other_objects"] == 0 and audit["rejected_as_overwritten"] == 0
    assert result.returncode == 0 and audit["ok"], audit["problems"]

"""`make demo`, the README's first command, as a newcomer runs it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_prints_succeeded_and_rejected_rows_names_the_model_and_exits_0():
    # When the demo runs on a fresh local stack
    result = subprocess.run([sys.executable, "-m", "lesionflow_cli", "demo"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)

    # Then it exits 0 with a row per sample image, read back from the prediction log
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("uploads/demo/")}
    assert len(rows) == len(list((ROOT / "samples").iterdir()))
    assert "SUCCEEDED" in rows["uploads/demo/ham-size-dark.jpg"]
    assert "SUCCEEDED" in rows["uploads/demo/phone-4000x3000.jpg"]
    assert "REJECTED" in rows["uploads/demo/not-an-image.jpg"] and "REJECTED" in rows["uploads/demo/truncated.jpg"]
    # and it says which model produced the predictions, that it is untrained, and what the metrics were
    assert "Model: lesionflow-demo-untrained-1" in result.stdout and "not diagnoses" in result.stdout
    assert "Decision support, not a diagnosis" in result.stdout
    assert "PredictionsMade 7" in result.stdout

"""The evaluation report: truth CSV parsing, the join with the prediction log, the metrics and the files written."""

import json
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from lesionflow_cli.report import ReportInputError, TruthRow, build_report, read_truth, write_report

HEADER = "lesion_id,image_id,dx,dx_type,age,sex,localization"
TRUTH = [  # image, truth, then what the latest record says
    "HAM_0000001,ISIC_0000001,mel,histo,50.0,male,back",  # predicted mel (an older upload said bkl)
    "HAM_0000002,ISIC_0000002,mel,histo,65.0,female,face",  # predicted nv
    "HAM_0000003,ISIC_0000003,nv,follow_up,35.0,male,trunk",  # predicted nv
    "HAM_0000004,ISIC_0000004,nv,follow_up,40.0,female,back",  # predicted nv
    "HAM_0000005,ISIC_0000005,nv,consensus,,male,lower extremity",  # predicted vasc (age unknown)
    "HAM_0000006,ISIC_0000006,bcc,histo,70.0,male,face",  # predicted nv
    "HAM_0000007,ISIC_0000007,bkl,histo,60.0,female,back",  # REJECTED
    "HAM_0000008,ISIC_0000008,df,consensus,45.0,male,lower extremity",  # FAILED
    "HAM_0000009,ISIC_0000009,akiec,histo,75.0,female,face",  # no record: missing
]
DEMO = "untrained demo network with random weights: its labels are not diagnoses"


def record(key: str, status: str = "SUCCEEDED", label: str | None = None, confidence: str | None = None,
           version: str = "2026-11-20T10:00:00.000Z#s:01", **extra) -> dict:
    """A prediction-log item as boto3's resource API returns it: numbers are Decimal."""
    item = {"image_key": key, "upload_version": version, "status": status, "created_at": "2026-11-20T10:00:09Z",
            "bucket": "lesionflow-test", **extra}
    if status == "SUCCEEDED":
        item |= {"label": label, "confidence": Decimal(confidence),
                 "scores": {code: Decimal("0.01") for code in ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")}}
    else:
        item["reason"] = "not a supported image"
    return item


def log_records(**extra) -> list[dict]:
    return [
        record("uploads/clinic-7/ISIC_0000001.jpg", label="mel", confidence="0.9",
               version="2026-11-20T10:00:05.000Z#s:02", **extra),
        # an older upload of the same key, listed after the newer one: it must not count
        record("uploads/clinic-7/ISIC_0000001.jpg", label="bkl", confidence="0.3",
               version="2026-11-20T10:00:00.000Z#s:01", **extra),
        record("uploads/clinic-7/ISIC_0000002.jpg", label="nv", confidence="0.6", **extra),
        record("uploads/clinic-7/ISIC_0000003.jpg", label="nv", confidence="0.8", **extra),
        record("uploads/other/ISIC_0000004.png", label="nv", confidence="0.7", **extra),
        record("uploads/ISIC_0000005.jpeg", label="vasc", confidence="0.5", **extra),
        record("uploads/clinic-7/ISIC_0000006.jpg", label="nv", confidence="0.4", **extra),
        record("uploads/clinic-7/ISIC_0000007.jpg", status="REJECTED", rejection_class="damaged"),
        record("uploads/clinic-7/ISIC_0000008.jpg", status="FAILED"),
        record("uploads/clinic-7/holiday-photo.jpg", label="nv", confidence="0.99", **extra),  # no truth row
    ]


def write_csv(tmp_path: Path, lines: list[str], name: str = "metadata.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def truth(tmp_path) -> dict[str, TruthRow]:
    return read_truth(write_csv(tmp_path, [HEADER, *TRUTH]))


# --- the metrics, checked by hand --------------------------------------------------------------------------------

def test_metrics_of_a_hand_checked_case(truth):
    # Given six evaluated images (latest records):
    #   truth mel -> mel, mel -> nv, nv -> nv, nv -> nv, nv -> vasc, bcc -> nv
    # so: mel  tp 1, predicted 1, support 2: P = 1/1 = 1,   R = 1/2,  F1 = 2*1*(1/2)/(3/2)       = 2/3
    #     nv   tp 2, predicted 4, support 3: P = 2/4 = 1/2, R = 2/3,  F1 = 2*(1/2)*(2/3)/(7/6)   = 4/7
    #     bcc  tp 0, predicted 0, support 1: P = 0.0 (never predicted: defined as 0), R = 0, F1 = 0
    #     vasc tp 0, predicted 1, support 0: P = 0, R = 0 (no support), F1 = 0
    #     akiec, bkl, df: neither in the truth nor predicted: all 0
    # accuracy          = 3 correct / 6 = 1/2
    # balanced accuracy = mean recall over the classes in the truth {mel, nv, bcc} = (1/2 + 2/3 + 0) / 3 = 7/18
    # macro F1          = mean F1 over truth or predicted {mel, nv, bcc, vasc} = (2/3 + 4/7 + 0 + 0) / 4 = 13/42
    # When
    evaluation = build_report(log_records(), truth)
    # Then
    per_class = evaluation.per_class
    assert list(per_class) == ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    assert (per_class["mel"].precision, per_class["mel"].recall) == (1.0, 0.5)
    assert per_class["mel"].f1 == pytest.approx(2 / 3, abs=1e-12)
    assert (per_class["nv"].precision, per_class["nv"].recall) == (0.5, pytest.approx(2 / 3, abs=1e-12))
    assert per_class["nv"].f1 == pytest.approx(4 / 7, abs=1e-12)
    assert (per_class["bcc"].precision, per_class["bcc"].recall, per_class["bcc"].f1) == (0.0, 0.0, 0.0)
    assert (per_class["vasc"].support, per_class["vasc"].predicted, per_class["vasc"].precision) == (0, 1, 0.0)
    assert [(m.support, m.predicted) for m in per_class.values()] == [(0, 0), (1, 0), (0, 0), (0, 0), (2, 1),
                                                                      (3, 4), (0, 1)]
    assert evaluation.accuracy == 0.5
    assert evaluation.balanced_accuracy == pytest.approx(7 / 18, abs=1e-12)
    assert evaluation.macro_f1 == pytest.approx(13 / 42, abs=1e-12)
    #                             akiec bcc bkl df mel nv vasc (predicted)
    assert evaluation.confusion == [[0, 0, 0, 0, 0, 0, 0],  # akiec (truth)
                                    [0, 0, 0, 0, 0, 1, 0],  # bcc
                                    [0, 0, 0, 0, 0, 0, 0],  # bkl
                                    [0, 0, 0, 0, 0, 0, 0],  # df
                                    [0, 0, 0, 0, 1, 1, 0],  # mel
                                    [0, 0, 0, 0, 0, 2, 1],  # nv
                                    [0, 0, 0, 0, 0, 0, 0]]  # vasc


def test_every_image_is_accounted_for(truth):
    # Given 10 records: one older upload of an image, a REJECTED and a FAILED image, a key with no truth row,
    # and a truth row with no record
    # When
    counts = build_report(log_records(), truth).counts
    # Then
    assert (counts.records, counts.matched, counts.evaluated, counts.rejected, counts.failed) == (10, 8, 6, 1, 1)
    assert (counts.unmatched, counts.missing, counts.superseded) == (1, 1, 1)


def test_the_latest_upload_of_a_key_wins_whatever_the_order(truth):
    # Given an image predicted bkl by its first upload and mel by its second, the second listed first
    records = log_records()
    # When
    evaluation = build_report(records, truth)
    # Then the newer (mel, correct) counts, the older (bkl) does not
    assert evaluation.confusion[4][4] == 1 and evaluation.per_class["bkl"].predicted == 0
    # And when the order of the list is reversed, the answer is the same
    assert build_report(records[::-1], truth).confusion == evaluation.confusion


def test_the_latest_upload_wins_even_when_it_was_rejected(truth):
    # Given an image whose older upload succeeded and whose newer upload was rejected
    records = log_records() + [record("uploads/clinic-7/ISIC_0000003.jpg", status="REJECTED",
                                      version="2026-11-21T08:00:00.000Z#s:09")]
    # When
    evaluation = build_report(records, truth)
    # Then the image counts as rejected and leaves the metrics
    assert (evaluation.counts.evaluated, evaluation.counts.rejected, evaluation.counts.superseded) == (5, 2, 2)
    assert evaluation.per_class["nv"].support == 2


def test_rejected_and_failed_images_are_counted_but_not_evaluated(truth):
    # Given the bkl image REJECTED and the df image FAILED
    # When
    evaluation = build_report(log_records(), truth)
    # Then neither is in the confusion matrix, the supports or the accuracy's denominator
    assert (evaluation.per_class["bkl"].support, evaluation.per_class["df"].support) == (0, 0)
    assert sum(map(sum, evaluation.confusion)) == 6
    assert {p.truth.image_id for p in evaluation.predictions} == {f"ISIC_000000{i}" for i in range(1, 7)}


def test_decimal_confidences_become_floats(truth):
    # Given records whose numbers are Decimal, as DynamoDB returns them
    # When
    evaluation = build_report(log_records(), truth)
    # Then the confidences are floats: correct 0.9, 0.8, 0.7; wrong 0.6, 0.5, 0.4
    assert all(type(p.confidence) is float for p in evaluation.predictions)
    assert evaluation.mean_confidence == {"all": pytest.approx(0.65), "correct": pytest.approx(0.8),
                                          "wrong": pytest.approx(0.5)}


def test_a_demo_model_makes_the_report_say_its_metrics_mean_nothing(truth):
    # Given the evaluated predictions were made by the untrained demo model
    records = log_records(model_name="lesionflow-demo-untrained-1", model_version="1", model_disclaimer=DEMO)
    # When
    evaluation = build_report(records, truth)
    # Then
    assert evaluation.disclaimer.startswith("6 of 6 evaluated predictions come from an untrained demo model")
    assert DEMO in evaluation.disclaimer and "mean nothing" in evaluation.disclaimer
    assert evaluation.models == {"lesionflow-demo-untrained-1 version 1": 6}


def test_a_real_model_gets_no_disclaimer(truth):
    # Given no evaluated record carries a model_disclaimer (only a rejected one does)
    records = log_records(model_name="vit", model_version="3")
    records[7]["model_disclaimer"] = DEMO
    # When / Then
    assert build_report(records, truth).disclaimer is None


@pytest.mark.parametrize("records, message", [
    ([], "no records"),
    ([record("uploads/holiday.jpg", label="nv", confidence="0.5")], "none of the 1 records matches an image_id"),
    ([record("uploads/ISIC_0000007.jpg", status="REJECTED")], "has a SUCCEEDED prediction"),
    ([record("uploads/ISIC_0000001.jpg", label="melanoma", confidence="0.5")], "'melanoma', not a HAM10000 code"),
], ids=["no records", "no matches", "no successes", "unknown label"])
def test_nothing_to_evaluate_is_a_clear_error(truth, records, message):
    with pytest.raises(ReportInputError, match=message):
        build_report(records, truth)


# --- reading the truth ----------------------------------------------------------------------------------------------

def test_the_truth_is_read_by_image_id(truth):
    assert truth["ISIC_0000001"] == TruthRow(image_id="ISIC_0000001", dx="mel", lesion_id="HAM_0000001",
                                             dx_type="histo", age=50.0, sex="male", localization="back")
    assert truth["ISIC_0000005"].age is None  # HAM10000 leaves some ages empty
    assert len(truth) == 9


def test_only_image_id_and_dx_are_required_and_names_are_case_insensitive(tmp_path):
    # Given a truth file with two columns in another order, upper-case names and codes, a blank line and a BOM
    path = tmp_path / "truth.csv"
    path.write_text("\ufeffDX, Image_ID\nMEL,ISIC_1\n\nNv,ISIC_2\n", encoding="utf-8")
    # When
    truth = read_truth(path)
    # Then
    assert truth == {"ISIC_1": TruthRow(image_id="ISIC_1", dx="mel"), "ISIC_2": TruthRow(image_id="ISIC_2", dx="nv")}


@pytest.mark.parametrize("lines, message", [
    (["image_id,diagnosis", "ISIC_1,mel"], r"line 1: no column 'dx' in the header \(found: image_id, diagnosis\)"),
    (["lesion_id,dx", "HAM_1,mel"], "line 1: no column 'image_id'"),
    (["image_id,dx", "ISIC_1,mel", "ISIC_2,melanoma"], r"line 3: column dx: 'melanoma' is not one of akiec, bcc"),
    (["image_id,dx", "ISIC_1,mel", "ISIC_2,nv", "ISIC_3,"], "line 4: column dx is empty"),
    (["image_id,dx,age", "ISIC_1,mel,50", "ISIC_2,nv,fifty"], "line 3: column age: 'fifty' is not a number"),
    (["image_id,dx", "ISIC_1,mel,extra"], "line 2: 3 fields, the header has 2"),
    (["image_id,dx", "ISIC_1,mel", ",nv"], "line 3: column image_id is empty"),
    (["image_id,dx", "ISIC_1,mel", "ISIC_1,nv"], "line 3: image_id 'ISIC_1' appears a second time"),
    (["image_id,dx"], "a header but no rows"),
    ([""], "empty, expected a header line"),
], ids=["no dx column", "no image_id column", "unknown dx", "empty dx", "bad age", "extra field", "empty image_id",
        "duplicate image_id", "no rows", "empty file"])
def test_a_malformed_truth_file_names_the_line_and_column(tmp_path, lines, message):
    # Given
    path = write_csv(tmp_path, lines)
    # When / Then: one line for the user, naming the file
    with pytest.raises(ReportInputError, match=message) as raised:
        read_truth(path)
    assert str(raised.value).startswith(str(path)) and "\n" not in str(raised.value)


def test_a_file_that_is_not_a_csv_is_refused(tmp_path):
    # Given an image saved under the truth file's name
    buffer = BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    path = tmp_path / "metadata.csv"
    path.write_bytes(buffer.getvalue())
    # When / Then
    with pytest.raises(ReportInputError, match="not a CSV file"):
        read_truth(path)


def test_a_missing_truth_file_is_a_clear_error(tmp_path):
    with pytest.raises(ReportInputError, match="nowhere.csv: no such file"):
        read_truth(tmp_path / "nowhere.csv")


# --- the files written ------------------------------------------------------------------------------------------

def test_write_report_writes_every_file(tmp_path, truth):
    # Given an evaluation of the demo model's predictions
    evaluation = build_report(log_records(model_disclaimer=DEMO), truth)
    # When
    written = write_report(evaluation, tmp_path / "report")
    # Then every file is there, the optional charts too (the truth has dx_type, localization and age)
    assert sorted(p.name for p in written) == ["age_histogram.png", "class_distribution.png", "confusion_matrix.png",
                                              "dx_type.png", "localization.png", "metrics.json", "summary.html",
                                              "summary.md"]
    assert all(p.parent == tmp_path / "report" and p.stat().st_size > 0 for p in written)
    for png in (p for p in written if p.suffix == ".png"):
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width > 100
            image.verify()


def test_the_summary_shows_the_metrics_and_the_warning_in_both_renderings(tmp_path, truth):
    # Given
    evaluation = build_report(log_records(model_disclaimer=DEMO), truth)
    # When
    write_report(evaluation, tmp_path)
    markdown = (tmp_path / "summary.md").read_text()
    page = (tmp_path / "summary.html").read_text()
    # Then: balanced accuracy 7/18, accuracy 1/2, macro F1 13/42, the warning, the counts
    for text in (markdown, page):
        assert "Balanced accuracy 0.3889" in text
        assert "0.5000" in text and "0.3095" in text
        assert "WARNING: 6 of 6 evaluated predictions come from an untrained demo model" in text
        assert "missing: truth rows with no record" in text
    assert "| balanced accuracy | 0.3889 |" in markdown
    assert "| nv | 0.5000 | 0.6667 | 0.5714 | 3 | 4 |" in markdown
    assert "![Confusion matrix: rows truth, columns predicted](confusion_matrix.png)" in markdown
    # And the page is self-contained: its only references are the charts next to it
    assert 'src="confusion_matrix.png"' in page and "http" not in page and "<script" not in page


def test_metrics_json_holds_every_number_and_no_nan(tmp_path, truth):
    # Given
    evaluation = build_report(log_records(), truth)
    # When
    write_report(evaluation, tmp_path)

    # Then it parses without any NaN or Infinity, and holds the same numbers as the evaluation
    def refuse(constant):
        raise AssertionError(f"{constant} in metrics.json")

    metrics = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=refuse)
    assert metrics["balanced_accuracy"] == evaluation.balanced_accuracy
    assert metrics["per_class"]["bcc"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 0}
    assert metrics["confusion_matrix"]["counts"] == evaluation.confusion
    assert metrics["counts"]["unmatched"] == 1 and metrics["counts"]["missing"] == 1
    assert metrics["mean_confidence"]["correct"] == pytest.approx(0.8)
    assert metrics["by_dx_type"]["histo"] == {"images": 3, "correct": 1, "accuracy": 1 / 3}
    assert metrics["by_age"]["30-39"] == {"images": 1, "correct": 1, "accuracy": 1.0}


def test_charts_of_columns_the_truth_lacks_are_not_written(tmp_path):
    # Given a truth file with only image_id and dx
    truth = read_truth(write_csv(tmp_path, ["image_id,dx", "ISIC_0000001,mel", "ISIC_0000002,nv"]))
    evaluation = build_report([record("uploads/ISIC_0000001.jpg", label="mel", confidence="0.9"),
                               record("uploads/ISIC_0000002.jpg", label="mel", confidence="0.8")], truth)
    # When
    written = write_report(evaluation, tmp_path / "out")
    # Then
    assert sorted(p.name for p in written) == ["class_distribution.png", "confusion_matrix.png", "metrics.json",
                                              "summary.html", "summary.md"]
    assert "localization" not in (tmp_path / "out" / "summary.md").read_text()

"""Evaluate the prediction log against HAM10000-style ground truth: ``lesionflow report --truth metadata.csv``.

Pure domain code: the records come in as DynamoDB returns them (numbers as ``Decimal``), the truth from a CSV file;
``build_report`` turns them into an ``Evaluation`` and ``write_report`` writes it as Markdown, HTML, JSON and charts.

Definitions (every number is finite: where a ratio would be 0/0 it is defined as 0.0, never NaN):

- the evaluated images are the truth rows whose latest record is ``SUCCEEDED``;
- precision of a class = correct predictions of it / predictions of it, **0.0 when it was never predicted**;
- recall of a class = correct predictions of it / its truth rows (its support), 0.0 when it has no support;
- F1 = 2PR / (P + R), 0.0 when P + R = 0;
- accuracy = correct predictions / evaluated images;
- balanced accuracy: see ``balanced_accuracy``;
- macro F1 = the unweighted mean F1 over the classes present in the truth or in the predictions (as scikit-learn's
  ``f1_score(average="macro")``): a class predicted but absent from the truth counts with F1 0.0.
"""

import csv
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lesionflow.contracts import HAM10000_LABELS
from lesionflow.records import Status

CLASSES = HAM10000_LABELS  # akiec, bcc, bkl, df, mel, nv, vasc: the order of every table and chart
REQUIRED_COLUMNS = ("image_id", "dx")
OPTIONAL_COLUMNS = ("lesion_id", "dx_type", "age", "sex", "localization")


class ReportInputError(ValueError):
    """Input the report cannot use; the message is one line for the user (which file, line and column)."""


@dataclass(frozen=True)
class TruthRow:
    image_id: str
    dx: str  # lower-case HAM10000 code
    lesion_id: str | None = None
    dx_type: str | None = None  # how the diagnosis was made: histo, follow_up, consensus, confocal
    age: float | None = None
    sex: str | None = None
    localization: str | None = None


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int  # truth rows of the class among the evaluated images
    predicted: int  # evaluated images predicted as the class


@dataclass(frozen=True)
class Counts:
    records: int  # records given
    matched: int  # truth rows with at least one record; the latest upload of each is the one used
    evaluated: int  # matched whose latest record SUCCEEDED: the metrics' sample
    rejected: int  # matched whose latest record is REJECTED (excluded from the metrics)
    failed: int  # matched whose latest record is FAILED, or any other status (excluded)
    unmatched: int  # distinct keys whose file stem is no image_id of the truth
    missing: int  # truth rows with no record
    superseded: int  # records of matched images left aside because a newer upload of the image exists


@dataclass(frozen=True)
class Prediction:
    """One evaluated image: its truth and the latest SUCCEEDED record's label."""

    image_key: str
    truth: TruthRow
    label: str
    confidence: float | None


@dataclass(frozen=True)
class Evaluation:
    per_class: dict[str, ClassMetrics]  # every class of CLASSES, in that order
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    confusion: list[list[int]]  # confusion[t][p]: truth CLASSES[t] predicted CLASSES[p]
    counts: Counts
    predictions: list[Prediction]
    models: dict[str, int]  # "model_name model_version" -> evaluated predictions it made
    disclaimer: str | None  # set when any evaluated prediction comes from a model with a model_disclaimer

    @property
    def mean_confidence(self) -> dict[str, float | None]:
        """Mean confidence of all, correct and wrong predictions (None where there is none to average)."""
        groups = {"all": self.predictions, "correct": [p for p in self.predictions if p.label == p.truth.dx],
                  "wrong": [p for p in self.predictions if p.label != p.truth.dx]}
        means = {}
        for name, group in groups.items():
            values = [p.confidence for p in group if p.confidence is not None]
            means[name] = sum(values) / len(values) if values else None
        return means


def read_truth(path: Path) -> dict[str, TruthRow]:
    """The truth rows of a HAM10000 metadata CSV by image_id; only ``image_id`` and ``dx`` columns are required."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            return _parse_truth(csv.reader(file), path)
    except FileNotFoundError:
        raise ReportInputError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ReportInputError(f"{path}: not a CSV file (not UTF-8 text)") from None
    except OSError as error:
        raise ReportInputError(f"{path}: cannot be read ({error.strerror})") from None


def _parse_truth(reader, path: Path) -> dict[str, TruthRow]:
    def fail(message: str) -> ReportInputError:
        return ReportInputError(f"{path}, line {reader.line_num}: {message}")

    try:
        header = [name.strip().lower() for name in next(reader, [])]
        if not header:
            raise ReportInputError(f"{path}: empty, expected a header line with columns image_id and dx")
        for column in REQUIRED_COLUMNS:
            if column not in header:
                raise fail(f"no column {column!r} in the header (found: {', '.join(header)})")
        index = {name: header.index(name) for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if name in header}
        rows: dict[str, TruthRow] = {}
        for fields in reader:
            if not fields:
                continue
            if len(fields) != len(header):
                raise fail(f"{len(fields)} fields, the header has {len(header)}")
            values = {name: fields[i].strip() or None for name, i in index.items()}
            image_id, dx = values["image_id"], (values["dx"] or "").lower()
            if image_id is None:
                raise fail("column image_id is empty")
            if not dx:
                raise fail("column dx is empty")
            if dx not in CLASSES:
                raise fail(f"column dx: {values['dx']!r} is not one of {', '.join(CLASSES)}")
            if image_id in rows:
                raise fail(f"image_id {image_id!r} appears a second time")
            rows[image_id] = TruthRow(image_id=image_id, dx=dx, lesion_id=values.get("lesion_id"),
                                      dx_type=values.get("dx_type"), age=_age(values.get("age"), fail),
                                      sex=values.get("sex"), localization=values.get("localization"))
    except csv.Error as error:
        raise fail(f"not valid CSV ({error})") from None
    if not rows:
        raise ReportInputError(f"{path}: a header but no rows")
    return rows


def _age(text: str | None, fail) -> float | None:
    if text is None:
        return None
    try:
        age = float(text)
    except ValueError:
        raise fail(f"column age: {text!r} is not a number") from None
    if not math.isfinite(age) or age < 0:
        raise fail(f"column age: {text!r} is not an age")
    return age


def image_id_of(image_key: str) -> str:
    """The image_id a key names: its last path part without the extension (``uploads/x/ISIC_0024306.jpg``)."""
    return PurePosixPath(image_key).stem


def build_report(records: list[dict], truth: dict[str, TruthRow]) -> Evaluation:
    """Join the records to the truth by image_id (latest upload of each image wins) and compute the metrics."""
    if not records:
        raise ReportInputError("the prediction log has no records to evaluate")
    latest: dict[str, dict] = {}
    unmatched_keys = set()
    matched_records = 0
    for record in records:
        image_id = image_id_of(record["image_key"])
        if image_id not in truth:
            unmatched_keys.add(record["image_key"])
            continue
        matched_records += 1
        if image_id not in latest or record["upload_version"] > latest[image_id]["upload_version"]:
            latest[image_id] = record
    if not latest:
        raise ReportInputError(f"none of the {len(records)} records matches an image_id of the truth (a key's file "
                               f"name without extension must be the image_id, e.g. uploads/ISIC_0024306.jpg)")

    statuses = Counter(record["status"] for record in latest.values())
    predictions = [_prediction(record, truth[image_id]) for image_id, record in sorted(latest.items())
                   if record["status"] == Status.SUCCEEDED]
    counts = Counts(records=len(records), matched=len(latest), evaluated=len(predictions),
                    rejected=statuses[Status.REJECTED],
                    failed=len(latest) - statuses[Status.SUCCEEDED] - statuses[Status.REJECTED],
                    unmatched=len(unmatched_keys), missing=len(truth) - len(latest),
                    superseded=matched_records - len(latest))
    if not predictions:
        raise ReportInputError(f"none of the {counts.matched} matched images has a SUCCEEDED prediction "
                               f"({counts.rejected} rejected, {counts.failed} failed): nothing to evaluate")

    confusion = [[0] * len(CLASSES) for _ in CLASSES]
    for prediction in predictions:
        confusion[CLASSES.index(prediction.truth.dx)][CLASSES.index(prediction.label)] += 1
    per_class = {name: _class_metrics(confusion, i) for i, name in enumerate(CLASSES)}
    seen = [m for m in per_class.values() if m.support or m.predicted]
    used = [latest[p.truth.image_id] for p in predictions]
    disclaimed = [r for r in used if r.get("model_disclaimer")]
    return Evaluation(
        per_class=per_class,
        accuracy=sum(confusion[i][i] for i in range(len(CLASSES))) / len(predictions),
        balanced_accuracy=balanced_accuracy(per_class),
        macro_f1=sum(m.f1 for m in seen) / len(seen),
        confusion=confusion, counts=counts, predictions=predictions,
        models=dict(Counter(_model(record) for record in used)),
        disclaimer=(f"{len(disclaimed)} of {len(used)} evaluated predictions come from an untrained demo model "
                    f"(\"{disclaimed[0]['model_disclaimer']}\"): its predictions mean nothing, and neither do these "
                    "metrics.") if disclaimed else None,
    )


def _model(record: dict) -> str:
    name, version = record.get("model_name"), record.get("model_version")
    return f"{name or '(model not named)'}{f' version {version}' if version else ''}"


def _prediction(record: dict, truth: TruthRow) -> Prediction:
    label = record.get("label")
    if label not in CLASSES:
        raise ReportInputError(f"the SUCCEEDED record of {record['image_key']} ({record['upload_version']}) has "
                               f"label {label!r}, not a HAM10000 code")
    confidence = record.get("confidence")
    return Prediction(image_key=record["image_key"], truth=truth, label=label,
                      confidence=None if confidence is None else float(confidence))


def _class_metrics(confusion: list[list[int]], i: int) -> ClassMetrics:
    correct = confusion[i][i]
    support = sum(confusion[i])
    predicted = sum(row[i] for row in confusion)
    precision = correct / predicted if predicted else 0.0  # never predicted: 0.0 by definition, not NaN
    recall = correct / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ClassMetrics(precision=precision, recall=recall, f1=f1, support=support, predicted=predicted)


def balanced_accuracy(per_class: dict[str, ClassMetrics]) -> float:
    """Balanced accuracy = (1 / |C|) * sum over c in C of recall(c), where C is the set of classes with at least one
    evaluated truth row (support > 0) and recall(c) = images of class c predicted as c / images of class c.

    This is the ISIC 2018 challenge's headline metric (task 3) and scikit-learn's ``balanced_accuracy_score``:
    every class present in the truth weighs the same however rare it is, so predicting ``nv`` (two thirds of
    HAM10000) for everything scores 1/7, not 0.67. Classes absent from the truth are left out (their recall is
    undefined); predictions of them still lower the recall of the classes they were wrongly given to.
    """
    recalls = [m.recall for m in per_class.values() if m.support]
    return sum(recalls) / len(recalls)


def write_report(evaluation: Evaluation, out_dir: Path) -> list[Path]:
    """Write summary.md, summary.html, metrics.json and the PNG charts into out_dir; return the paths written."""
    from lesionflow_cli.report_charts import write_all  # matplotlib only when writing

    return write_all(evaluation, Path(out_dir))

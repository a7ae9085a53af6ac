"""Write an ``Evaluation`` to files: summary.md and summary.html (one content, two renderings), metrics.json and PNG
charts drawn with matplotlib's Agg backend (no display, no pyplot state)."""

import html
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lesionflow_cli.report import CLASSES, Evaluation, Prediction

CORRECT, WRONG, TRUTH, PREDICTED = "#4c9a6a", "#c8553d", "#3b6ea8", "#e0a030"

# The breakdowns the source reports charted, each written only when the evaluated truth rows carry that column.
BREAKDOWNS: dict[str, tuple[str, Callable[[Prediction], str | None]]] = {
    "dx_type": ("By diagnosis type (how the truth was established)", lambda p: p.truth.dx_type),
    "localization": ("By localization", lambda p: p.truth.localization),
    "age_histogram": ("By age (decades)", lambda p: _decade(p.truth.age)),
}


def _decade(age: float | None) -> str | None:
    if age is None:
        return None
    start = int(age) // 10 * 10
    return f"{start}-{start + 9}"


def _groups(evaluation: Evaluation, key: Callable[[Prediction], str | None]) -> dict[str, dict[str, float]]:
    """Images, correct predictions and accuracy per value of ``key`` (images without a value left out)."""
    groups: dict[str, list[int]] = {}
    for prediction in evaluation.predictions:
        value = key(prediction)
        if value is not None:
            groups.setdefault(value, [0, 0])[0] += 1
            groups[value][1] += prediction.label == prediction.truth.dx
    return {value: {"images": n, "correct": k, "accuracy": k / n} for value, (n, k) in groups.items()}


def _ordered(name: str, groups: dict[str, dict]) -> dict[str, dict]:
    """Decades in age order, other values from the most to the least frequent."""
    if name == "age_histogram":
        return {v: groups[v] for v in sorted(groups, key=lambda v: int(v.split("-")[0]))}
    return {v: groups[v] for v in sorted(groups, key=lambda v: (-groups[v]["images"], v))}


def write_all(evaluation: Evaluation, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    breakdowns = {name: _ordered(name, _groups(evaluation, key)) for name, (_, key) in BREAKDOWNS.items()}
    breakdowns = {name: groups for name, groups in breakdowns.items() if groups}
    charts = {"confusion_matrix.png": _confusion_chart(evaluation),
              "class_distribution.png": _distribution_chart(evaluation)}
    for name, groups in breakdowns.items():
        if name == "age_histogram":  # every decade from the youngest to the oldest, empty ones included
            starts = [int(v.split("-")[0]) for v in groups]
            empty = {"images": 0, "correct": 0}
            groups = {d: groups.get(d, empty) for d in (_decade(a) for a in range(min(starts), max(starts) + 1, 10))}
        charts[f"{name}.png"] = _correct_wrong_chart(BREAKDOWNS[name][0], groups, horizontal=name != "age_histogram")
    written = []
    for filename, figure in charts.items():
        FigureCanvasAgg(figure)
        figure.savefig(out_dir / filename, dpi=100)
        written.append(out_dir / filename)
    blocks = _summary(evaluation, breakdowns)
    for filename, text in (("summary.md", _markdown(blocks)), ("summary.html", _html(blocks)),
                           ("metrics.json", _metrics_json(evaluation, breakdowns))):
        (out_dir / filename).write_text(text, encoding="utf-8")
        written.append(out_dir / filename)
    return written


def _metrics_json(evaluation: Evaluation, breakdowns: dict) -> str:
    document = {
        "classes": list(CLASSES),
        "balanced_accuracy": evaluation.balanced_accuracy, "accuracy": evaluation.accuracy,
        "macro_f1": evaluation.macro_f1,
        "per_class": {name: asdict(metrics) for name, metrics in evaluation.per_class.items()},
        "confusion_matrix": {"rows": "truth", "columns": "predicted", "counts": evaluation.confusion},
        "counts": asdict(evaluation.counts), "mean_confidence": evaluation.mean_confidence,
        "models": evaluation.models, "disclaimer": evaluation.disclaimer,
        **{f"by_{name.removesuffix('_histogram')}": groups for name, groups in breakdowns.items()},
    }
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


# --- the summary: a list of blocks rendered twice -------------------------------------------------------------------

def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _summary(evaluation: Evaluation, breakdowns: dict) -> list[tuple]:
    counts, confidence = evaluation.counts, evaluation.mean_confidence
    present = sum(1 for m in evaluation.per_class.values() if m.support)
    blocks: list[tuple] = [("h1", "LesionFlow evaluation report")]
    if evaluation.disclaimer:
        blocks.append(("p", f"WARNING: {evaluation.disclaimer}"))
    blocks += [
        ("p", f"Balanced accuracy {_f(evaluation.balanced_accuracy)}: the mean recall over the {present} classes "
              f"present in the truth, the ISIC challenge's headline metric ({counts.evaluated} images evaluated)."),
        ("table", ["metric", "value"], [
            ["balanced accuracy", _f(evaluation.balanced_accuracy)], ["accuracy", _f(evaluation.accuracy)],
            ["macro F1", _f(evaluation.macro_f1)],
            *[[f"mean confidence, {group} predictions", _f(confidence[group])] for group in confidence]]),
        ("p", "Models: " + ", ".join(f"{name} ({n} predictions)" for name, n in evaluation.models.items()) + "."),
        ("h2", "Images"),
        ("table", ["", "count"], [[text, str(getattr(counts, field))] for field, text in (
            ("records", "records read from the prediction log"),
            ("matched", "truth images with a record (the latest upload of each is used)"),
            ("evaluated", "evaluated: latest record SUCCEEDED"),
            ("rejected", "rejected: excluded from the metrics"), ("failed", "failed: excluded from the metrics"),
            ("unmatched", "unmatched: keys with no truth row"), ("missing", "missing: truth rows with no record"),
            ("superseded", "superseded: older uploads of an image, left aside"))]),
        ("h2", "Per class"),
        ("table", ["class", "precision", "recall", "F1", "support", "predicted"],
         [[name, _f(m.precision), _f(m.recall), _f(m.f1), str(m.support), str(m.predicted)]
          for name, m in evaluation.per_class.items()]),
        ("h2", "Confusion matrix"),
        ("img", "Confusion matrix: rows truth, columns predicted", "confusion_matrix.png"),
        ("table", ["truth \\ predicted", *CLASSES],
         [[name, *map(str, row)] for name, row in zip(CLASSES, evaluation.confusion)]),
        ("h2", "Class distribution"),
        ("img", "Truth and predicted counts per class", "class_distribution.png"),
    ]
    for name, groups in breakdowns.items():
        blocks += [("h2", BREAKDOWNS[name][0]), ("img", BREAKDOWNS[name][0], f"{name}.png"),
                   ("table", ["value", "images", "correct", "accuracy"],
                    [[value, str(g["images"]), str(g["correct"]), _f(g["accuracy"])]
                     for value, g in groups.items()])]
    blocks += [("h2", "Definitions"), ("ul", [
        "Precision of a class: correct predictions of it / predictions of it; 0.0 when it was never predicted.",
        "Recall of a class: correct predictions of it / its truth images (support); 0.0 when it has no support.",
        "F1: 2PR / (P + R); 0.0 when P + R = 0.",
        "Balanced accuracy: the mean recall over the classes with support > 0.",
        "Macro F1: the mean F1 over the classes present in the truth or in the predictions.",
        "Join: a key's file name without extension is the image_id; the newest upload of each image is used; "
        "REJECTED and FAILED images are counted above but not evaluated."])]
    return blocks


def _markdown(blocks: list[tuple]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = []
    for kind, *content in blocks:
        if kind == "h1" or kind == "h2":
            lines += [("# " if kind == "h1" else "## ") + content[0], ""]
        elif kind == "p":
            lines += [content[0], ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in content[0]] + [""]
        elif kind == "img":
            lines += [f"![{content[0]}]({content[1]})", ""]
        elif kind == "table":
            header, rows = content
            lines += ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows] + [""]
    return "\n".join(lines)


def _html(blocks: list[tuple]) -> str:
    e = html.escape
    parts = []
    for kind, *content in blocks:
        if kind in ("h1", "h2", "p"):
            parts.append(f"<{kind}>{e(content[0])}</{kind}>")
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in content[0]) + "</ul>")
        elif kind == "img":
            parts.append(f'<img alt="{e(content[0])}" src="{e(content[1])}">')
        elif kind == "table":
            header, rows = content
            parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
                         + "</table>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #bbb;padding:.2em .6em;text-align:right}td:first-child{text-align:left}"
             "img{max-width:100%}")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>LesionFlow evaluation report</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


# --- charts ---------------------------------------------------------------------------------------------------------

def _confusion_chart(evaluation: Evaluation) -> Figure:
    figure = Figure(figsize=(6.4, 5.6), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(evaluation.confusion, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes, label="images")
    top = max(max(row) for row in evaluation.confusion)
    for t, row in enumerate(evaluation.confusion):
        for p, count in enumerate(row):
            axes.text(p, t, str(count), ha="center", va="center", color="white" if count > top / 2 else "black")
    axes.set_xticks(range(len(CLASSES)), CLASSES)
    axes.set_yticks(range(len(CLASSES)), CLASSES)
    axes.set(xlabel="predicted", ylabel="truth", title=f"Confusion matrix ({evaluation.counts.evaluated} images)")
    return figure


def _distribution_chart(evaluation: Evaluation) -> Figure:
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    positions = range(len(CLASSES))
    for offset, name, color, counts in ((-0.2, "truth", TRUTH, [m.support for m in evaluation.per_class.values()]),
                                        (0.2, "predicted", PREDICTED,
                                         [m.predicted for m in evaluation.per_class.values()])):
        axes.bar([x + offset for x in positions], counts, width=0.4, label=name, color=color)
    axes.set_xticks(positions, CLASSES)
    axes.set(ylabel="images", title="Class distribution: truth and predicted")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend()
    return figure


def _correct_wrong_chart(title: str, groups: dict[str, dict], horizontal: bool) -> Figure:
    figure = Figure(figsize=(7, max(3.0, 0.35 * len(groups) + 1.5) if horizontal else 4), layout="constrained")
    axes = figure.subplots()
    values = list(groups)
    correct = [groups[v]["correct"] for v in values]
    wrong = [groups[v]["images"] - groups[v]["correct"] for v in values]
    if horizontal:
        axes.barh(values, correct, color=CORRECT, label="correct")
        axes.barh(values, wrong, left=correct, color=WRONG, label="wrong")
        axes.invert_yaxis()
        axes.set_xlabel("images")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:  # a histogram: adjacent bins
        axes.bar(values, correct, width=1.0, edgecolor="white", color=CORRECT, label="correct")
        axes.bar(values, wrong, width=1.0, edgecolor="white", bottom=correct, color=WRONG, label="wrong")
        axes.set_ylabel("images")
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title)
    figure.legend(loc="outside right upper")
    return figure

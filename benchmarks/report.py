"""docs/benchmarks.md and the summary ``make bench`` prints, from the results of one run.

Every table is built from the measurements of that run (ratios from cases measured side by side in it); the targets
of issue 8 are judged here, in one place, so the document and the printed summary always agree.
"""

from benchmarks.cold_start import PACKAGES
from benchmarks.cost import DECODER, WAITER, express_billed_s
from benchmarks.end_to_end import STAGES, WINDOW, summarise
from benchmarks.preprocess import A, B, FLOOR, HAM, PHONE
from lesionflow.contracts import contract_names
from lesionflow.handover import INLINE_MAX_BYTES

EXPRESS_BOUND = 2.5  # what the four-stage split may cost at most: Express within 2.5x of the single Lambda

DOC_HEADER = """# Benchmarks

Written by `{command}` ({seconds:.0f} s); do not edit by hand: run it again. `make bench-quick` runs the same code on
small sizes with 2 rounds (a smoke test of the benchmarks, not figures to quote). The code, and why it measures what
it measures, is in `benchmarks/`.

**Machine:** {machine}

Figures are `median (min)` over repeated rounds; cases compared with each other ran interleaved in the same rounds,
in a rotating order, and every ratio is between cases of the same run. The machine has 2 cores shared with other
work: the minimum is what the code can do, the median what it usually does here.
"""


def targets(results: dict) -> list[dict]:
    """Issue 8's targets, each with what was measured and whether it is met (those whose cases ran)."""
    rows = []
    pre = results["preprocess"]["images"]
    ham = pre[HAM]["methods"] if HAM in pre else None
    phone = pre[PHONE]["methods"] if PHONE in pre else None
    if ham:
        for contract in ("tensor-npy", "tensor-json"):
            ratio = ham[A]["time"].median / ham[contract]["time"].median
            rows.append(_target(f"HAM-size preprocessing >= 20x faster than A ({contract})", f"{ratio:.1f}x",
                                ratio >= 20))
        ratio = ham[B]["time"].median / ham["hf-image-classification"]["time"].median
        rows.append(_target("HAM-size preprocessing >= 1.5x faster than B (hf-image-classification)",
                            f"{ratio:.1f}x", ratio >= 1.5))
    if phone:
        for contract in ("hf-image-classification", "tensor-npy"):
            ratio = phone[contract]["time"].median / phone[FLOOR]["time"].median
            rows.append(_target(f"4000x3000 JPEG within 1.5x of the floor ({contract})", f"{ratio:.2f}x",
                                ratio <= 1.5))
            if "rss_mb" in phone[contract]:
                peak = phone[contract]["rss_mb"]
                rows.append(_target(f"4000x3000 JPEG peak memory under 10 MB ({contract})", f"{peak:.1f} MB",
                                    peak < 10))
    if ham:
        for contract in ("tensor-npy", "tensor-json"):
            ratio = ham[A]["bytes"] / ham[contract]["bytes"]
            rows.append(_target(f"tensor payload >= 10x smaller than A's ({contract})", f"{ratio:.1f}x",
                                ratio >= 10))
    if results["preprocess"].get("largest"):
        worst = worst_accepted(results["preprocess"]["largest"])
        rows.append(_target(f"peak memory of the worst accepted image under Preprocess's MemorySize, "
                            f"{worst['memory_size_mb']} MB (issue 15)",
                            f"{worst['peak_mb']:.0f} MB, {worst['image']}: margin {worst['margin_mb']:.0f} MB "
                            f"({worst['margin_share']:.0%})", worst["margin_mb"] > 0))
    cold = results["cold_start"]
    for name, limit in cold["targets_ms"].items():
        if name in cold["cases"]:
            total = cold["cases"][name]["total"].median * 1000
            rows.append(_target(f"cold start of {name} under {limit} ms", f"{total:.0f} ms", total < limit))
    runs = results["end_to_end"]
    if len(runs) > 1:
        per_image = [r["wall_seconds"] / r["uploads"] for r in runs]
        growth = per_image[-1] / per_image[0]
        rows.append(_target(f"throughput roughly linear from {runs[0]['uploads']} to {runs[-1]['uploads']} uploads "
                            f"(time per image within 1.5x)", f"{growth:.2f}x", growth <= 1.5))
    cost = results["cost"]
    ratio = cost["express_vs_reference"]
    measured = f"{ratio:.2f}x ({_durations_label(cost)}; contended: {cost['contended']['express_vs_reference']:.2f}x)"
    rows.append(_target("Express within 2x of the single-Lambda reference (cost per image)", measured, ratio <= 2))
    rows.append(_target(f"Express within {EXPRESS_BOUND}x of the single-Lambda reference with four stages (the "
                        f"split's bound)", measured, ratio <= EXPRESS_BOUND))
    return rows


def _durations_label(cost: dict) -> str:
    """What the headline's Lambda time is: alone (the timing run) or, for a run without one, contended."""
    return "Lambda time alone" if cost["durations"] == "alone" else "no timing run: contended Lambda time"


def _target(name: str, measured: str, met: bool) -> dict:
    return {"target": name, "measured": measured, "met": met}


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def preprocess_section(pre: dict) -> str:
    parts = ["## 1. Preprocessing\n",
             "The code the pipeline runs (`lesionflow.preprocessing.model_input`, one row per model contract) "
             "against system A's and system B's ways and the decode floor (see `benchmarks/preprocess.py`). "
             f"Time: {pre['rounds']} rounds side by side, one process. Peak memory: a fresh process per case, growth "
             "of the resident set's high-water mark (VmHWM, reset before the call) over the call; tracemalloc sees "
             "only Python's own allocations. The input bytes are in memory before either is measured. "
             "csv-pixels makes a 28x28 input: it can beat the 224x224 floor.\n"]
    for image_name, image in pre["images"].items():
        methods = image["methods"]
        parts.append(f"### {image_name} ({image['file_bytes'] / 1024:,.0f} KiB)\n")
        if methods[FLOOR]["time"] is None:
            rows = [[name, _mb(m.get("rss_mb")), _mb(m.get("traced_mb"))] for name, m in methods.items()]
            parts.append("The largest image the default `MaxImagePixels` admits, in one flat colour (a small file "
                         "that decodes to 159 MB). A PNG has no reduced-scale decode, and Pillow's `reduce()` "
                         "premultiplies an RGBA image's alpha in a full-size copy first, so the pipeline peaks near "
                         "twice the decoded bitmap.\n")
            parts.append(table(["method", "peak RSS growth MB", "tracemalloc peak MB"], rows) + "\n")
            continue
        a, b, floor = (methods[name]["time"].median for name in (A, B, FLOOR))
        rows = []
        for name, m in methods.items():
            t = m["time"]
            rows.append([name, t.ms(), f"{a / t.median:.1f}x", f"{b / t.median:.2f}x", f"{t.median / floor:.2f}x",
                         f"{m['bytes']:,}" if m["bytes"] else "", _mb(m.get("rss_mb")), _mb(m.get("traced_mb"))])
        parts.append(table(["method", "ms median (min)", "faster than A", "faster than B", "x floor",
                            "payload bytes", "peak RSS growth MB", "tracemalloc peak MB"], rows) + "\n")
    if pre.get("largest"):
        parts.append(largest_section(pre["largest"]))
    return "\n".join(parts)


def worst_accepted(largest: dict) -> dict:
    """The largest accepted image and contract with the highest peak RSS, and its margin to Preprocess's MemorySize."""
    name, contract, measured = max(((name, contract, m) for name, case in largest["cases"].items()
                                    for contract, m in case["contracts"].items()), key=lambda row: row[2]["peak_mb"])
    size = largest["memory_size_mb"]
    return {"image": name, "contract": contract, "peak_mb": measured["peak_mb"], "growth_mb": measured["growth_mb"],
            "memory_size_mb": size, "margin_mb": size - measured["peak_mb"],
            "margin_share": (size - measured["peak_mb"]) / size}


def largest_section(largest: dict) -> str:
    """Peak memory of the largest images validation accepts against Preprocess's MemorySize: every image with the
    template's default contract, the worst few with every contract."""
    size, limits, default = largest["memory_size_mb"], largest["limits"], largest["default_contract"]

    def margin(peak: float) -> str:
        return f"{size - peak:,.0f} ({(size - peak) / size:.0%})" if peak <= size else f"**{size - peak:,.0f}**"

    rows, by_contract = [], []
    for name, case in largest["cases"].items():
        measured = case["contracts"]
        failed = sorted({m["outcome"] for m in measured.values() if m["outcome"] != "model input"})
        rows.append([name, case["mode"], f"{case['file_bytes'] / 1024:,.0f}", _mb(measured[default]["before_mb"]),
                     _mb(measured[default]["growth_mb"]), _mb(measured[default]["peak_mb"]),
                     margin(measured[default]["peak_mb"]), "; ".join(failed) or "yes"])
        if len(measured) > 1:
            by_contract.append([name, *(f"{_mb(m['peak_mb'])}" for m in measured.values()),
                                margin(max(m["peak_mb"] for m in measured.values()))])
    worst = worst_accepted(largest)
    spread = max(m["peak_mb"] for m in largest["cases"][worst["image"]]["contracts"].values()) - min(
        m["peak_mb"] for m in largest["cases"][worst["image"]]["contracts"].values())
    contracts = list(next((case["contracts"] for case in largest["cases"].values() if len(case["contracts"]) > 1),
                          {default: None}))
    parts = [
        "### The largest images validation accepts (memory only)\n",
        f"Each the most pixels the default limits admit (`ImageLimits`: {limits['max_pixels']:,} pixels, "
        f"{limits['max_bytes'] / 2**20:.0f} MiB, {limits['min_side']} pixels on the shorter side: the template's "
        "`MaxImagePixels`, `MaxImageBytes`, `MinImageSide`), in every kind of file Pillow decodes differently, and "
        "each checked to pass validation first (`largest_accepted` in `benchmarks/images.py`). Flat colour, so every "
        "file is small (the byte limit never binds). One fresh process per image and contract, set up as "
        "Preprocess's Lambda is: its `app.py` imported with the template's environment and the first invocation's "
        "boto3 client, contract and Pillow plugins made (the RSS before the call), then the upload's bytes read and "
        "`model_input` called as Preprocess calls it. Peak RSS is the whole process's high-water mark (VmHWM), which "
        "is what Lambda's Max Memory Used counts, less the few MB of Lambda's own runtime client; growth is the part "
        "the call added. Margin: Preprocess's MemorySize "
        f"({size} MB in template.yaml) minus the peak. Every image with the template's default contract ({default}); "
        "the worst ones again with every contract below (a contract changes only the size the image is reduced "
        "toward and how the small result is encoded).\n",
        table(["image", "Pillow mode", "file KiB", "RSS before MB", "growth MB", "peak RSS MB", "margin MB",
               "preprocessed"], rows),
        "",
    ]
    if by_contract:
        parts += [table(["image (peak RSS MB)", *contracts, "margin MB (worst)"], by_contract), ""]
    parts.append(
        f"Worst: {worst['image']}, {worst['peak_mb']:.0f} MB peak with {worst['contract']} (every contract measured "
        f"within {spread:.1f} MB of it; {worst['growth_mb']:.0f} MB over the call): "
        + (f"{worst['margin_mb']:.0f} MB ({worst['margin_share']:.0%}) below Preprocess's {size} MB.\n"
           if worst["margin_mb"] >= 0 else
           f"**{-worst['margin_mb']:.0f} MB over** Preprocess's {size} MB: on Lambda that upload would stop the "
           "function (Runtime.OutOfMemory) instead of being preprocessed.\n"))
    return "\n".join(parts)


def cold_start_section(cold: dict) -> str:
    cases = cold["cases"]
    rows = []
    for name in cold["functions"]:
        if name not in cases:
            continue
        real, naive, limit = cases[name], cases.get(f"{name} (naive)"), cold["targets_ms"].get(name)
        rows.append([name, real["import"].ms(), real["setup"].ms(), real["total"].ms(),
                     naive["total"].ms() if naive else "",
                     f"{naive['total'].median / real['total'].median:.2f}x" if naive else "",
                     f"< {limit}" if limit else "none (failure path)",
                     "" if not limit else "met" if real["total"].median * 1000 < limit else "**not met**"])
    parts = [
        "## 2. Cold start\n",
        f"Each function's `app.py` imported in a fresh Python {cold['python']} with the environment the template "
        "gives it, then the setup its first invocation does (boto3 clients, the model contract, Pillow's plugins); "
        "the naive twin imports everything at module level (boto3, numpy, Pillow, pydantic, Powertools with "
        f"`Tracer()`) before the same handler and setup. ms, median (min) of {cold['rounds']} fresh processes per "
        "case, interleaved; measured inside the process, so the interpreter's own start comes on top "
        + (f"({cases['interpreter only']['wall'].ms()} ms wall for an empty script here)" if "interpreter only" in
           cases else "") + ", and on Lambda so does the runtime's.\n",
        table(["function", "import", "setup", "total", "naive total", "naive / real", "target ms", ""], rows),
        "",
    ]
    if "observability: Logger, Metrics" in cases and "observability + Tracer()" in cases:
        plain, traced = cases["observability: Logger, Metrics"]["total"], cases["observability + Tracer()"]["total"]
        parts.append(f"Powertools' Tracer: the shared observability module imports in {plain.ms()} ms, with "
                     f"`Tracer()` in {traced.ms()} ms: **{traced.median / plain.median:.1f}x** (why the handlers "
                     "do not use it; README, Traces).\n")
    if cold["breakdown"]:
        breakdown = [[name] + [f"{spent[p]:.0f}" if p in spent else "" for p in PACKAGES]
                     for name, spent in cold["breakdown"].items()]
        parts += ["Where the import time goes (`python -X importtime`, cumulative ms where each package is first "
                  "imported; nested imports overlap, so a row does not add up):\n",
                  table(["function", *PACKAGES], breakdown), ""]
    return "\n".join(parts)


def end_to_end_section(runs: list[dict], s3_run: dict | None = None) -> str:
    summaries = [summarise(run) for run in runs]
    base = summaries[0]["wall_seconds"] / summaries[0]["uploads"]

    def row(s: dict, versus: str) -> list:
        per_image = s["wall_seconds"] / s["uploads"]
        return [s["uploads"], s["contract"], ", ".join(f"{k} {v}" for k, v in sorted(s["statuses"].items())),
                f"{s['wall_seconds']:.1f}", f"{s['images_per_second']:.2f}", f"{per_image * 1000:.0f}", versus,
                _p(s["end_to_end_ms"], seconds=True), *[_p(s["stage_ms"][stage]) for stage in STAGES],
                _p(s["endpoint_ms"])]
    rows = [row(s, f"{s['wall_seconds'] / s['uploads'] / base:.2f}x") for s in summaries]
    if s3_run:
        rows.append(row(summarise(s3_run), "(other contract)"))
    largest = summaries[-1]
    timing = largest.get("timing") or {"handler_ms": {}, "uploads": 0}

    def alone(name: str) -> list[str]:
        values = timing["handler_ms"].get(name)
        return [values["n"], f"{values['p50']:.1f}", f"{values['p95']:.1f}"] if values else ["", "", ""]
    handlers = [[name.removesuffix("Function"), runs[-1]["memory_mb"][name], values["n"], f"{values['p50']:.1f}",
                 f"{values['p95']:.1f}", *alone(name)] for name, values in largest["handler_ms"].items()]
    if timing.get("endpoint_ms") and largest["endpoint_ms"]:
        e, a = largest["endpoint_ms"], timing["endpoint_ms"]
        handlers.append(["(endpoint answer, at the server)", "", e["n"], f"{e['p50']:.1f}", f"{e['p95']:.1f}",
                         a["n"], f"{a['p50']:.1f}", f"{a['p95']:.1f}"])
    stage_metrics = ", ".join(f"`{stage}Latency`" for stage in STAGES)
    states = runs[-1]["executions"].get("state_names", {})
    return "\n".join([
        "## 3. End to end on the local stack\n",
        "`LocalStackServer` in-process (moto's S3, SQS, DynamoDB and Step Functions, the real handlers, the ONNX "
        f"demo model on the template's default `{summaries[-1]['contract']}` contract), one fresh process per size. "
        f"HAM-size JPEGs are put 4 at a time, never more than {WINDOW} without a record yet (a closed loop: an "
        "unbounded burst measures moto's thread contention instead, see below), and records are read back through "
        "the `by-status` index. Images per second: records over the span from the first S3 event to the last record. "
        "End to end: `created_at` - `uploaded_at` of each record, so it includes the bounded wait in the queue and the "
        f"dispatcher's 1 s batching window. Stages: the handlers' own EMF {stage_metrics} (p50 / p95, ms); endpoint: "
        "the SageMaker runtime's answer time, seen at the server."
        + (f" The last row is a separate run with `ModelContract={s3_run['contract']}`, whose input is handed from "
           "Preprocess to InvokeModel through S3 (section 4)." if s3_run else "") + "\n",
        table(["uploads", "contract", "records", "wall s", "images/s", "ms per image", "vs smallest",
               "end to end p50 / p95 s", *STAGES, "endpoint"], rows),
        "",
        f"States entered per execution in the {largest['uploads']}-upload run (from the execution histories): "
        + ", ".join(f"{name} {count:.2f}" for name, count in states.items()) + ".\n",
        f"Lambda handler durations (ms; what GB-seconds are billed on, at the MemorySize the template gives each "
        f"function), in the {largest['uploads']}-upload run (contended: up to {WINDOW} executions in flight in one "
        "process; the dispatcher's invocations carry up to 10 messages) and in its timing run (alone: "
        f"{timing['uploads']} uploads one at a time after the warm-up, each waited for to its record before the "
        "next, so that no other image's work shares the interpreter; 1 message per dispatcher invocation). Section "
        "4 prices the timing run's medians:\n",
        table(["function", "MB", "invocations (contended)", "p50", "p95", "invocations (alone)", "p50", "p95"],
              handlers),
        "",
        f"Local execution time (StartExecution to the end, p50 / p95): {_p(largest['execution_ms'], seconds=True)} "
        "s. On the local stack, handlers take turns (one process has one environment) and moto's interpreter "
        "builds a boto3 client for every task, so this is not what Express would bill; the cost model uses the "
        "Lambda time measured alone (the timing run) plus a fixed allowance per task instead.\n",
    ])


def _cost_table(designs: dict) -> str:
    items = []
    for lines in designs.values():
        items += [line["item"] for line in lines if line["item"] not in items]
    by_design = {name: {line["item"]: line for line in lines} for name, lines in designs.items()}
    rows = []
    for item in items:
        row = [item]
        for name in designs:
            line = by_design[name].get(item)
            row += [f"{line['per_image']:.4g}", f"{line['usd_per_million']:.2f}"] if line else ["", ""]
        rows.append(row)
    totals = {name: sum(line["usd_per_million"] for line in lines) for name, lines in designs.items()}
    rows.append(["**total**"] + sum((["", f"**{totals[name]:.2f}**"] for name in designs), []))
    header = ["item"] + sum(([f"{name}: per image", "$ / M"] for name in designs), [])
    return table(header, rows)


def _largest_lines(lines: list[dict], top: int = 3) -> str:
    ranked = sorted(lines, key=lambda line: line["usd_per_million"], reverse=True)[:top]
    return ", ".join(f"{line['item']} ${line['usd_per_million']:.2f}" for line in ranked)


def durations_section(cost: dict) -> str:
    """The headline beside the same counts priced with the counted run's contended Lambda time."""
    reference = "single Lambda (system B)"
    rows = []
    for label, priced in ((f"alone: the timing run's medians ({cost['counts']['timing_uploads']} uploads one at a "
                           "time), **the headline**", cost),
                          (f"contended: the {cost['counts']['images']}-upload run's own (up to {WINDOW} in flight)",
                           cost["contended"])):
        designs, c = priced["designs"], priced["counts"]
        gb = next(line for line in designs["LesionFlow EXPRESS"] if line["item"].startswith("Lambda duration"))
        rows.append([label, f"{gb['usd_per_million']:.2f}",
                     f"{c['express_ms']:.0f} (billed {express_billed_s(c['express_ms']):.1f} s)",
                     f"{c['endpoint_ms_p50']:.1f}",
                     *(f"{priced['totals'][name]:.2f}" for name in ("LesionFlow STANDARD", "LesionFlow EXPRESS",
                                                                    reference)),
                     f"{priced['standard_vs_reference']:.1f}x", f"**{priced['express_vs_reference']:.2f}x**"])
    return "\n".join([
        "Lambda time measured alone and under contention, the same counts otherwise (the dispatcher alone is priced "
        "per message, as if it never batched: conservative):\n",
        table(["Lambda durations", "LesionFlow Lambda GB-s $ / M", "Express ms modelled", "endpoint call ms (p50)",
               "Standard $ / M", "Express $ / M", "single Lambda $ / M", "Standard / reference",
               "Express / reference"], rows),
        "",
        "The alone-timed figures are the like-for-like ones: on Lambda every invocation has its own CPU, and the "
        "reference's time (B's preprocessing, the endpoint's answer) is measured the same way, with nothing else "
        "running. The contended figures are an upper bound: with up to "
        f"{WINDOW} executions in flight in one Python process, every handler waits for the one interpreter lock "
        "behind moto's threads and the other images' work, which no Lambda invocation would be billed for.\n",
    ])


def handover_section(cost: dict, pre: dict) -> str:
    """Which contract's input takes which path (sizes measured in section 1), and what the S3 path adds."""
    contracts = [name for name in contract_names() if name in next(iter(pre["images"].values()))["methods"]]
    measured = [name for name, image in pre["images"].items() if image["methods"][FLOOR]["time"] is not None]
    rows = []
    for contract in contracts:
        sizes = [pre["images"][name]["methods"][contract]["bytes"] for name in measured]
        largest = max(sizes)
        rows.append([contract] + [f"{size:,}" for size in sizes]
                    + ["inline (in the state, base64)" if largest <= INLINE_MAX_BYTES else "S3 (`model-inputs/`)"])
    parts = [
        "### The model input's hand-over: inline or through S3\n",
        f"Preprocess hands InvokeModel its input inline in the state when it is at most {INLINE_MAX_BYTES:,} bytes "
        "(`lesionflow.handover.INLINE_MAX_BYTES`; base64 makes it 4/3 larger in the state), otherwise as one S3 object "
        "that InvokeModel reads and deletes (its version) once the endpoint has answered. The input sizes per "
        "contract, "
        "in bytes, as section 1 measured them for each image:\n",
        table(["contract", *measured, "path"], rows),
        "",
    ]
    s3 = cost.get("s3_path")
    if s3:
        inline_counts, s3_counts = cost["counts"], s3["counts"]
        h = s3_counts["handover"]
        both = {f"{name} (inline, {inline_counts['contract']})": cost["designs"][name]
                for name in ("LesionFlow STANDARD", "LesionFlow EXPRESS")}
        both |= {f"{name} (S3, {s3_counts['contract']})": s3["designs"][name]
                 for name in ("LesionFlow STANDARD", "LesionFlow EXPRESS")}
        handover_usd = _handover_usd(cost)
        parts += [
            f"Both paths measured: the {inline_counts['images']}-image run of section 3 (inline: "
            f"{inline_counts['handover']['put']:.0f} S3 requests under the hand-over prefix) and the "
            f"{s3_counts['images']}-image `{s3_counts['contract']}` run (S3: {h['put']:.2f} PUT, {h['get']:.2f} GET, "
            f"{h['delete']:.2f} DELETE per image under `{cost['template']['handover_prefix']}`), priced line by line. "
            f"The S3 path's requests cost **${handover_usd:.2f} per million** images (the DELETE is free); the rest "
            "of the difference between the runs is the other contract's preprocessing and the run's noise.\n",
            _cost_table(both),
            "",
        ]
    return "\n".join(parts)


def _unsplit_ratio(cost: dict) -> float:
    """Express over the reference for the same work in one function (the split's net Express saving added back)."""
    net = cost["latencies"]["measured"]["split"][-1]["express"]
    return (cost["totals"]["LesionFlow EXPRESS"] - net) / cost["totals"]["single Lambda (system B)"]


def _handover_usd(cost: dict) -> float | None:
    """The S3 hand-over's requests per million images, as the S3-path run measured them (None: no such run)."""
    if "s3_path" not in cost:
        return None
    return next(r for r in cost["s3_path"]["split"] if r["item"].startswith("the hand-over"))["standard"]


def split_section(cost: dict) -> str:
    """What splitting Infer into Preprocess and InvokeModel costs and saves, at both endpoint latencies."""
    lat = cost["latencies"]
    c = cost["counts"]
    measured, assumed = lat["measured"], lat["assumed"]
    rows = []
    s3_usd = _handover_usd(cost)
    for line, other in zip(measured["split"], assumed["split"]):
        item = line["item"] + (f" (measured: {line['detail']}; assumed: {other['detail']})" if "detail" in line else "")
        if line["item"].startswith("the hand-over") and s3_usd is not None:
            item += f"; the S3 path ({cost['s3_path']['counts']['contract']}) adds {s3_usd:.2f}"
        rows.append([item, f"{line['standard']:+.2f}", f"{line['express']:+.2f}", f"{other['standard']:+.2f}",
                     f"{other['express']:+.2f}"])
    retries = [[m["attempt"] + ("" if m["wait_ms"] == a["wait_ms"] else
                                f" ({m['wait_ms']:.0f} ms measured, {a['wait_ms']:.0f} ms assumed)"),
                f"{m['merged']:.2f}", f"{m['split']:.2f}", f"{m['saved']:.2f}",
                f"{a['merged']:.2f}", f"{a['split']:.2f}", f"{a['saved']:.2f}"]
               for m, a in zip(measured["retries"], assumed["retries"])]
    memory = [[f"{m['memory_mb']}" + (" (template default)" if m["default"] else ""), f"{m['usd_per_million']:.2f}",
               f"{a['usd_per_million']:.2f}"] for m, a in zip(measured["memory"], assumed["memory"])]
    reference = "single Lambda (system B)"
    totals = [[label, f"{lat[key]['endpoint_ms']:.0f}"] + [f"{lat[key]['totals'][name]:.2f}" for name in
                                                          ("LesionFlow STANDARD", "LesionFlow EXPRESS", reference)]
              + [f"{lat[key]['standard_vs_reference']:.1f}x", f"**{lat[key]['express_vs_reference']:.2f}x**"]
              for key, label in (("measured", "local demo model (measured)"),
                                 ("assumed", "ViT-base on the default endpoint (**assumed**)"))]
    decoder, waiter = c["memory_mb"][DECODER], c["memory_mb"][WAITER]
    return "\n".join([
        "### What the four stages cost and save\n",
        f"The old Infer function decoded and waited on the endpoint at {decoder} MB; now Preprocess decodes at "
        f"{decoder} MB and InvokeModel waits at {waiter} MB (`InvokeModelMemorySize`). Priced against the same work "
        f"in one function at {decoder} MB, from the counts of the {c['images']}-image run, at the local endpoint's "
        f"measured latency ({measured['endpoint_ms']:.0f} ms, p50) and at the **assumed** latency of a real ViT-base "
        f"on the default endpoint ({assumed['endpoint_ms']:.0f} ms: `endpoint_ms_assumed` in `prices.json`, with its "
        "source; not measured here). $ per million images; negative: the split saves.\n",
        table(["", "Standard (measured)", "Express (measured)", "Standard (assumed)", "Express (assumed)"], rows),
        "",
        "When the endpoint call fails and is retried (throttling, a cold model, a timeout), the old Infer read the "
        f"upload again, decoded it again and waited again at {decoder} MB; InvokeModel only waits again, at "
        f"{waiter} MB. $ per million retried calls (the retry's transition and invocation are the same in both):\n",
        table(["failed attempt", "one function (measured)", "InvokeModel (measured)", "saved (measured)",
               "one function (assumed)", "InvokeModel (assumed)", "saved (assumed)"], retries),
        "",
        "InvokeModel's memory (`InvokeModelMemorySize`), its GB-seconds per million images at its measured time "
        "(it mostly waits, so its time should barely change with memory, which this run does not measure; before "
        "going to 128 MB, check its peak memory with boto3 and Powertools loaded):\n",
        table(["MB", "$ / M (measured latency)", "$ / M (assumed latency)"], memory),
        "",
        "Cost per million images at each latency (the reference waits for the same endpoint at "
        f"{cost['designs'][reference][1]['note'].rsplit(' at ', 1)[-1]}, so a slower endpoint costs it more than "
        "InvokeModel):\n",
        table(["endpoint latency", "ms", "Standard $ / M", "Express $ / M", "single Lambda $ / M",
               "Standard / reference", "Express / reference"], totals),
        "",
    ])


def head_sentence(cost: dict) -> str:
    """What asking S3 about each notified upload costs (issue 15: the identity comes from S3, not the message)."""
    head = cost.get("dispatch_head")
    if not head:
        return ""
    return (f"The dispatcher's HEAD of each notified version (its size, ETag and `LastModified` from S3, never from "
            f"the message): {head['heads_per_image']:.2f} `HeadObject` per image on `{head['prefix']}` keys in the "
            f"counted run (duplicate deliveries included), billed as GETs: ${head['usd_per_million']:.2f} per million "
            f"images, already in the S3 GET line above; its time is inside the dispatcher's "
            f"{head['dispatch_ms_per_image']:.1f} ms per image.\n")


def cost_section(cost: dict, prices: dict, pre: dict) -> str:
    designs = cost["designs"]
    notes, seen = [], set()
    for name, lines in designs.items():
        for line in lines:
            if line["note"] and (line["item"], line["note"]) not in seen:
                seen.add((line["item"], line["note"]))
                notes.append([name, line["item"], line["note"]])
    price_rows = [[key, f"{value['usd']:.10g}", value["unit"], value["confirmed"]]
                  for key, value in prices["prices"].items()]
    wins = [[w["change"], w["saves"], f"{w['standard']:.2f}", f"{w['express']:.2f}"] for w in cost["cheap_wins"]]
    c = cost["counts"]
    kms = cost["kms_state_machine"]
    return "\n".join([
        "## 4. Cost per million images\n",
        f"Counts measured in the {c['images']}-image run above (per image; `{c['contract']}`, so the model input "
        f"travels inline), times the {cost['region']} list prices in `benchmarks/prices.json` (read "
        f"{cost['read_on']}; sources and how sure each is below), without the SageMaker endpoint, free tiers and "
        "fixed monthly charges (the KMS key, $1 a month; the secret; alarms; the dashboard). The client's own PUT of "
        "the upload is left out of every design. Memory sizes are the template's (`InvokeModelMemorySize` at its "
        "default).\n",
        _cost_table(designs),
        "",
        f"Express versus the single Lambda: **{cost['express_vs_reference']:.2f}x** with {_durations_label(cost)} "
        f"(contended: {cost['contended']['express_vs_reference']:.2f}x; the split's bound: {EXPRESS_BOUND}x; issue 8 "
        f"asks for 2x); Standard: **{cost['standard_vs_reference']:.0f}x** "
        f"(contended: {cost['contended']['standard_vs_reference']:.0f}x). "
        f"Without the split (the same work in one function at {c['memory_mb'][DECODER]} MB, priced from the same "
        f"counts below) Express would be {_unsplit_ratio(cost):.2f}x: the split "
        f"{'lowers' if _unsplit_ratio(cost) > cost['express_vs_reference'] else 'raises'} the ratio. Express's "
        f"largest lines: {_largest_lines(designs['LesionFlow EXPRESS'])}.\n",
        durations_section(cost),
        "What each line counts:\n",
        table(["design", "item", "measured"], notes),
        "",
        f"KMS and the state machine: its data (where a small model input now travels) is encrypted with the stack's "
        f"data key, and Step Functions reuses a data key for `KmsDataKeyReusePeriodSeconds` = {kms['reuse_seconds']} s "
        f"(template.yaml): KMS calls per data key per {kms['reuse_seconds'] // 60} minutes, not per execution, about "
        f"{kms['calls_per_month']:,.0f} a month of steady use, ${kms['usd_per_month']:.2f} a month whatever the number "
        "of images: negligible, and left out of the per-image lines like the key's own $1.\n",
        head_sentence(cost),
        handover_section(cost, pre),
        split_section(cost),
        "### Cheap wins\n",
        "Taken, from what earlier runs of this benchmark priced: no S3 object between Preprocess and InvokeModel for "
        "the contracts whose input fits in the state (the inline path above"
        + (f": the S3 path's requests, ${_handover_usd(cost):.2f} per million, would be "
           f"{_handover_usd(cost) / cost['totals']['LesionFlow EXPRESS']:.0%} more on Express"
           if _handover_usd(cost) is not None else "")
        + "), with the state machine's data encrypted with the stack's key so that it may carry that input; and the "
        "by-label and by-review indexes holding keys, not whole records.\n",
        "Still open, each priced per million images with the same counts and prices:\n",
        table(["change", "saves", "$ / M (Standard)", "$ / M (Express)"], wins),
        "",
        f"Express with every change above except the optional prediction JSON: about "
        f"${cost['express_with_wins']:.2f} per million, {cost['express_with_wins_vs_reference']:.2f}x the single "
        "Lambda (the savings are treated as additive, which they nearly are).\n",
        "### Prices\n",
        f"{prices['about']}\n",
        table(["price", "USD", "unit", "confirmed"], price_rows),
        "",
        "Assumptions (also in `prices.json`): " + "; ".join(
            f"{key} = {value} ({prices['assumptions_why'][key]})" for key, value in prices["assumptions"].items()),
        "",
    ])


def document(results: dict, prices: dict) -> str:
    rows = [[t["target"], t["measured"], "met" if t["met"] else "**not met**"] for t in targets(results)]
    return "\n".join([
        DOC_HEADER.format(command="make bench-quick" if results["quick"] else "make bench",
                          seconds=results["seconds"], machine=results["machine"].line()),
        "## Targets (issue 8)\n",
        table(["target", "measured", ""], rows),
        "",
        preprocess_section(results["preprocess"]),
        cold_start_section(results["cold_start"]),
        end_to_end_section(results["end_to_end"], results.get("end_to_end_s3")),
        cost_section(results["cost"], prices, results["preprocess"]),
        METHOD_NOTES,
    ])


METHOD_NOTES = """## What these numbers do not show

- The machine is x86_64; the functions run on arm64 (Graviton) in Lambda, where a fraction of a vCPU comes with
  each MemorySize. Ratios carry over better than milliseconds.
- The local stack runs every handler in one process, one at a time, next to moto: its throughput is a property of
  this laptop-sized stack, not of Lambda, which runs the stages of many images at once. It is here to show that
  nothing grows worse than linearly with the number of uploads, and to count requests. Most of its time per image
  is moto's, not LesionFlow's: it parses the state machine's ASL for every execution, builds a boto3 client for
  every task, and looks its backends up on disk for every request. Fed an unbounded burst, hundreds of execution
  threads fight over one interpreter lock and the rate falls with the size of the burst (on 2026-11-23: 5.1
  images/s for 100 uploads at once, 2.5 for 1,000), which is why the runs keep a bounded number in flight.
- Lambda durations are the local handlers', on x86_64 next to moto. The cost model's are measured alone (one image
  in the stack at a time), but even then the dispatcher's includes moto's StartExecution, which parses the state
  machine's ASL for every execution; on AWS a start takes tens of milliseconds. The counted runs' durations are
  inflated further by one process's interpreter lock (section 4 shows both). The GB-seconds lines are small
  either way.
- KMS requests are not observable locally (moto does not call KMS for SSE); their line is an estimate.
- Lambda's INIT phase, cold starts and provisioned concurrency are left out of the GB-seconds.
"""


def summary(results: dict) -> str:
    """What ``make bench`` prints: the targets, the throughput and the cost totals."""
    lines = [f"LesionFlow benchmarks ({'quick' if results['quick'] else 'full'}): {results['machine'].line()}"]
    for t in targets(results):
        lines.append(f"  [{'met' if t['met'] else 'NOT MET'}] {t['target']}: {t['measured']}")
    for run in results["end_to_end"]:
        s = summarise(run)
        lines.append(f"  end to end: {s['uploads']} uploads in {s['wall_seconds']:.1f} s, "
                     f"{s['images_per_second']:.2f} images/s, end to end p50 {s['end_to_end_ms']['p50'] / 1000:.1f} s")
    cost = results["cost"]
    lines.append(f"  cost per million images (no endpoint; {_durations_label(cost)}): " + ", ".join(
        f"{name} ${total:.2f}" for name, total in cost["totals"].items()))
    assumed = cost["latencies"]["assumed"]
    contended = cost["contended"]
    lines.append(f"  with contended Lambda time (upper bound): " + ", ".join(
        f"{name} ${total:.2f}" for name, total in contended["totals"].items()))
    lines.append(f"  Express / single Lambda: {cost['express_vs_reference']:.2f}x ({_durations_label(cost)}; "
                 f"contended {contended['express_vs_reference']:.2f}x; bound {EXPRESS_BOUND}x), "
                 f"Standard / single Lambda: {cost['standard_vs_reference']:.1f}x "
                 f"(contended {contended['standard_vs_reference']:.1f}x); with an assumed "
                 f"{assumed['endpoint_ms']:.0f} ms endpoint: {assumed['express_vs_reference']:.2f}x and "
                 f"{assumed['standard_vs_reference']:.1f}x")
    if "s3_path" in cost:
        lines.append("  S3 hand-over path (" + cost["s3_path"]["counts"]["contract"] + "): " + ", ".join(
            f"{name} ${total:.2f}" for name, total in cost["s3_path"]["totals"].items() if "LesionFlow" in name))
    lines.append(f"  written: {results['doc']} (in {results['seconds']:.0f} s)")
    return "\n".join(lines)


def _p(values: dict | None, seconds: bool = False) -> str:
    if not values:
        return ""
    scale = 1000 if seconds else 1
    return f"{values['p50'] / scale:.1f} / {values['p95'] / scale:.1f}"


def _mb(value) -> str:
    return "" if value is None else f"{value:.1f}"


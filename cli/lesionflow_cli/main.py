"""lesionflow: classify dermoscopy images with a LesionFlow stack, deployed or local.

The stack is found by name (default: samconfig.toml's, as `sam deploy` uses it) through its CloudFormation outputs,
with the usual AWS region and credentials; or --local for the stack `lesionflow local up` runs (--endpoint-url for
one at another address).
"""

import argparse
import os
import sys
import time
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from lesionflow.records import Status, utc_now
from lesionflow_cli import predictions
from lesionflow_cli.stack import CommandError, find_stack
from lesionflow_local import cli as local_commands

EXAMPLES = """examples:
  lesionflow check
  lesionflow --local check
  lesionflow --local upload samples/ --prefix clinic-7 --wait
  lesionflow predictions list --label mel --since 7d
  lesionflow predictions list --needs-review --json > review.jsonl
  lesionflow predictions get uploads/clinic-7/lesion-0001.jpg --all-versions
  lesionflow watch
  lesionflow backfill --prefix ham10000/
  lesionflow redrive
  lesionflow report --truth HAM10000_metadata.csv --out report/
"""


CHECK_HELP = """\
The post-deploy check: one line per check, ok / warn / FAIL / skipped (local), what was found and what to do.
Exits 1 when anything would stop uploads from being processed (a FAIL), 0 otherwise (warnings included).

  stack               FAIL unless CREATE_/UPDATE_/IMPORT_COMPLETE or UPDATE_COMPLETE_CLEANUP_IN_PROGRESS;
                      warn on UPDATE_ROLLBACK_COMPLETE (also while cleaning up): it runs its previous template
  endpoint            FAIL unless the stack's EndpointName exists and is InService (warn while Updating)
  answer              FAIL unless the endpoint answers one generated image (no patient data) with valid scores
                      through the stack's ModelContract; a cold start is retried once with a 60 s timeout
  dead letters        FAIL when the dead-letter queue holds messages (then: lesionflow redrive)
  execution data      warn unless the state machine's data is encrypted with the stack's data key and these
                      credentials can decrypt it (the stack's ExecutionReaderPolicyArn output grants that)
  lambda concurrency  FAIL when the account's unreserved Lambda concurrency is under DispatchMaxConcurrency
                      + 3 x the endpoint's concurrency (serverless MaxConcurrency, else DispatchMaxConcurrency):
                      the dispatchers plus a Validate, a Preprocess and an InvokeModel per invocation the
                      endpoint takes at once
  serverless quota    quota Q (L-96300102); this endpoint M; all serverless endpoints in the region T:
                      FAIL when T > Q (creating or updating the endpoint with M is refused), warn when T = Q
                      (no headroom to raise ServerlessMaxConcurrency or add an endpoint)
  alarms              warn unless the alarm topic has a confirmed subscription
  billing             warn unless AWS/Billing EstimatedCharges data exists in us-east-1

A setting or quota that cannot be read (AccessDenied) is a warn. With --local: stack, endpoint status, concurrency,
quota, alarms and billing are skipped; the endpoint is invoked and the dead-letter queue read for real.
"""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="lesionflow", description=__doc__, epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    where = root.add_argument_group("which stack")
    where.add_argument("--stack", help="CloudFormation stack name (default: samconfig.toml's stack_name)")
    where.add_argument("--local", action="store_true", help="the local stack that `lesionflow local up` runs")
    where.add_argument("--endpoint-url", dest="stack_endpoint_url", metavar="URL", help="a local stack at this URL")
    where.add_argument("--region", help="AWS region (default: AWS_REGION, the profile's, or samconfig.toml's)")
    where.add_argument("--profile", help="AWS profile (default: AWS_PROFILE)")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check", help="after a deploy: is everything there that uploads need? (exit 1 on any FAIL)",
        description=CHECK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.set_defaults(run=run_check)

    upload = commands.add_parser("upload", help="upload files or folders to be classified")
    upload.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders (recursively)")
    upload.add_argument("--prefix", default="", help="a sub-prefix under the upload prefix, e.g. clinic-7")
    upload.add_argument("--workers", type=int, default=8, help="parallel uploads (default 8)")
    upload.add_argument("--wait", action="store_true", help="wait for each upload's record and print them")
    upload.add_argument("--timeout", type=float, default=300, help="seconds --wait waits (default 300)")
    _output_options(upload)
    upload.set_defaults(run=run_upload)

    records = commands.add_parser("predictions", help="query the prediction log").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    get = records.add_parser("get", help="the latest record of an object key")
    get.add_argument("key", help="the object key exactly as uploaded, e.g. uploads/clinic-7/lesion-0001.jpg")
    get.add_argument("--all-versions", action="store_true", help="every upload of the key, newest first")
    _output_options(get)
    get.set_defaults(run=run_get)
    listed = records.add_parser("list", help="records by label, status, review and time, newest first")
    listed.add_argument("--label", help="a HAM10000 code: akiec, bcc, bkl, df, mel, nv, vasc")
    listed.add_argument("--status", type=Status, choices=list(Status), help="SUCCEEDED, REJECTED or FAILED")
    listed.add_argument("--needs-review", action="store_true", help="only predictions waiting for a person")
    listed.add_argument("--since", type=_time, help="ISO-8601 time, or 7d, 12h, 30m ago")
    listed.add_argument("--until", type=_time, help="ISO-8601 time, or 7d, 12h, 30m ago")
    listed.add_argument("--limit", type=int, default=50, help="most records to print (default 50; 0: all)")
    listed.add_argument("--page-size", type=int, default=100, help=argparse.SUPPRESS)
    _output_options(listed)
    listed.set_defaults(run=run_list)

    watch = commands.add_parser("watch", help="print new records as they arrive (Ctrl-C stops)")
    watch.add_argument("--since", type=_time, help="start from this time (default: now)")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between polls (default 2)")
    watch.add_argument("--count", type=int, help="stop after this many records")
    watch.add_argument("--timeout", type=float, help="stop after this many seconds")
    watch.add_argument("--json", action="store_true", help="one JSON object a line")
    watch.set_defaults(run=run_watch)

    backfill = commands.add_parser("backfill", help="classify objects already in the bucket (idempotent)")
    backfill.add_argument("--prefix", required=True, help="under the upload prefix, e.g. ham10000/")
    backfill.add_argument("--workers", type=int, default=4, help="parallel SendMessageBatch calls (default 4)")
    backfill.set_defaults(run=run_backfill)

    redrive = commands.add_parser("redrive", help="dead letters back to the queue, FAILED uploads run again")
    redrive.add_argument("--since", type=_time, help="only FAILED records since this time")
    redrive.set_defaults(run=run_redrive)

    report = commands.add_parser("report", help="accuracy against ground truth: metrics, charts, summary")
    report.add_argument("--truth", type=Path, required=True, help="HAM10000 metadata CSV (image_id, dx, ...)")
    report.add_argument("--out", type=Path, default=Path("report"), help="folder to write (default report/)")
    report.add_argument("--since", type=_time, help="only records since this time")
    report.set_defaults(run=run_report)

    local_commands.register(commands)
    return root


def _time(text: str) -> str:
    try:
        return predictions.parse_time(text)
    except CommandError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _output_options(command: argparse.ArgumentParser) -> None:
    formats = command.add_mutually_exclusive_group()
    formats.add_argument("--json", dest="format", action="store_const", const="json", help="one JSON object a line")
    formats.add_argument("--csv", dest="format", action="store_const", const="csv", help="CSV with a header row")
    command.set_defaults(format="table")


def stack_of(args):
    return find_stack(args.stack, args.local, args.stack_endpoint_url, args.region, args.profile)


def run_check(args) -> int:
    from lesionflow_cli.check import Announcement, deployed_target, exit_status, local_target, run

    if args.local or args.stack_endpoint_url:
        target = local_target(stack_of(args))
        print(f"lesionflow check: the local stack at {target.endpoint_url}")
    else:
        target = deployed_target(args.stack, args.region, args.profile)
        print(f"lesionflow check: stack {target.stack_name} in {target.region}")
    lines, announced = [], False
    for item in run(target):
        if isinstance(item, Announcement):
            print(f"  {item.check:<19}" if not announced else "", f"{item.text} ... ", sep="", end="", flush=True)
            announced = True
            continue
        lead = "" if announced else f"  {item.check:<19}"
        print(f"{lead}{item.outcome:<4} {item.found}" + (f" -> {item.advice}" if item.advice else ""), flush=True)
        lines.append(item)
        announced = False
    return exit_status(lines)


def run_upload(args) -> int:
    from lesionflow_cli.uploads import files_in, upload, wait_for_records

    stack = stack_of(args)
    uploaded = upload(stack, files_in(args.paths), args.prefix, args.workers)
    print(f"uploaded {len(uploaded)} file(s) to s3://{stack.bucket}/{stack.upload_prefix}{args.prefix}",
          file=sys.stderr)
    if not args.wait:
        return 0
    records = wait_for_records(stack, uploaded, args.timeout)
    print(predictions.render([record for record in records.values() if record], args.format))
    missing = [key for key, record in records.items() if record is None]
    if missing:
        print(f"lesionflow: {len(missing)} upload(s) had no record after {args.timeout:g} s, e.g. {missing[0]}",
              file=sys.stderr)
    return 1 if missing else 0


def run_get(args) -> int:
    found = predictions.latest(stack_of(args).table, args.key, args.all_versions)
    if not found:
        raise CommandError(f"no record of {args.key!r} (keys are exact, with the upload prefix)")
    print(predictions.render(found, args.format))
    return 0


def run_list(args) -> int:
    filters = predictions.Filters(label=args.label, status=args.status, needs_review=args.needs_review,
                                  since=args.since, until=args.until)
    found = predictions.listing(stack_of(args).table, filters, args.limit or None, args.page_size)
    print(predictions.render(found, args.format))
    return 0


def run_watch(args) -> int:
    stack, emitted = stack_of(args), 0
    deadline = time.monotonic() + args.timeout if args.timeout else None

    def emit(record: dict) -> None:
        nonlocal emitted
        emitted += 1
        print(predictions.render([record], "json" if args.json else "csv").splitlines()[-1], flush=True)

    def keep_going() -> bool:
        return (deadline is None or time.monotonic() < deadline) and (args.count is None or emitted < args.count)

    print(f"watching {stack.table_name} (Ctrl-C stops)", file=sys.stderr)
    predictions.follow(stack.table, args.since or utc_now(), args.interval, emit, keep_going)
    return 0


def run_backfill(args) -> int:
    from lesionflow_cli.backfill import backfill

    result = backfill(stack_of(args), args.prefix, args.workers)
    print(f"backfill: {result.listed} object(s) listed, {result.queued} notification(s) queued; uploads already "
          f"processed are skipped by the dispatcher")
    return 0


def run_redrive(args) -> int:
    from lesionflow_cli.redrive import redrive

    result = redrive(stack_of(args), args.since)
    print(f"redrive: {result.dead_letters_moved} dead letter(s) moved to the ingest queue, "
          f"{result.executions_started} FAILED upload(s) started again")
    if result.not_redrivable:
        print(f"  {len(result.not_redrivable)} FAILED upload(s) have no execution input to rerun (Express, or past "
              f"retention): backfill them instead", file=sys.stderr)
    return 0


def run_report(args) -> int:
    from lesionflow_cli.report import build_report, read_truth, write_report

    truth = read_truth(args.truth)
    records = predictions.listing(stack_of(args).table, predictions.Filters(since=args.since), limit=None)
    evaluation = build_report(records, truth)
    written = write_report(evaluation, args.out)
    print(f"report: {len(written)} file(s) in {args.out}/, summary in {args.out / 'summary.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as error:
        print(f"lesionflow: {error}", file=sys.stderr)
    except ValueError as error:  # the report's input errors, bad settings: the message is the whole story
        print(f"lesionflow: {error}", file=sys.stderr)
    except NoCredentialsError:
        print("lesionflow: no AWS credentials: set AWS_PROFILE or pass --profile (or use --local)", file=sys.stderr)
    except ClientError as error:
        print(f"lesionflow: AWS refused: {error.response['Error']['Code']}: {error.response['Error'].get('Message')}",
              file=sys.stderr)
    except BotoCoreError as error:
        print(f"lesionflow: cannot reach AWS: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `lesionflow ... | head`: the reader has what it wanted; no traceback, nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush does not raise again
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())

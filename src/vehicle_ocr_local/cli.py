"""`vehicle-ocr`: the local stack from the command line.

vehicle-ocr up [--aws-port 4566] [--api-port 3000]   the stack, kept running until Ctrl-C
vehicle-ocr demo [--samples samples]                   everything on the sample images, then a table
vehicle-ocr upload FILE... --kind plate                put images into a running stack
vehicle-ocr results [--kind K] [--status S] [--json]   what a running stack recognised: a table (never
                                                       an owner or address), or every field as JSON
vehicle-ocr redrive [--code C]                          re-run failures from the failure queue
vehicle-ocr erase (--plate N | --vin V | --bucket B --key K) [--yes]
                                                       remove everything held about a vehicle or an object
vehicle-ocr invoke EVENT.json [--function F]            a function's real handler on an event, against a
                                                       running stack (`sam local invoke` without Docker)
vehicle-ocr console [--stack NAME | --local | --endpoint URL] [--port 8030]
                                                       the results console in a browser, on 127.0.0.1 only
vehicle-ocr recognize PATH... [--kind K] [--provider P] [--json]
                                                       image files recognised on this machine, no stack
vehicle-ocr --version

An ordinary mistake (nothing listening on the endpoint, no such file, a port in use) ends the
command with one line on stderr and a non-zero status (2: bad usage, 1: the operation failed);
see cli_errors.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from vehicle_ocr.errors import ConfigurationError
from vehicle_ocr.kinds import kind_spec
from vehicle_ocr.settings import default_prefixes
from vehicle_ocr_local import recognize_files
from vehicle_ocr_local.cli_errors import UsageError, explain
from vehicle_ocr_local.local_aws import local_client
from vehicle_ocr_local.stack import REPO_ROOT, LocalStack, StackConfig

DEFAULT_AWS = "http://127.0.0.1:4566"
DEFAULT_API = "http://127.0.0.1:3000"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def package_version() -> str:
    """The installed package's version, or "unknown" when it runs from a tree that was never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vehicle-ocr")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vehicle-ocr", description="vehicle-ocr's local stack")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the stack until interrupted")
    up.add_argument("--aws-port", type=int, default=4566, help="the AWS emulator's port (default 4566)")
    up.add_argument("--api-port", type=int, default=3000, help="the query API's port (default 3000)")
    up.add_argument("--concurrency", type=int, default=4, help="recognitions at once (default 4)")

    demo = commands.add_parser("demo", help="recognise the sample images, print a table, exit")
    demo.add_argument(
        "--samples", type=Path, default=REPO_ROOT / "samples", help="folder with plates/ and vehicle-licenses/"
    )
    demo.add_argument("--concurrency", type=int, default=2, help="recognitions at once (default 2)")
    demo.add_argument("--timeout", type=float, default=900, help="seconds to wait for every sample")
    demo.add_argument(
        "--screenshot", type=Path, metavar="PNG", help="also picture the console's main page there (chromium)"
    )

    upload = commands.add_parser("upload", help="upload images into a running stack")
    upload.add_argument("files", nargs="+", type=Path)
    upload.add_argument("--kind", choices=sorted(default_prefixes()), required=True)
    upload.add_argument("--endpoint", default=DEFAULT_AWS, help=f"the stack's AWS endpoint (default {DEFAULT_AWS})")
    upload.add_argument("--bucket", default="vehicle-ocr-images")

    results = commands.add_parser("results", help="list recognised records of a running stack")
    results.add_argument("--api", default=DEFAULT_API, help=f"the query API (default {DEFAULT_API})")
    results.add_argument("--kind", choices=sorted(default_prefixes()))
    results.add_argument("--status", choices=["SUCCEEDED", "FAILED"])
    results.add_argument("--limit", type=int, default=50, help="at most this many records, newest first (default 50)")
    results.add_argument(
        "--json", action="store_true", help="the records as JSON, every field (the owner and address included)"
    )

    redrive = commands.add_parser(
        "redrive",
        help="re-run failed uploads from the failure queue, deleting each message once its re-run is terminal",
    )
    redrive.add_argument("--code", action="append", help="only failures with this error code (repeatable), e.g. 150")
    redrive.add_argument("--stack", help="a deployed CloudFormation stack (default: the local stack)")
    redrive.add_argument("--endpoint", default=DEFAULT_AWS, help=f"the local stack's AWS endpoint ({DEFAULT_AWS})")
    redrive.add_argument("--limit", type=int, default=1000, help="at most this many messages (default 1000)")
    redrive.add_argument("--timeout", type=float, default=600, help="seconds to wait for the re-runs (default 600)")

    erase = commands.add_parser(
        "erase",
        help="remove everything held about a plate number, a VIN or one object (asks first unless --yes)",
        description=(
            "Remove every image version, record, plate sighting, stored paid answer and queued failure message "
            "held about a vehicle (--plate, with the VINs of licences naming it; --vin, with the plate numbers its "
            "licences name) or one object (--bucket B --key K). Without --yes it lists what it would remove and asks."
        ),
    )
    erase.add_argument("--plate", help="a plate number, any common spelling")
    erase.add_argument("--vin", help="a vehicle identification number")
    erase.add_argument("--bucket", help="with --key: the object's bucket")
    erase.add_argument("--key", help="with --bucket: the object's key (every version)")
    erase.add_argument("--stack", help="a deployed CloudFormation stack, with your AWS credentials")
    erase.add_argument("--endpoint", help=f"the local stack's AWS endpoint (default {DEFAULT_AWS})")
    erase.add_argument("--yes", action="store_true", help="remove without asking")

    invoke = commands.add_parser(
        "invoke",
        help="run a function's real handler on an event file against a running stack (no Docker), print its response",
        description=(
            "Run RecognizeFunction or QueryFunction's real handler in this process on EVENT.json (e.g. events/*.json), "
            "with the function's environment from template.yaml resolved to the running local stack, and print the "
            "handler's JSON response. Exit 0 when the handler returned, 1 when it raised (or the stack is not "
            "running, or an S3 event's object is not in the bucket), 2 on bad usage."
        ),
    )
    invoke.add_argument("event", type=Path, metavar="EVENT.json", help="a Lambda event: S3 records or an API request")
    invoke.add_argument(
        "--function",
        choices=["recognize", "query"],
        help="the function (default: from the event: S3 records → recognize, an API Gateway request → query)",
    )
    invoke.add_argument("--endpoint", default=DEFAULT_AWS, help=f"the local stack's AWS endpoint ({DEFAULT_AWS})")

    console = commands.add_parser(
        "console",
        help="the results console (photos, plates, failures, cost) on http://127.0.0.1:PORT/console/",
        description=(
            "Serve the results console on 127.0.0.1 only: recent results with their photos, failures with a "
            "redrive button, drag-and-drop upload and the cost per day. With --stack it uses your own AWS "
            "credentials; otherwise the local stack (`vehicle-ocr up`, which also serves it on :3000/console/)."
        ),
    )
    console.add_argument("--stack", help="a deployed CloudFormation stack, with your AWS credentials")
    console.add_argument("--endpoint", help=f"the local stack's AWS endpoint (default {DEFAULT_AWS})")
    console.add_argument("--local", action="store_true", help="the local stack at its default endpoint (the default)")
    console.add_argument("--port", type=int, default=8030, help="the console's port on 127.0.0.1 (default 8030)")
    recognize_files.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    commands_by_name = {
        "up": run_up,
        "demo": run_demo,
        "upload": run_upload,
        "results": run_results,
        "redrive": run_redrive,
        "erase": run_erase,
        "invoke": run_invoke,
        "console": run_console,
        "recognize": recognize_files.run_recognize,
    }
    try:
        return commands_by_name[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # the one place ordinary mistakes become one line; bugs still raise
        explained = explain(error, args)
        if explained is None:
            raise
        message, status = explained
        print(f"vehicle-ocr {args.command}: {message}", file=sys.stderr, flush=True)
        return status


# ------------------------------------------------------------------------------------------------ up
def run_up(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    config = StackConfig(aws_port=args.aws_port, api_port=args.api_port, concurrency=args.concurrency)
    with LocalStack(config) as stack:
        bucket = config.bucket
        print(f"AWS endpoint : {stack.aws_endpoint}")
        aws = f"aws --endpoint-url {stack.aws_endpoint}"
        print(f"  upload     : {aws} s3 cp samples/plates/001-blue-regular.jpg s3://{bucket}/plates/car.jpg")
        print(f"  successes  : {aws} sqs receive-message --queue-url {stack.events_queue_url}")
        print(f"  failures   : {aws} sqs receive-message --queue-url {stack.failure_queue_url}")
        print(f"Query API    : {stack.api_url}   (curl {stack.api_url}/results)")
        print(f"Console      : {stack.api_url}/console/")
        print(f"Providers    : {' '.join(f'{kind}={chain}' for kind, chain in stack.providers.items())}")
        print("vehicle-ocr local stack ready (Ctrl-C stops it)", flush=True)
        stop.wait()
        print("stopping", flush=True)
    return 0


# ------------------------------------------------------------------------------------------------ demo
def sample_files(samples: Path) -> list[tuple[str, Path]]:
    """(object key, file) for every image under samples/plates and samples/vehicle-licenses."""
    found = []
    for prefix in default_prefixes().values():
        folder = samples / prefix.rstrip("/")
        for path in sorted(folder.glob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                found.append((f"{prefix}{path.name}", path))
    return found


def run_demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    files = sample_files(args.samples)
    if not files:
        console.print(f"[red]no sample images under {args.samples}[/red]")
        return 2
    config = StackConfig(aws_port=0, api_port=0, concurrency=args.concurrency, quiet=True)
    with console.status("starting the local stack (AWS emulator, functions, query API)"):
        stack = LocalStack(config).start()
    try:
        console.print(
            f"stack ready: AWS {stack.aws_endpoint}, query API {stack.api_url}; providers "
            + ", ".join(f"{kind}={chain}" for kind, chain in stack.providers.items())
        )
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            uploading = progress.add_task("uploading  ", total=len(files))
            for key, path in files:
                stack.upload(key, path.read_bytes())
                progress.advance(uploading)
            recognising = progress.add_task("recognising", total=len(files))
            done = stack.wait_for(
                len(files), timeout_s=args.timeout, on_progress=lambda n: progress.update(recognising, completed=n)
            )
        records = fetch_all(stack.api_url)
        print_table(console, records, [key for key, _ in files])
        succeeded = sum(record["status"] == "SUCCEEDED" for record in records)
        console.print(
            f"{len(files)} uploaded, {done} processed: {succeeded} SUCCEEDED, {len(records) - succeeded} FAILED"
            + (f", {stack.stats.dead_lettered} invocations dead-lettered" if stack.stats.dead_lettered else "")
        )
        if args.screenshot:
            console.print(console_screenshot(f"{stack.api_url}/console/", args.screenshot))
        return 0 if done >= len(files) else 1
    finally:
        stack.stop()


def console_screenshot(url: str, path: Path) -> str:
    """Picture the console's main page; one line saying where, or why there is none (never a failure)."""
    import subprocess

    from vehicle_ocr_local.console.screenshot import INSTALL_HINT, screenshot

    try:
        taken = screenshot(url, path)
    except (OSError, subprocess.SubprocessError) as error:
        return f"console screenshot not taken: chromium failed ({error})"
    return f"console screenshot: {path}" if taken else f"console screenshot not taken: {INSTALL_HINT}"


def fetch_all(api_url: str, limit: int | None = None, **filters: str) -> list[dict[str, Any]]:
    """Records from the query API, newest first: every page, or the first ``limit`` records."""
    import requests

    records: list[dict[str, Any]] = []
    cursor = None
    while limit is None or len(records) < limit:
        page_size = 100 if limit is None else max(1, min(100, limit - len(records)))
        params = {**filters, "limit": str(page_size), **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{api_url}/results", params=params, timeout=30)
        page.raise_for_status()
        body = page.json()
        records.extend(body["items"])
        cursor = body["cursor"]
        if not cursor:
            break
    return records if limit is None else records[:limit]


def summary(record: dict[str, Any]) -> str:
    """The result as its kind sums it up (plates; plate number and VIN), or error code and message.

    Never an owner or an address: a kind's summary names identifiers only."""
    if record["status"] == "FAILED":
        return f"{record['error']['code']}: {record['error']['message']}"
    try:
        spec = kind_spec(record["kind"])
    except ConfigurationError:  # a kind this version does not know (a newer deployment's)
        return "-"
    result = record.get(spec.record_field)
    return "-" if result is None else spec.summary(result)


TABLE_COLUMNS = ("object", "kind", "status", "result")


def table_rows(records: list[dict[str, Any]], keys: list[str] | None = None) -> list[tuple[str, str, str, str]]:
    """(object, kind, status, result) per record, in the order given (the API's: newest first).

    With ``keys``, one row per key in that order, from the key's newest record, and "not
    processed" where there is none. Never an owner or an address: see :func:`summary`.
    """
    if keys is None:
        return [(r["source"]["key"], r["kind"] or "-", r["status"], summary(r)) for r in records]
    newest: dict[str, dict[str, Any]] = {}
    for record in records:
        newest.setdefault(record["source"]["key"], record)
    return [
        (key, r["kind"] or "-", r["status"], summary(r)) if (r := newest.get(key)) else (key, "", "not processed", "")
        for key in keys
    ]


def print_table(console: Any, records: list[dict[str, Any]], keys: list[str] | None = None) -> None:
    """The rows as a rich table (a terminal: colours, and columns fitted to its width)."""
    from rich.markup import escape
    from rich.table import Table

    colours = {"SUCCEEDED": "green", "FAILED": "red"}
    table = Table(title="vehicle-ocr results")
    for column in TABLE_COLUMNS:
        table.add_column(column)
    for key, kind, status, result in table_rows(records, keys):
        colour = colours.get(status, "yellow")
        table.add_row(escape(key), kind, f"[{colour}]{status}[/{colour}]", escape(result))
    console.print(table)


def plain_table(rows: Sequence[tuple[str, ...]]) -> str:
    """Rows as plain text for a pipe or a file: a header, columns aligned, one line per row, no colours."""
    from rich.cells import cell_len  # a Chinese character takes two columns

    lines = [tuple(TABLE_COLUMNS), *(tuple(" ".join(cell.split()) or "-" for cell in row) for row in rows)]
    widths = [max(cell_len(line[index]) for line in lines) for index in range(len(TABLE_COLUMNS) - 1)]
    return "\n".join(
        "  ".join(cell + " " * (width - cell_len(cell)) for cell, width in zip(line[:-1], widths, strict=True))
        + "  "
        + line[-1]
        for line in lines
    )


# ------------------------------------------------------------------------------------------------ upload / results
def run_upload(args: argparse.Namespace) -> int:

    check_files(args.files)

    s3 = local_client(args.endpoint, "s3")
    for path in args.files:
        key = default_prefixes()[args.kind] + path.name
        s3.put_object(Bucket=args.bucket, Key=key, Body=path.read_bytes())
        print(f"uploaded s3://{args.bucket}/{key}")
    return 0


def check_files(files: list[Path]) -> None:
    """Every file exists and is a file, before anything is uploaded."""
    for path in files:
        if path.is_file():
            continue
        if path.is_dir():
            raise UsageError(f"{path} is a folder: upload the images in it, e.g. {path}/*.jpg")
        if any(character in str(path) for character in "*?["):
            raise UsageError(
                f"no file matches {str(path)!r} (the shell passes a pattern that matches nothing as it is): "
                "name existing images, e.g. `vehicle-ocr upload samples/plates/*.jpg --kind plate`"
            )
        raise UsageError(f"no such file: {path}")


def run_results(args: argparse.Namespace) -> int:
    from rich.console import Console

    filters = {name: value for name, value in (("kind", args.kind), ("status", args.status)) if value}
    records = fetch_all(args.api, limit=args.limit, **filters)
    if args.json:  # every field, the licence's owner and address included: only when asked for
        print(json.dumps(records, ensure_ascii=False, indent=2))
    elif sys.stdout.isatty():
        print_table(Console(), records)
    else:
        print(plain_table(table_rows(records)))
    return 0


# ------------------------------------------------------------------------------------------------ invoke
def run_invoke(args: argparse.Namespace) -> int:
    from vehicle_ocr_local.invoke import run_invoke as invoke_event

    return invoke_event(args)


# ------------------------------------------------------------------------------------------------ erase
def run_erase(args: argparse.Namespace) -> int:
    from vehicle_ocr_local.erase import Eraser

    subject = erase_subject(args)
    if args.stack and args.endpoint:
        raise UsageError("--stack and --endpoint name two different stacks: give one")
    logging.getLogger("vehicle_ocr_local.erase").setLevel(logging.INFO)  # the audit line (counts and ids)
    s3, dynamodb, sqs, resources = erase_clients(args)
    eraser = Eraser(s3=s3, dynamodb=dynamodb, sqs=sqs, resources=resources)
    plan = eraser.find(subject)
    if plan.empty:
        # Still marked: a recognition under way for it must not record it once it finishes.
        eraser.mark(plan)
        print(f"nothing held about {subject}: nothing removed")
        return 0
    print(f"held about {subject}:")
    for line in plan.lines():
        print(f"  {line}")
    if not args.yes and not confirmed("remove all of this? [y/N] "):
        print("nothing removed")
        return 1
    report = eraser.erase(plan, on_progress=lambda line: None)
    print(report.line())
    for rid in report.record_ids:
        print(f"  record {rid}")
    return 0


def erase_subject(args: argparse.Namespace) -> Any:
    from vehicle_ocr_local.erase import Subject

    given = [name for name in ("plate", "vin", "key") if getattr(args, name) is not None]
    if len(given) != 1:
        raise UsageError(
            "name one subject: --plate NUMBER, --vin VIN, or --bucket B --key K"
            + (f" (not {' and '.join('--' + name for name in given)})" if given else "")
        )
    if (args.key is None) != (args.bucket is None):
        raise UsageError("--bucket and --key name one object: give both")
    try:
        return Subject.of(plate=args.plate, vin=args.vin, bucket=args.bucket, key=args.key)
    except ValueError as error:
        raise UsageError(str(error)) from error


def erase_clients(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """S3, DynamoDB and SQS clients, and where the stack keeps things: deployed (--stack) or local."""
    import boto3

    from vehicle_ocr_local.erase import Resources
    from vehicle_ocr_local.template import local_name

    if args.stack:
        session = boto3.Session()
        outputs = {
            output["OutputKey"]: output["OutputValue"]
            for output in session.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0]["Outputs"]
        }
        resources = Resources(
            results_table=outputs["ResultsTableName"],
            answers_table=outputs.get("IdempotencyTableName"),
            queue_urls=tuple(
                outputs[name]
                for name in ("FailureQueueUrl", "FailureDeadLetterQueueUrl", "RecognizeDeadLetterQueueUrl")
                if outputs.get(name)
            ),
        )
        return session.client("s3"), session.client("dynamodb"), session.client("sqs"), resources
    endpoint = args.endpoint or DEFAULT_AWS
    sqs = local_client(endpoint, "sqs")
    queue_urls = tuple(
        sqs.get_queue_url(QueueName=local_name(name))["QueueUrl"]
        for name in ("FailureQueue", "FailureDeadLetterQueue", "RecognizeDeadLetterQueue")
    )
    resources = Resources(
        results_table=local_name("ResultsTable"), answers_table=local_name("IdempotencyTable"), queue_urls=queue_urls
    )
    return local_client(endpoint, "s3"), local_client(endpoint, "dynamodb"), sqs, resources


def confirmed(question: str) -> bool:
    """Whether the user answers "y" on stdin; no answer (end of input) is a no."""
    try:
        return input(question).strip().lower() in {"y", "yes"}
    except EOFError:
        print()
        return False


# ------------------------------------------------------------------------------------------------ console
def run_console(args: argparse.Namespace) -> int:
    import errno

    from vehicle_ocr_local.cli_errors import CliError
    from vehicle_ocr_local.console.app import ConsoleApp
    from vehicle_ocr_local.console.backend import deployed_backend, local_backend
    from vehicle_ocr_local.console.server import ConsoleServer

    if args.stack and (args.endpoint or args.local):
        local = "--endpoint" if args.endpoint else "--local"
        raise UsageError(f"--stack (a deployed stack) and {local} (the local stack) exclude each other: give one")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: not a port number")
    # Resolved before serving, so that a stack that is not there is one line now, not an error page later.
    backend = deployed_backend(args.stack) if args.stack else local_backend(args.endpoint or DEFAULT_AWS)
    try:
        server = ConsoleServer(ConsoleApp(backend), args.port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise CliError(f"port {args.port} is already in use: choose another with --port N") from None
        raise
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with server:
        print(f"Console of {backend.where}: {server.url}   (127.0.0.1 only; Ctrl-C stops it)", flush=True)
        stop.wait()
    return 0


# ------------------------------------------------------------------------------------------------ redrive
def run_redrive(args: argparse.Namespace) -> int:
    import boto3

    from vehicle_ocr.storage import ResultsStore
    from vehicle_ocr_local.redrive import redrive
    from vehicle_ocr_local.stack import NOTIFICATION_QUEUE
    from vehicle_ocr_local.template import local_name

    if args.stack:  # a deployed stack: the function is invoked asynchronously, as S3 does
        session = boto3.Session()
        outputs = {
            output["OutputKey"]: output["OutputValue"]
            for output in session.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0]["Outputs"]
        }
        sqs, dynamodb, lambda_client = session.client("sqs"), session.client("dynamodb"), session.client("lambda")
        queue_url, table = outputs["FailureQueueUrl"], outputs["ResultsTableName"]

        def send(event: dict[str, Any]) -> None:
            lambda_client.invoke(
                FunctionName=outputs["RecognizeFunctionArn"], InvocationType="Event", Payload=json.dumps(event)
            )
    else:  # the local stack: its dispatcher drains the notification queue
        sqs, dynamodb = local_client(args.endpoint, "sqs"), local_client(args.endpoint, "dynamodb")
        queue_url = sqs.get_queue_url(QueueName=local_name("FailureQueue"))["QueueUrl"]
        notifications = sqs.get_queue_url(QueueName=NOTIFICATION_QUEUE)["QueueUrl"]
        table = local_name("ResultsTable")

        def send(event: dict[str, Any]) -> None:
            sqs.send_message(QueueUrl=notifications, MessageBody=json.dumps(event, ensure_ascii=False))

    report = redrive(
        sqs=sqs,
        failure_queue_url=queue_url,
        store=ResultsStore(table, dynamodb),
        send=send,
        codes=set(args.code) if args.code else None,
        limit=args.limit,
        timeout_s=args.timeout,
        on_progress=print,
    )
    succeeded = sum(outcome == "SUCCEEDED" for outcome in report.outcomes.values())
    print(
        f"redriven {len(report.redriven)}: {succeeded} SUCCEEDED, {len(report.redriven) - succeeded} FAILED again; "
        f"{report.skipped} not selected; {len(report.kept)} kept in the queue"
    )
    for line in report.kept:
        print(f"  kept {line}")
    if report.in_flight:
        print(in_flight_line(report.in_flight, report.visibility_timeout_s or 0))
    return 0 if not report.kept else 1


def in_flight_line(count: int, visibility_timeout_s: int, now: datetime | None = None) -> str:
    """Why "redriven 0" may not mean "nothing to do": messages another reader holds, and when they return."""
    from vehicle_ocr_local.redrive import VISIBILITY_S

    back_by = (now or datetime.now().astimezone()) + timedelta(seconds=visibility_timeout_s)
    messages, they = ("message is", "it comes") if count == 1 else ("messages are", "they come")
    return (
        f"{count} {messages} in flight (received by another reader, invisible, not redriven): {they} back "
        f"within the queue's VisibilityTimeout of {duration(visibility_timeout_s)}, by about {back_by:%H:%M:%S}, "
        f"unless the reader asked for longer (`vehicle-ocr redrive` itself holds what it keeps for "
        f"{duration(VISIBILITY_S)}); run `vehicle-ocr redrive` again then"
    )


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


if __name__ == "__main__":
    sys.exit(main())

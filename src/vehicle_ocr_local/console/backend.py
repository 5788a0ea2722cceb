"""What the console reads and does, with the caller's own AWS credentials (or the local stack's).

Reads go straight to the results table (``vehicle_ocr.queries``, ``vehicle_ocr.usage``), photos
straight from the images bucket, uploads into it, and redrives through ``vehicle_ocr_local.redrive``:
the same IAM permissions as ``vehicle-ocr redrive`` (see the README) plus ``s3:GetObject`` /
``s3:GetObjectVersion`` / ``s3:PutObject`` on the images bucket. Nothing is made public: a photo
reaches the browser only through the console server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import PurePath
from typing import Any

from vehicle_ocr.codes import Action, lookup
from vehicle_ocr.errors import ConfigurationError
from vehicle_ocr.kinds import kind_spec
from vehicle_ocr.normalize.plates import canonical_plate_number
from vehicle_ocr.queries import ResultsQueries
from vehicle_ocr.settings import read_prefixes
from vehicle_ocr.storage import ResultsStore
from vehicle_ocr.usage import Prices, UsageReport
from vehicle_ocr_local.local_aws import local_client
from vehicle_ocr_local.redrive import RedriveReport, redrive
from vehicle_ocr_local.template import load_template

# What an operator does about a failure, by the code table's action.
WHAT_TO_DO = {
    Action.WAIT: "Transient: it was retried with backoff. Re-run it (redrive) once the provider answers again.",
    Action.FIX_CONFIG: "Fix the provider's key, IP whitelist or subscription, then re-run it (redrive).",
    Action.TOP_UP: "The provider's quota or balance is spent: top it up, then re-run it (redrive).",
    Action.BAD_IMAGE: "The image itself cannot be read: upload a sharper, complete photo instead.",
    Action.CONTACT_PROVIDER: "The provider answered something unusable or withdrew the API: contact the provider.",
    Action.NONE: "Nothing to do: the object is not one this stack recognises, or it is gone.",
}
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Failures grouped by code: the newest this many FAILED records are read (a summary, not an audit).
FAILURES_READ = 500
_UNSAFE_NAME = re.compile(r"[^\w.\-]+")


class ConsoleError(Exception):
    """A request the console cannot do, with the HTTP status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class ConsoleBackend:
    s3: Any
    dynamodb: Any
    sqs: Any
    bucket: str
    results_table: str
    failure_queue_url: str
    prefixes: Mapping[str, str]  # kind → key prefix
    prices: Prices
    send_redrive: Callable[[dict[str, Any]], None]  # hands a redrive event to the recognition function
    where: str  # what the console shows it is connected to
    redrive_timeout_s: float = 120

    @property
    def queries(self) -> ResultsQueries:
        return ResultsQueries(self.results_table, self.dynamodb)

    # ------------------------------------------------------------------------------------------ reads
    def listing(
        self, *, kind: str | None, status: str | None, plate: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        if plate:
            number = canonical_plate_number(plate)
            if not 2 <= len(number) <= 12:
                raise ConsoleError(400, "not a plate number")
            page = self.queries.by_plate(number, limit=limit, cursor=cursor)
            items = [item for item in page.items if (not kind or item["kind"] == kind)]
            items = [item for item in items if (not status or item["status"] == status)]
        else:
            page = self.queries.list(kind=kind, status=status, limit=limit, cursor=cursor)
            items = page.items
        return {"items": [summary(item) for item in items], "cursor": page.cursor}

    def record(self, record_id: str) -> dict[str, Any]:
        record = self.queries.get(record_id)
        if record is None:
            raise ConsoleError(404, f"no record with id {record_id}")
        return with_advice(record)

    def failures_by_code(self) -> list[dict[str, Any]]:
        """The newest failures grouped by code, most frequent first, each with what to do about it."""
        groups: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        read = 0
        while read < FAILURES_READ:
            page = self.queries.list(kind=None, status="FAILED", limit=100, cursor=cursor)
            for record in page.items:
                error = record.get("error") or {}
                code = str(error.get("code", "?"))
                group = groups.setdefault(
                    code,
                    {"code": code, "provider": error.get("provider"), "message": error.get("message"), "count": 0},
                )
                group["count"] += 1
                group.setdefault("what_to_do", with_advice(record).get("what_to_do"))
            read += len(page.items)
            cursor = page.cursor
            if cursor is None:
                break
        return sorted(groups.values(), key=lambda group: (-group["count"], group["code"]))

    def latest_for(self, key: str) -> dict[str, Any] | None:
        record = self.queries.latest_for_object(self.bucket, key)
        return summary(record) if record else None

    def photo(self, record_id: str) -> tuple[bytes, str]:
        record = self.queries.get(record_id)
        if record is None:
            raise ConsoleError(404, f"no record with id {record_id}")
        source = record["source"]
        if source["bucket"] != self.bucket:
            raise ConsoleError(404, "the photo is not in this stack's bucket")
        request = {"Bucket": source["bucket"], "Key": source["key"]}
        if source.get("version_id"):
            request["VersionId"] = source["version_id"]
        try:
            answer = self.s3.get_object(**request)
        except self.s3.exceptions.ClientError as error:
            raise ConsoleError(404, f"the photo is gone ({error.response['Error'].get('Code')})") from None
        with answer["Body"] as body:
            return body.read(MAX_UPLOAD_BYTES + 1), answer.get("ContentType") or "application/octet-stream"

    def usage(self, first: date, last: date) -> dict[str, Any]:
        return UsageReport(self.results_table, self.dynamodb, self.prices).report(first, last)

    # ------------------------------------------------------------------------------------------ actions
    def upload(self, kind: str, filename: str, data: bytes, content_type: str | None) -> str:
        if kind not in self.prefixes:
            raise ConsoleError(400, f"kind must be one of {', '.join(sorted(self.prefixes))}")
        if not data:
            raise ConsoleError(400, "the file is empty")
        if len(data) > MAX_UPLOAD_BYTES:
            raise ConsoleError(413, f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
        name = _UNSAFE_NAME.sub("-", PurePath(filename.replace("\\", "/")).name).strip("-.") or "upload"
        key = f"{self.prefixes[kind]}console/{name}"
        extra = {"ContentType": content_type} if content_type else {}
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
        return key

    def redrive(self, *, record_id: str | None = None, code: str | None = None) -> RedriveReport:
        if (record_id is None) == (code is None):
            raise ConsoleError(400, "redrive one upload (id) or every failure with one code (code)")
        return redrive(
            sqs=self.sqs,
            failure_queue_url=self.failure_queue_url,
            store=ResultsStore(self.results_table, self.dynamodb),
            send=self.send_redrive,
            codes={code} if code else None,
            ids={record_id} if record_id else None,
            timeout_s=self.redrive_timeout_s,
        )


def summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as a listing shows it: without what its kind's result says of a person, or any raw answer."""
    shown = {name: value for name, value in record.items() if name not in ("raw_answer",)}
    try:
        spec = kind_spec(record.get("kind") or "")
    except ConfigurationError:  # a kind this version does not know (a newer deployment's)
        return with_advice(shown)
    result = shown.get(spec.record_field)
    if isinstance(result, dict):
        left_out = (*spec.personal_fields, "raw")
        shown[spec.record_field] = {name: value for name, value in result.items() if name not in left_out}
    return with_advice(shown)


def with_advice(record: dict[str, Any]) -> dict[str, Any]:
    error = record.get("error")
    if isinstance(error, dict):
        info = lookup(error.get("provider") or "pipeline", error["code"])
        record = {**record, "what_to_do": WHAT_TO_DO[info.action]}
    return record


# ---------------------------------------------------------------------------------------------- wiring
def local_backend(endpoint: str) -> ConsoleBackend:
    """The local stack (`vehicle-ocr up`) at ``endpoint``: its names come from template.yaml, as `up` makes them."""

    from vehicle_ocr_local.stack import NOTIFICATION_QUEUE
    from vehicle_ocr_local.template import LOCAL_BUCKET, load_template, local_name, parameter_defaults

    sqs = local_client(endpoint, "sqs")
    failure_queue_url = sqs.get_queue_url(QueueName=local_name("FailureQueue"))["QueueUrl"]
    notifications = sqs.get_queue_url(QueueName=NOTIFICATION_QUEUE)["QueueUrl"]
    parameters = parameter_defaults(load_template())

    def send(event: dict[str, Any]) -> None:
        sqs.send_message(QueueUrl=notifications, MessageBody=json.dumps(event, ensure_ascii=False))

    return ConsoleBackend(
        s3=local_client(endpoint, "s3"),
        dynamodb=local_client(endpoint, "dynamodb"),
        sqs=sqs,
        bucket=LOCAL_BUCKET,
        results_table=local_name("ResultsTable"),
        failure_queue_url=failure_queue_url,
        prefixes=_local_prefixes(parameters),
        prices=_prices(parameters),
        send_redrive=send,
        where=f"the local stack at {endpoint}",
    )


def deployed_backend(stack_name: str) -> ConsoleBackend:
    """A deployed CloudFormation stack, with the caller's own AWS credentials."""
    import boto3

    session = boto3.Session()
    (stack,) = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    parameters = {entry["ParameterKey"]: entry.get("ParameterValue", "") for entry in stack.get("Parameters", [])}
    lambda_client = session.client("lambda")

    def send(event: dict[str, Any]) -> None:
        lambda_client.invoke(
            FunctionName=outputs["RecognizeFunctionArn"], InvocationType="Event", Payload=json.dumps(event)
        )

    return ConsoleBackend(
        s3=session.client("s3"),
        dynamodb=session.client("dynamodb"),
        sqs=session.client("sqs"),
        bucket=outputs["ImagesBucketName"],
        results_table=outputs["ResultsTableName"],
        failure_queue_url=outputs["FailureQueueUrl"],
        # What the deployed function routes by, whatever this checkout's template.yaml says.
        prefixes=dict(
            read_prefixes(
                lambda_client.get_function_configuration(FunctionName=outputs["RecognizeFunctionArn"])
                .get("Environment", {})
                .get("Variables", {})
            )
        ),
        prices=_prices(parameters),
        send_redrive=send,
        where=f"the stack {stack_name}",
    )


def _local_prefixes(parameters: Mapping[str, str]) -> dict[str, str]:
    """The local stack's prefixes: template.yaml's variables, with its parameters at their defaults."""
    variables = load_template()["Resources"]["RecognizeFunction"]["Properties"]["Environment"]["Variables"]
    resolved = {
        name: parameters.get(value["Ref"], "") if isinstance(value, dict) and "Ref" in value else value
        for name, value in variables.items()
    }
    return dict(read_prefixes({name: value for name, value in resolved.items() if isinstance(value, str)}))


def _prices(parameters: Mapping[str, str]) -> Prices:
    return Prices.from_env(
        {
            "TIANAPI_PRICE_PER_CALL": parameters.get("TianapiPricePerCall", "0.05"),
            "APIZERO_PRICE_PER_CALL": parameters.get("ApizeroPricePerCall", "0"),
        }
    )

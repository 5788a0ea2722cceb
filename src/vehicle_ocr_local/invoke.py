"""`vehicle-ocr invoke EVENT.json`: a function's real handler, run in this process, against a running local stack.

What `sam local invoke` does without Docker: the handler (functions/<name>/app.py) is imported with
the function's environment from template.yaml, resolved to the resources of the stack that
`vehicle-ocr up` runs (the same resolution the stack itself applies, ``LocalResources``), every
AWS call goes to that stack's endpoint, and the handler's JSON response is printed.

* The function comes from the event's shape unless ``--function`` names it: S3 records go to
  RecognizeFunction, an API Gateway proxy request to QueryFunction.
* An S3 event names objects: each one in the stack's bucket must exist (the sample events in
  ``events/`` name keys such as ``plates/cam1/car.jpg`` that nothing has uploaded). The
  records then describe the object as S3 would announce it now: its ETag, size and version
  replace the sample's placeholders, so the handler reads the object the event names.
* The function's logs and metrics go to stderr, the response alone to stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from vehicle_ocr_local.cli_errors import CliError, UsageError
from vehicle_ocr_local.local_aws import local_client

# --function NAME → (functions/NAME/app.py, the template's logical id)
FUNCTIONS = {"recognize": "RecognizeFunction", "query": "QueryFunction"}
_MISSING_OBJECT = {"404", "NoSuchKey", "NoSuchVersion", "NotFound"}


# ------------------------------------------------------------------------------------------------ the event
def read_event(path: Path) -> dict[str, Any]:
    """The event in ``path``: a JSON object, or a :class:`UsageError` saying what is wrong with the file."""
    if path.is_dir():
        raise UsageError(f"{path} is a folder: name one event file, e.g. events/s3-put-plate.json")
    if not path.is_file():
        raise UsageError(f"no such file: {path} (the sample events are in events/)")
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UsageError(
            f"{path} is not JSON (not UTF-8 text): pass a Lambda event such as events/s3-put-plate.json"
        ) from None
    except json.JSONDecodeError as error:
        raise UsageError(
            f"{path} is not JSON ({error.msg} at line {error.lineno} column {error.colno}): "
            "pass a Lambda event such as events/s3-put-plate.json"
        ) from None
    if not isinstance(event, dict):
        raise UsageError(f"{path} is JSON but not an event (a Lambda event is a JSON object, {{...}})")
    return event


def function_for(event: dict[str, Any], path: Path) -> str:
    """``recognize`` for S3 records, ``query`` for an API Gateway request; a UsageError for anything else."""
    records = event.get("Records")
    if isinstance(records, list) and any(
        isinstance(record, dict) and (record.get("eventSource") == "aws:s3" or "s3" in record) for record in records
    ):
        return "recognize"
    if "httpMethod" in event or ("resource" in event and "requestContext" in event):
        return "query"
    raise UsageError(
        f"cannot tell which function {path} is for (neither S3 records nor an API Gateway request): "
        "pass --function recognize or --function query"
    )


# ------------------------------------------------------------------------------------------------ the stack
def running_resources(endpoint: str) -> Any:
    """The running local stack's resources as ``LocalResources``: what template.yaml's Refs resolve to there.

    The names are the ones the stack gives them (``local_name``); queue URLs and ARNs are asked of
    the stack, which also checks that it is a vehicle-ocr stack.
    """
    from botocore.exceptions import ClientError

    from vehicle_ocr_local.template import (
        LOCAL_BUCKET,
        LocalResources,
        load_template,
        local_name,
        parameter_defaults,
        resources_of_type,
    )

    template = load_template()
    resources = LocalResources(parameters=parameter_defaults(template), template=template)
    dynamodb, sqs, events = (local_client(endpoint, service) for service in ("dynamodb", "sqs", "events"))
    not_ours = f"the stack at {endpoint} has no %s: is it the one `vehicle-ocr up` runs? (check --endpoint)"
    for logical_id in resources_of_type(template, "AWS::DynamoDB::Table"):
        name = local_name(logical_id)
        try:
            resources.arns[logical_id] = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
        except ClientError:
            raise CliError(not_ours % f"table {name}") from None
        resources.refs[logical_id] = name
    for logical_id in resources_of_type(template, "AWS::SQS::Queue"):
        name = local_name(logical_id)
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError:
            raise CliError(not_ours % f"queue {name}") from None
        resources.refs[logical_id] = url
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        resources.arns[logical_id] = attributes["QueueArn"]
    for logical_id in resources_of_type(template, "AWS::Events::EventBus"):
        name = local_name(logical_id)
        try:
            resources.arns[logical_id] = events.describe_event_bus(Name=name)["Arn"]
        except ClientError:
            raise CliError(not_ours % f"event bus {name}") from None
        resources.refs[logical_id] = name
    resources.refs["ImagesBucket"] = LOCAL_BUCKET
    resources.arns["ImagesBucket"] = f"arn:aws:s3:::{LOCAL_BUCKET}"
    return resources


def function_environment(resources: Any, function: str) -> dict[str, str]:
    """The function's environment as the local stack builds it (stack.py's ``_start_functions``)."""
    from vehicle_ocr_local.stack import recognize_environment

    if function == "query":
        return resources.function_environment(FUNCTIONS[function])
    return recognize_environment(resources, os.environ)[0]


def complete_s3_records(event: dict[str, Any], endpoint: str, images_bucket: str) -> None:
    """Describe each object the event names as S3 would announce it now; a CliError names those that do not exist.

    Records naming another bucket, and malformed ones, are left for the handler to refuse as in AWS.
    """
    from botocore.exceptions import ClientError

    s3 = local_client(endpoint, "s3")
    missing: list[tuple[str, str]] = []
    for record in event.get("Records") or []:
        try:
            bucket, obj = record["s3"]["bucket"]["name"], record["s3"]["object"]
            key = unquote_plus(obj["key"])
        except (KeyError, TypeError):
            continue
        if bucket != images_bucket or not str(record.get("eventName") or "").startswith("ObjectCreated:"):
            continue
        request = {"Bucket": bucket, "Key": key, **({"VersionId": obj["versionId"]} if obj.get("versionId") else {})}
        try:
            head = s3.head_object(**request)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in _MISSING_OBJECT:
                missing.append((bucket, key))
                continue
            raise
        obj["eTag"] = str(head.get("ETag", "")).strip('"')
        obj["size"] = int(head.get("ContentLength", 0))
        if head.get("VersionId") and head["VersionId"] != "null":
            obj["versionId"] = head["VersionId"]
    if missing:
        bucket, key = missing[0]
        names = ", ".join(f"s3://{b}/{k}" for b, k in missing)
        one, it = ("object is", "it") if len(missing) == 1 else (f"{len(missing)} objects are", "them")
        raise CliError(
            f"the event's {one} not in the local stack's bucket: {names}; upload {it} first, e.g. "
            f"`aws --endpoint-url {endpoint} s3 cp IMAGE s3://{bucket}/{key}` "
            f"(`vehicle-ocr upload IMAGE --kind plate|vehicle_license` puts IMAGE at plates/ or vehicle-licenses/ "
            "plus its file name), then invoke again"
        )


# ------------------------------------------------------------------------------------------------ the command
def _limits(template: dict[str, Any], logical_id: str) -> tuple[int, float]:
    """(MemorySize, Timeout) of the function, the template's Globals merged."""
    globals_function = template.get("Globals", {}).get("Function", {})
    properties = template["Resources"][logical_id].get("Properties", {})
    memory = properties.get("MemorySize", globals_function.get("MemorySize", 128))
    timeout = properties.get("Timeout", globals_function.get("Timeout", 3))
    return int(memory), float(timeout)


def invoke(event_path: Path, function: str | None, endpoint: str) -> dict[str, Any]:
    """Run the handler on the event against the stack at ``endpoint``; its response (CliError if it raised)."""
    from vehicle_ocr_local.api_gateway import LocalLambdaContext
    from vehicle_ocr_local.stack import load_function

    event = read_event(event_path)
    function = function or function_for(event, event_path)
    logical_id = FUNCTIONS[function]
    endpoint = endpoint.rstrip("/")

    # Every AWS call of this process goes to the local stack, with throw-away credentials, as the stack's own do.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - the local stack accepts any credentials
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        POWERTOOLS_TRACE_DISABLED="1",
    )
    resources = running_resources(endpoint)
    environment = function_environment(resources, function)
    if function == "recognize":
        complete_s3_records(event, endpoint, environment.get("IMAGES_BUCKET", ""))

    memory, timeout = _limits(resources.template, logical_id)
    # The function's logs and metrics go to stderr (as `sam local invoke` shows them); stdout is the response's.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            module = load_function(function, f"vehicle_ocr_local_invoke_{function}_{uuid.uuid4().hex[:8]}", environment)
        except Exception as error:
            raise CliError(f"{logical_id} failed its cold start: {_one_line(error)}") from None
        context = LocalLambdaContext(logical_id, memory_limit_in_mb=memory, timeout_seconds=timeout)
        try:
            response = module.lambda_handler(event, context)
        except Exception as error:
            raise CliError(f"{logical_id} raised {_one_line(error)}") from None
    return response


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def run_invoke(args: Any) -> int:
    response = invoke(args.event, args.function, args.endpoint)
    print(json.dumps(response, ensure_ascii=False, indent=2, default=str), flush=True)
    return 0

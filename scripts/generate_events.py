"""Regenerate events/: S3 put events and API Gateway proxy events as `sam local generate-event` writes them,
plus variants.

sam URL-encodes the key itself (UTF-8 percent-encoding, literal "+" → "%2B", space → "%20"). Real S3
notifications write a space as "+", so that one variant is rewritten to S3's form: the handler must
decode both. Run: .venv/bin/python scripts/generate_events.py
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, unquote

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
BUCKET = "vehicle-ocr-images"
SAM = str(Path(sys.executable).with_name("sam"))

# name → decoded key (what the user typed)
SINGLE = {
    "s3-put-plate": "plates/cam1/car.jpg",
    "s3-put-vehicle-license": "vehicle-licenses/front.jpg",
    "s3-put-chinese-key": "plates/cam1/沪A 1.jpg",
    "s3-put-key-with-space": "plates/gate 2/front car.jpg",
    "s3-put-key-with-plus": "vehicle-licenses/a+b.jpg",
    "s3-put-unknown-prefix": "receipts/scan.jpg",
    "s3-put-folder-marker": "plates/cam3/",
}


def generate(key: str) -> dict:
    out = subprocess.run(  # noqa: S603 - fixed command, our own arguments
        [SAM, "local", "generate-event", "s3", "put", "--bucket", BUCKET, "--key", key],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    return json.loads(out.stdout)


# API Gateway REST proxy requests: name → (resource, raw path as sent, path parameters, query string pairs).
# REST APIs pass `path` still percent-encoded and `pathParameters` decoded; sam's generator knows
# neither, so its event is adjusted to what API Gateway sends.
API = {
    "apigw-get-result": ("/results/{id}", "/results/0123456789abcdef0123456789abcdef", {"id": None}, []),
    "apigw-list-results": ("/results", "/results", {}, [("kind", "plate"), ("status", "SUCCEEDED"), ("limit", "2")]),
    "apigw-result-by-object": (
        "/results",
        "/results",
        {},
        [("bucket", "vehicle-ocr-images"), ("key", "plates/cam1/沪A 1.jpg")],
    ),
    "apigw-plate-encoded": ("/plates/{number}", "/plates/" + quote("沪A0762学"), {"number": None}, []),
    "apigw-plate-dotted": ("/plates/{number}", "/plates/" + quote("沪a·0762学"), {"number": None}, [("limit", "5")]),
    "apigw-vehicle": ("/vehicles/{vin}", "/vehicles/LSVAU218XN2183294", {"vin": None}, []),
    "apigw-openapi": ("/openapi.json", "/openapi.json", {}, []),
    "apigw-bad-limit": ("/results", "/results", {}, [("limit", "500")]),
    "apigw-repeated-query": ("/results", "/results", {}, [("kind", "plate"), ("kind", "vehicle_license")]),
}


def generate_api(resource: str, raw_path: str, path_parameters: dict, query: list[tuple[str, str]]) -> dict:
    out = subprocess.run(  # noqa: S603 - fixed command, our own arguments
        [
            SAM,
            "local",
            "generate-event",
            "apigateway",
            "aws-proxy",
            "--method",
            "GET",
            "--stage",
            "v1",
            "--resource",
            resource,
            "--path",
            raw_path.lstrip("/"),
            "--body",
            "",
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    event = json.loads(out.stdout)
    segments = dict(zip(resource.split("/"), raw_path.split("/"), strict=True))
    event.update(
        path=raw_path,
        body=None,
        isBase64Encoded=False,
        stageVariables=None,
        pathParameters={name: unquote(segments["{" + name + "}"]) for name in path_parameters} or None,
        queryStringParameters={name: value for name, value in query} or None,
        multiValueQueryStringParameters={name: [v for n, v in query if n == name] for name, _ in query} or None,
    )
    context = event["requestContext"]
    context.update(resourcePath=resource, httpMethod="GET", path=f"/{context['stage']}{raw_path}")
    # AWS_IAM authorisation: API Gateway names the signing principal in the identity.
    context["identity"].update(
        accessKey="AKIAIOSFODNN7EXAMPLE",
        accountId="123456789012",
        caller="AIDAEXAMPLECALLER",
        user="AIDAEXAMPLECALLER",
        userArn="arn:aws:iam::123456789012:user/dashboard",
    )
    return event


def write(name: str, event: dict) -> None:
    (EVENTS / f"{name}.json").write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    EVENTS.mkdir(exist_ok=True)
    for name, key in SINGLE.items():
        event = generate(key)
        if " " in key and "+" not in key:
            obj = event["Records"][0]["s3"]["object"]
            obj["key"] = obj["key"].replace("%20", "+")
        if key.endswith("/"):
            event["Records"][0]["s3"]["object"]["size"] = 0  # the console's "Create folder" object
        write(name, event)

    # Several records in one event (S3 may batch): a plate, a licence and a second plate.
    records = [
        generate(key)["Records"][0] for key in ("plates/lane1/a.jpg", "vehicle-licenses/b.png", "plates/lane2/c.jpg")
    ]
    write("s3-put-multiple-records", {"Records": records})

    # A record without an object key (hand-made or truncated event): must end as a MALFORMED_EVENT message.
    malformed = generate("plates/cam1/missing.jpg")
    good = copy.deepcopy(malformed["Records"][0])
    del malformed["Records"][0]["s3"]["object"]["key"]
    malformed["Records"].append(good)
    write("s3-put-malformed", malformed)

    for name, spec in API.items():
        write(name, generate_api(*spec))


if __name__ == "__main__":
    main()

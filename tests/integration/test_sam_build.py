"""`sam build` produces a deployable artifact: the handler, and a layer with our package and its dependencies."""

from __future__ import annotations

import gzip
import json
import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path

import botocore
import botocore.session
import pytest

from tests.conftest import ROOT

BUILD_SCRIPT = ROOT / "scripts" / "sam-build.sh"
LAYER = ROOT / "layers" / "common"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(path) -> dict[str, tuple[str, list[str]]]:
    """``name -> (version, hashes)`` of a pip requirements file (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;]+)\s*(.*)", line)
        assert match, f"{path.name}: not pinned with ==: {line}"
        name, _extras, version, rest = match.groups()
        pins[_canonical(name)] = (version, re.findall(r"--hash=sha256:([0-9a-f]{64})", rest))
    return pins


def _lock_pins() -> dict[str, str]:
    return {name: version for name, (version, _) in _requirements(LAYER / "requirements.txt").items()}


def test_layer_dependencies_are_locked_with_hashes():
    # Given the layer's top-level intent (requirements.in) and its lock (requirements.txt)
    intent = _requirements(LAYER / "requirements.in")
    lock = _requirements(LAYER / "requirements.txt")
    # Then every package of the tree is pinned to one version with at least one hash, so a
    # rebuild months later installs the same files or fails
    assert lock and all(hashes for _, hashes in lock.values()), [n for n, (_, h) in lock.items() if not h]
    # And every top-level requirement is in the lock at the version asked for, with the
    # dependencies that bring botocore along (the whole tree, not only the top level)
    assert {name: version for name, (version, _) in intent.items()} == {name: lock[name][0] for name in intent}
    assert {"botocore", "s3transfer", "urllib3", "pydantic-core", "aws-xray-sdk"} <= set(lock)
    # And the layer's build installs exactly that tree: hashes required, no dependency resolved afresh
    makefile = (LAYER / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes" in makefile and "--no-deps" in makefile


def python312_available() -> bool:
    return subprocess.run([str(BUILD_SCRIPT), "--check"], capture_output=True).returncode == 0  # noqa: S603


@pytest.mark.skipif(not python312_available(), reason="sam build needs python3.12 (the Lambda runtime)")
def test_sam_build_packages_handler_and_layer(tmp_path):
    # Given the repository as it is
    build_dir = tmp_path / "build"

    # When sam builds it
    result = subprocess.run(  # noqa: S603 - our own script
        [str(BUILD_SCRIPT), str(build_dir)], capture_output=True, text=True, timeout=600
    )

    # Then it succeeds, with the thin handler alone in the function and everything else in the layer
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    function_dir = build_dir / "RecognizeFunction"
    assert (function_dir / "app.py").is_file()
    assert not (function_dir / "vehicle_ocr").exists()
    layer = build_dir / "CommonLayer" / "python"
    for module in ("vehicle_ocr/pipeline.py", "vehicle_ocr/codes.py", "aws_lambda_powertools", "requests", "boto3"):
        assert (layer / module).exists(), module
    # The development-only package stays out of what is deployed
    assert not (layer / "vehicle_ocr_local").exists()
    # And the layer holds exactly the locked tree, at the locked versions
    installed = {}
    for dist_info in layer.glob("*.dist-info"):
        name, version = dist_info.name[: -len(".dist-info")].rsplit("-", 1)
        installed[_canonical(name)] = version
    # but requests' character detection, which the functions never use (answers are read as bytes)
    assert installed == {name: version for name, version in _lock_pins().items() if name != "charset-normalizer"}
    assert not (layer / "charset_normalizer").exists()
    assert (build_dir / "template.yaml").is_file()
    # And the handler's package and requests import from the layer without a warning (-W error)
    quiet = subprocess.run(  # noqa: S603 - the build's own python3.12
        [_python312(), "-S", "-W", "error", "-c", IMPORTS.format(layer=str(layer))],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    # And botocore keeps the models of the services the code makes clients for, and only those
    kept = sorted(path.name for path in (layer / "botocore" / "data").iterdir() if path.is_dir())
    assert kept == sorted(_services_used())
    # And from the layer alone, on the Lambda runtime, each service's client sends a request the code
    # makes, resolved to its endpoint in the commercial and the China partition, signed and its answer
    # parsed (the layer keeps only these services' models and endpoints, without their documentation)
    made = subprocess.run(  # noqa: S603 - the build's own python3.12
        [_python312(), "-S", "-c", REQUESTS.format(layer=str(layer), requests=SENT_REQUESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", "")},  # no AWS_* variable of the test run (an endpoint URL, say)
    )
    assert made.returncode == 0, made.stderr[-2000:]
    assert sorted(kept) == sorted(SENT_REQUESTS)
    assert json.loads(made.stdout) == {
        f"{service} {region}": f"{SENT_REQUESTS[service][0]}{service}.{region}.amazonaws.com{suffix}"
        for service in kept
        for region, suffix in (("eu-west-1", ""), ("cn-north-1", ".cn"))
    }
    # And the models it keeps carry no documentation of operations and shapes (read by help() only)
    s3_model = next((layer / "botocore" / "data" / "s3").glob("*/service-2.json.gz"))
    s3 = json.loads(gzip.decompress(s3_model.read_bytes()))
    assert not [name for name, shape in s3["shapes"].items() if "documentation" in shape]
    assert not [name for name, operation in s3["operations"].items() if "documentation" in operation]
    # And they keep the operations aws-operations.txt lists, and only those: each operation the code
    # calls (ours, and the Powertools utilities it uses) is there, or a client would have no method for it
    kept_operations = {
        (model.parts[-3], operation)
        for model in (layer / "botocore" / "data").glob("*/*/service-2.json.gz")
        for operation in json.loads(gzip.decompress(model.read_bytes()))["operations"]
    }
    assert kept_operations == _listed_operations()
    missing = _operations_called(layer) - kept_operations
    assert not missing, f"called but not in layers/common/aws-operations.txt: {sorted(missing)}"
    shutil.rmtree(build_dir)


# One request per service, as the code sends it: (the host's prefix, the operation, its parameters).
SENT_REQUESTS = {
    "s3": ("images.", "get_object", {"Bucket": "images", "Key": "plates/沪A 1+2.jpg"}),
    "dynamodb": ("", "get_item", {"TableName": "results", "Key": {"pk": {"S": "id"}, "sk": {"S": "record"}}}),
    "events": ("", "put_events", {"Entries": [{"Source": "vehicle-ocr", "DetailType": "d", "Detail": "{}"}]}),
    "sqs": ("", "send_message", {"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/failures", "MessageBody": "m"}),
    "ssm": ("", "get_parameter", {"Name": "/vehicle-ocr/tianapi-key", "WithDecryption": True}),
}

IMPORTS = """
import sys
sys.path.insert(0, {layer!r})
import vehicle_ocr.bootstrap, vehicle_ocr.query_api, requests
assert requests.compat.chardet is None, requests.compat.chardet
"""

REQUESTS = """
import io, json, sys
from urllib.parse import urlsplit
sys.path.insert(0, {layer!r})
import boto3
from botocore.awsrequest import AWSResponse

class Raw(io.BytesIO):
    def stream(self, **_):
        yield self.getvalue()

sent = {{}}
for service, (_, operation, parameters) in {requests!r}.items():
    for region in ("eu-west-1", "cn-north-1"):
        client = boto3.client(service, region_name=region, aws_access_key_id="x", aws_secret_access_key="y")
        def answer(request, **_):  # instead of the network: where it would have gone, and an empty answer
            sent[f"{{service}} {{region}}"] = urlsplit(request.url).netloc
            return AWSResponse(request.url, 200, {{}}, Raw(b"" if service == "s3" else b"{{}}"))
        client.meta.events.register("before-send", answer)
        getattr(client, operation)(**parameters)
print(json.dumps(sent))
"""


def _services_used() -> set[str]:
    """The AWS services the deployed code makes clients for: boto3 clients, and Powertools' parameters (SSM)."""
    code = "\n".join(
        path.read_text(encoding="utf-8")
        for folder in (LAYER / "vehicle_ocr", ROOT / "functions")
        for path in folder.rglob("*.py")
    )
    services = set(re.findall(r"""client\(\s*["']([a-z0-9-]+)["']""", code))
    if "parameters.get_parameter" in code:
        services.add("ssm")
    return services


def _listed_operations() -> set[tuple[str, str]]:
    # Read as the build reads it: the layer's own script (not a package, so loaded from its file).
    read_operations = runpy.run_path(str(LAYER / "slim_botocore.py"))["read_operations"]
    listed = read_operations(LAYER / "aws-operations.txt")
    return {(service, operation) for service, operations in listed.items() for operation in operations}


def _operations_called(layer: Path) -> set[tuple[str, str]]:
    """(service, operation) of every client method the deployed code may call, found in its text.

    Read from our code and from the Powertools utilities it imports, as the layer ships them
    (their whole package: the parameters utility calls SSM for us). Every attribute read counts,
    called or not (``send = sqs.send_message``), and a name counts for every kept service that has
    an operation of that name, so the set can only be too large, never miss a call.
    """
    ours = [path for folder in (LAYER / "vehicle_ocr", ROOT / "functions") for path in folder.rglob("*.py")]
    our_code = _read(ours)
    # boto3's resources and transfer helpers call operations no attribute names: the code uses neither
    assert not re.search(r"\.resource\(|\b(?:upload|download)_(?:file|fileobj)\b", our_code)
    utilities = set(re.findall(r"aws_lambda_powertools\.utilities\.(\w+)", our_code))
    for names in re.findall(r"from aws_lambda_powertools\.utilities import \(?([\w\s,]+)\)?", our_code):
        utilities |= {name.split()[0] for name in names.split(",") if name.strip()}
    powertools = layer / "aws_lambda_powertools" / "utilities"
    code = our_code + _read([path for name in utilities for path in (powertools / name).rglob("*.py")])
    names = set(re.findall(r"\.([a-z][a-z0-9_]*)\b(?!\s*=[^=])", code))
    names |= set(re.findall(r"""get_(?:paginator|waiter)\(\s*["']([a-z0-9_]+)""", code))
    session = botocore.session.get_session()
    return {
        (service, operation)
        for service in _services_used()
        for operation in session.get_service_model(service).operation_names
        if botocore.xform_name(operation) in names
    }


def _read(paths) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in paths)


def _python312() -> str:
    return subprocess.run(  # noqa: S603 - our own script
        [str(BUILD_SCRIPT), "--python"], capture_output=True, text=True, check=True
    ).stdout.strip()

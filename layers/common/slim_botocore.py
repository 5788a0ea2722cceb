"""Slim botocore's data folder in the built layer to what the functions use (run by the Makefile).

usage: python slim_botocore.py DATA_DIR OPERATIONS_FILE

OPERATIONS_FILE (aws-operations.txt) lists the operations the functions call, by service. Every
cold start reads this data: creating a client lists the service folders, parses the service's
model and endpoint rules, and the session parses endpoints.json once. What goes:

- the model folders of services no function makes a client for (some 400: listing them took
  0.1 s of every cold start), and the kept services' older API versions (never loaded);
- from the kept models, the operations no function calls and the shapes only those use (S3 has
  116 operations, the functions call one): parsing the models was half of creating the clients;
- the documentation of what is kept (only `help()` and generated docs read it, never a request),
  and the examples files (read by the docs only);
- paginators and waiters of operations that are gone;
- the other services' entries in endpoints.json (1.2 MB, parsed whole for five services);
- the indentation of the JSON the kept services' clients parse.

What is kept is the same clients' requests, unchanged: tests/integration/test_sam_build.py makes
a client of each service from the built layer, sends a request the code sends and resolves its
endpoints, and checks the operations file against the calls in the code.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path
from typing import Any

DOCUMENTATION_KEYS = ("documentation", "documentationUrl")


def read_operations(path: Path) -> dict[str, set[str]]:
    """``service -> operations`` from the operations file (``#`` starts a comment)."""
    operations: dict[str, set[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if words := line.split("#", 1)[0].split():
            service, *names = words
            operations.setdefault(service, set()).update(names)
    return operations


def only_operations(model: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """The service model with only the ``keep`` operations and the shapes they reach.

    Reached means named by a ``"shape"`` key anywhere in a kept operation or a reached shape, so
    wherever botocore refers to shapes from, nothing a kept operation needs is dropped."""
    if unknown := keep - set(model["operations"]):
        service = model["metadata"].get("serviceId", "?")
        raise SystemExit(f"slim_botocore: {service} has no operation {', '.join(sorted(unknown))}")
    model["operations"] = {name: operation for name, operation in model["operations"].items() if name in keep}
    shapes = model["shapes"]
    reached: set[str] = set()
    pending = _shape_references(model["operations"])
    while pending:
        name = pending.pop()
        if name not in reached:
            reached.add(name)
            pending |= _shape_references(shapes[name])
    model["shapes"] = {name: shape for name, shape in shapes.items() if name in reached}
    return model


def _shape_references(part: Any) -> set[str]:
    """Every ``"shape": NAME`` anywhere in ``part``."""
    found: set[str] = set()
    pending = [part]
    while pending:
        part = pending.pop()
        if isinstance(part, dict):
            if isinstance(part.get("shape"), str):
                found.add(part["shape"])
            pending.extend(part.values())
        elif isinstance(part, list):
            pending.extend(part)
    return found


def without_documentation(model: dict[str, Any]) -> dict[str, Any]:
    """The service model without the documentation of its operations, shapes and their members.

    Only there: botocore reads those with .get(), but requires the documentation of the
    endpoint's client context parameters (in the metadata), and a member may be *named*
    "documentation" (so keys are dropped from definitions, never from a members mapping).
    """
    for operation in model.get("operations", {}).values():
        _drop_documentation(operation)
        refs = [operation.get("input"), operation.get("output"), *operation.get("errors", [])]
        for ref in refs:
            _drop_documentation(ref)
    for shape in model.get("shapes", {}).values():
        _drop_documentation(shape)
        for member in shape.get("members", {}).values():
            _drop_documentation(member)
        for part in ("member", "key", "value"):
            _drop_documentation(shape.get(part))
    return model


def _drop_documentation(definition: Any) -> None:
    if isinstance(definition, dict):
        for key in DOCUMENTATION_KEYS:
            definition.pop(key, None)


def slim(data_dir: Path, operations: dict[str, set[str]]) -> None:
    for folder in data_dir.iterdir():
        if folder.is_dir() and folder.name not in operations:
            shutil.rmtree(folder)
    for service, keep in operations.items():
        # botocore loads the newest API version that has a model; the others are never read.
        versions = sorted(path.parent for path in (data_dir / service).glob("*/service-2.json.gz"))
        if not versions:
            raise SystemExit(f"slim_botocore: botocore has no model for {service}")
        for folder in (data_dir / service).iterdir():
            if folder != versions[-1]:
                shutil.rmtree(folder)
        _slim_version(versions[-1], keep)
    endpoints_file = data_dir / "endpoints.json"
    endpoints = json.loads(endpoints_file.read_text(encoding="utf-8"))
    for partition in endpoints["partitions"]:
        # An endpoint prefix may differ from the model's folder name; the kept services' do not.
        partition["services"] = {name: entry for name, entry in partition["services"].items() if name in operations}
    endpoints_file.write_text(json.dumps(endpoints, separators=(",", ":")), encoding="utf-8")


def _slim_version(folder: Path, keep: set[str]) -> None:
    model_file = folder / "service-2.json.gz"
    model = only_operations(json.loads(gzip.decompress(model_file.read_bytes())), keep)
    _write_gzipped(model_file, without_documentation(model))
    rules_file = folder / "endpoint-rule-set-1.json.gz"
    _write_gzipped(rules_file, json.loads(gzip.decompress(rules_file.read_bytes())))
    for examples in folder.glob("examples-1*.json"):
        examples.unlink()
    for paginators in folder.glob("paginators-1*.json"):
        data = json.loads(paginators.read_text(encoding="utf-8"))
        section = data.get("merge", data)  # an .sdk-extras file merges into the paginators
        section["pagination"] = {name: entry for name, entry in section["pagination"].items() if name in keep}
        paginators.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
    for waiters in folder.glob("waiters-2.json"):
        data = json.loads(waiters.read_text(encoding="utf-8"))
        data["waiters"] = {name: waiter for name, waiter in data["waiters"].items() if waiter["operation"] in keep}
        waiters.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")


def _write_gzipped(path: Path, data: Any) -> None:
    # Without indentation: S3's endpoint rules are 0.9 MB pretty-printed, 0.12 MB minified, and
    # parse in 60% of the time. mtime=0: the same build gives the same bytes.
    path.write_bytes(gzip.compress(json.dumps(data, separators=(",", ":")).encode(), mtime=0))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python slim_botocore.py DATA_DIR OPERATIONS_FILE")
    slim(Path(sys.argv[1]), read_operations(Path(sys.argv[2])))

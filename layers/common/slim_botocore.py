"""Slim botocore's data folder in the built layer to what the functions load (run by the Makefile).

usage: python slim_botocore.py DATA_DIR SERVICE...

Every cold start reads this data: creating a client lists the service folders, parses the
service's model and endpoint rules, and the session parses endpoints.json once. What goes:

- the model folders of services no function makes a client for (some 400: listing them took
  0.1 s of every cold start);
- the documentation of the kept models' operations and shapes (five sixths of the S3 model's
  1.3 MB: only `help()` and generated docs read it, never a request);
- the other services' entries in endpoints.json (1.2 MB, parsed whole for five services);
- the indentation of the JSON the kept services' clients parse.

The result is the same clients, sending the same requests: tests/integration/test_sam_build.py
makes a client of each service from the built layer and resolves its endpoints.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path
from typing import Any

DOCUMENTATION_KEYS = ("documentation", "documentationUrl")


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


def slim(data_dir: Path, services: set[str]) -> None:
    for folder in data_dir.iterdir():
        if folder.is_dir() and folder.name not in services:
            shutil.rmtree(folder)
    for model in data_dir.glob("*/*/service-2.json.gz"):
        _write_gzipped(model, without_documentation(json.loads(gzip.decompress(model.read_bytes()))))
    for rules in data_dir.glob("*/*/endpoint-rule-set-1.json.gz"):
        _write_gzipped(rules, json.loads(gzip.decompress(rules.read_bytes())))
    endpoints_file = data_dir / "endpoints.json"
    endpoints = json.loads(endpoints_file.read_text(encoding="utf-8"))
    for partition in endpoints["partitions"]:
        # An endpoint prefix may differ from the model's folder name; the kept services' do not.
        partition["services"] = {name: entry for name, entry in partition["services"].items() if name in services}
    endpoints_file.write_text(json.dumps(endpoints, separators=(",", ":")), encoding="utf-8")


def _write_gzipped(path: Path, data: Any) -> None:
    # Without indentation: S3's endpoint rules are 0.9 MB pretty-printed, 0.12 MB minified, and
    # parse in 60% of the time. mtime=0: the same build gives the same bytes.
    path.write_bytes(gzip.compress(json.dumps(data, separators=(",", ":")).encode(), mtime=0))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python slim_botocore.py DATA_DIR SERVICE...")
    slim(Path(sys.argv[1]), set(sys.argv[2:]))

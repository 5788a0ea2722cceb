#!/usr/bin/env python3
"""Derive the container-image deployment (RecognizeFunction with the offline engine) from template.yaml.

    .venv/bin/python scripts/local_engine_template.py [-t template.yaml] [-o build/template.local-engine.json]

template.yaml stays the one source of truth; this writes its variant in which RecognizeFunction
is an image built from functions/recognize/Dockerfile.local-engine (the engine's ~370 MB do not
fit a zip function and its layers) and both kinds default to the `local` provider. What changes,
and nothing else:

- RecognizeFunction: `PackageType: Image` with the Dockerfile in its Metadata, instead of
  CodeUri, Handler, Runtime and Layers (an image function may have none of them); 2048 MB,
  because onnxruntime is CPU-bound and Lambda gives CPU in proportion to memory.
- `Runtime` moves out of `Globals.Function` into every zip function: SAM applies Globals to
  every function, and an image function with a Runtime fails the transform.
- PlateProvider / LicenseProvider default to `local` (the paid providers and chains such as
  `tianapi,local` stay available through the parameters).
- Paths are rewritten relative to the output file, so `sam build -t` works from build/.

The output is JSON (CloudFormation's other syntax; the YAML short forms become their long
forms), checked by scripts/check-template.sh exactly like template.yaml and deployed with
`make deploy-local-engine` (docs/local-engine-container.md).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
FUNCTION = "RecognizeFunction"
DOCKERFILE = "functions/recognize/Dockerfile.local-engine"
MEMORY_MB = 2048
# Properties an image function may not have: the image holds the code, the handler and the runtime.
ZIP_ONLY = ("CodeUri", "Handler", "Runtime", "Layers")
PATH_PROPERTIES = ("CodeUri", "ContentUri")
LOCAL_DEFAULTS = ("PlateProvider", "LicenseProvider")


def local_engine_template(template: dict[str, Any], *, template_dir: Path, output_dir: Path) -> dict[str, Any]:
    """The image variant of a parsed template.yaml (the input is not modified)."""
    derived = copy.deepcopy(template)
    resources = derived["Resources"]
    if resources.get(FUNCTION, {}).get("Type") != "AWS::Serverless::Function":
        raise ValueError(f"{FUNCTION} is not an AWS::Serverless::Function in the template")

    def relocated(path: str) -> str:
        return os.path.relpath(template_dir / path, output_dir)

    runtime = derived.get("Globals", {}).get("Function", {}).pop("Runtime", None)
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        for key in PATH_PROPERTIES:
            if isinstance(properties.get(key), str):
                properties[key] = relocated(properties[key])
        if resource["Type"] == "AWS::Serverless::Function" and name != FUNCTION and runtime:
            properties.setdefault("Runtime", runtime)

    function = resources[FUNCTION]
    properties = function["Properties"]
    for key in ZIP_ONLY:
        properties.pop(key, None)
    properties["PackageType"] = "Image"
    properties["MemorySize"] = MEMORY_MB
    function.setdefault("Metadata", {}).update(
        {"DockerContext": relocated("."), "Dockerfile": DOCKERFILE, "DockerTag": "local-engine"}
    )

    for parameter in LOCAL_DEFAULTS:
        spec = derived["Parameters"][parameter]
        if "local" not in spec.get("AllowedValues", ["local"]):
            raise ValueError(f"parameter {parameter} does not allow the local provider")
        spec["Default"] = "local"
    image_note = "(RecognizeFunction as a container image with the offline engine)"
    derived["Description"] = f"{derived.get('Description', '').rstrip()} {image_note}"
    return derived


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-t", "--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("-o", "--output", default=str(ROOT / "build" / "template.local-engine.json"))
    args = parser.parse_args(argv)
    source = Path(args.template).resolve()
    output = Path(args.output).resolve()
    template = yaml_parse(source.read_text(encoding="utf-8"))
    try:
        derived = local_engine_template(template, template_dir=source.parent, output_dir=output.parent)
    except (KeyError, ValueError) as exc:
        print(f"local_engine_template: {exc}", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(derived, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {output.relative_to(Path.cwd()) if output.is_relative_to(Path.cwd()) else output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

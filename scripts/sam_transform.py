#!/usr/bin/env python3
"""Expand the SAM template into plain CloudFormation, offline.

    .venv/bin/python scripts/sam_transform.py [-t template.yaml] [-o build/template.transformed.json]

Uses aws-sam-translator (the library behind the AWS::Serverless transform) with a managed
policy loader that answers from a fixed table instead of calling IAM, so it needs neither
network nor AWS credentials. The output is what cfn-lint and checkov look at in
scripts/check-template.sh.

Resource Metadata is passed through to the generated resources (passthrough_metadata), so
per-resource `checkov: skip:` justifications written on an AWS::Serverless::Function also
apply to the AWS::Lambda::Function (and role, permissions...) it expands to.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# AWS managed policies a SAM template may name in `Policies:` by bare name. SAM only consults
# this map for such names; the ones it adds itself (AWSLambdaBasicExecutionRole,
# AWSXrayWriteOnlyAccess) it writes as ARNs directly. Unknown names fail loudly below.
MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for path, name in (
        ("service-role/", "AWSLambdaBasicExecutionRole"),
        ("service-role/", "AWSLambdaVPCAccessExecutionRole"),
        ("", "AWSXrayWriteOnlyAccess"),
        ("", "AWSXRayDaemonWriteAccess"),
        ("", "CloudWatchLambdaInsightsExecutionRolePolicy"),
    )
}


# Local code locations (what `sam build`/`sam package` would upload) -> placeholder S3 URIs,
# the same substitution `sam validate` makes, since the translator only accepts S3 locations.
LOCAL_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}


def replace_local_code_uris(template: dict[str, Any]) -> None:
    def placeholder(value: Any) -> Any:
        if isinstance(value, str) and not value.startswith("s3://"):
            return "s3://offline-placeholder-bucket/" + (value.strip("./") or "root")
        return value

    for resource in template.get("Resources", {}).values():
        prop = LOCAL_CODE_PROPERTIES.get(resource.get("Type", ""))
        props = resource.get("Properties") or {}
        if prop and prop in props:
            props[prop] = placeholder(props[prop])
        # An image function built from a Dockerfile gets its ImageUri from `sam build`; offline, an
        # ECR-shaped placeholder stands in, as the S3 one does for zip code.
        if props.get("PackageType") == "Image" and "ImageUri" not in props:
            props["ImageUri"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/offline-placeholder:latest"
    globals_function = (template.get("Globals") or {}).get("Function") or {}
    if "CodeUri" in globals_function:
        globals_function["CodeUri"] = placeholder(globals_function["CodeUri"])


class OfflineManagedPolicyLoader:
    """Stands in for samtranslator's ManagedPolicyLoader (which lists policies through IAM)."""

    def load(self) -> dict[str, str]:
        return dict(MANAGED_POLICIES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-t", "--template", default="template.yaml")
    parser.add_argument("-o", "--output", default="build/template.transformed.json")
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    args = parser.parse_args(argv)

    # samtranslator reads the region (for ARN partitions) from boto3's session; no call is made.
    os.environ.setdefault("AWS_DEFAULT_REGION", args.region)
    os.environ.setdefault("AWS_REGION", args.region)

    # No feature-toggle config offline: every toggle counts as off (as for the CLI), and the
    # translator warns once per lookup ("Feature '...' not available"); that is noise here.
    logging.getLogger("samtranslator.feature_toggle.feature_toggle").setLevel(logging.ERROR)

    template: dict[str, Any] = yaml_parse(Path(args.template).read_text(encoding="utf-8"))
    replace_local_code_uris(template)
    try:
        transformed = transform(
            template,
            parameter_values={},
            managed_policy_loader=OfflineManagedPolicyLoader(),  # type: ignore[arg-type]
            passthrough_metadata=True,
        )
    except InvalidDocumentException as exc:
        for cause in exc.causes:
            print(f"sam_transform: {cause.message}", file=sys.stderr)
        return 1

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(transformed, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(f"sam_transform: {args.template} -> {out} ({len(transformed.get('Resources', {}))} resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

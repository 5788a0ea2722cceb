"""The container-image deployment (RecognizeFunction with the offline engine) is derived from
template.yaml by scripts/local_engine_template.py; scripts/check-template.sh runs sam validate,
cfn-lint and checkov on it. These tests pin what the derivation may change, and that it expands."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from scripts.local_engine_template import ZIP_ONLY
from scripts.local_engine_template import main as derive
from scripts.sam_transform import main as sam_transform
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def derived_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("build") / "template.local-engine.json"
    assert derive(["-t", str(ROOT / "template.yaml"), "-o", str(output)]) == 0
    return output


@pytest.fixture(scope="module")
def original() -> dict[str, Any]:
    return yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def derived(derived_path: Path) -> dict[str, Any]:
    return json.loads(derived_path.read_text(encoding="utf-8"))


def test_recognize_function_becomes_an_image_built_from_the_engine_dockerfile(derived, derived_path):
    # Given the derived template
    function = derived["Resources"]["RecognizeFunction"]
    # Then RecognizeFunction is an image function without any zip-only property
    assert function["Properties"]["PackageType"] == "Image"
    assert not set(ZIP_ONLY) & set(function["Properties"])
    # And sam build finds the Dockerfile from where the derived template lies
    context = (derived_path.parent / function["Metadata"]["DockerContext"]).resolve()
    assert (context / function["Metadata"]["Dockerfile"]).is_file()
    assert context == ROOT.resolve()
    # And it keeps enough memory for onnxruntime's CPU-bound work
    assert function["Properties"]["MemorySize"] >= 2048


def test_everything_else_is_template_yaml_unchanged(original, derived, derived_path):
    # Given both templates
    # Then the same resources exist, and all but the changed function are identical apart from paths
    assert set(derived["Resources"]) == set(original["Resources"])
    assert derived["Outputs"] == original["Outputs"]
    for name, resource in original["Resources"].items():
        if name == "RecognizeFunction":
            continue
        mine = json.loads(json.dumps(derived["Resources"][name]))
        theirs = json.loads(json.dumps(resource))
        for key in ("CodeUri", "ContentUri", "Runtime"):
            if key in theirs.get("Properties", {}) or key in mine.get("Properties", {}):
                mine["Properties"].pop(key, None)
                theirs["Properties"].pop(key, None)
        assert mine == theirs, name
    # And the recognise function keeps its environment, permissions boundary and retries
    for key in ("Environment", "PermissionsBoundary", "EventInvokeConfig", "ReservedConcurrentExecutions"):
        assert derived["Resources"]["RecognizeFunction"]["Properties"][key] == json.loads(
            json.dumps(original["Resources"]["RecognizeFunction"]["Properties"][key])
        )


def test_zip_functions_keep_their_runtime_and_code_paths(derived, derived_path):
    # Given the derived template, where Runtime left Globals (an image function may not have one)
    assert "Runtime" not in derived["Globals"]["Function"]
    for name, resource in derived["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and properties.get("PackageType") != "Image":
            # Then every zip function names the Lambda runtime itself
            assert properties["Runtime"] == "python3.12", name
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                # And its code is found from the derived template's folder
                assert (derived_path.parent / properties[key]).resolve().is_dir(), (name, key)


def test_both_kinds_default_to_the_offline_engine(derived):
    # Given the derived template: no paid key is needed to deploy it
    parameters = derived["Parameters"]
    assert parameters["PlateProvider"]["Default"] == "local"
    assert parameters["LicenseProvider"]["Default"] == "local"
    # And a chain with a paid provider first stays possible
    assert re.fullmatch(parameters["PlateProviders"]["AllowedPattern"], "tianapi,local")
    assert re.fullmatch(parameters["LicenseProviders"]["AllowedPattern"], "apizero,local")


def test_the_derived_template_expands_to_cloudformation(derived_path, tmp_path):
    # When the AWS::Serverless transform expands it offline
    output = tmp_path / "expanded.json"
    assert sam_transform(["-t", str(derived_path), "-o", str(output), "--region", "us-east-1"]) == 0
    # Then RecognizeFunction is a Lambda function deployed from an image
    expanded = json.loads(output.read_text(encoding="utf-8"))
    function = expanded["Resources"]["RecognizeFunction"]["Properties"]
    assert function["PackageType"] == "Image"
    assert "ImageUri" in function["Code"]
    assert "Runtime" not in function and "Layers" not in function
    # And the query function is still a python3.12 zip function
    assert expanded["Resources"]["QueryFunction"]["Properties"]["Runtime"] == "python3.12"

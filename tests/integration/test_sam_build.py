"""`sam build` produces a deployable artifact: the handler, and a layer with our package and its dependencies."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

BUILD_SCRIPT = ROOT / "scripts" / "sam-build.sh"


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
    assert (build_dir / "template.yaml").is_file()
    shutil.rmtree(build_dir)

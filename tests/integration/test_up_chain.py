"""Provider chains as a user meets them: `vehicle-ocr up` with PLATE_PROVIDERS=tianapi,local and a
tianapi whose quota is spent still reads the plate, with the offline engine, and says so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import boto3
import requests

from tests.conftest import ROOT, free_port
from tests.fakes.upstream import Reply
from tests.integration.test_local_stack import wait_until

VENV_BIN = Path(sys.executable).parent
PHOTO = "plates/001-blue-regular.jpg"


def test_up_with_a_chain_falls_back_to_the_offline_engine_when_tianapi_is_out_of_quota(
    upstream_env, fake_upstream, monkeypatch
):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # the stack runs its own emulator
    # Given tianapi answers 150 (quota spent) to everything, and `vehicle-ocr up` with the chain tianapi,local
    fake_upstream.script("tianapi", [Reply(code=150)] * 10)
    aws_port, api_port = free_port(), free_port()
    env = {**os.environ, **upstream_env, "PLATE_PROVIDERS": "tianapi,local", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(VENV_BIN / "vehicle-ocr"), "up", "--aws-port", str(aws_port), "--api-port", str(api_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "ready" in line:
                break
        assert any("tianapi,local" in line for line in lines), "".join(lines)  # it says which chain it uses

        # When a plate photo is uploaded
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{aws_port}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        s3.put_object(Bucket="vehicle-ocr-images", Key=PHOTO, Body=(ROOT / "samples" / PHOTO).read_bytes())

        # Then the record is SUCCEEDED by the offline engine, naming tianapi and its code under fallback
        api = f"http://127.0.0.1:{api_port}"
        url = f"{api}/results?bucket=vehicle-ocr-images&key={quote(PHOTO)}"
        record = wait_until(lambda: (r := requests.get(url, timeout=5)).status_code == 200 and r.json(), timeout_s=90)
        truth = json.loads((ROOT / "samples" / "ground_truth.json").read_text(encoding="utf-8"))[PHOTO]
        assert record["status"] == "SUCCEEDED"
        assert record["provider"] == "local"
        assert record["fallback"] == [{"provider": "tianapi", "code": "150"}]
        assert [plate["number"] for plate in record["plates"]] == [plate["number"] for plate in truth["plates"]]
        assert fake_upstream.billed() == 0
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0

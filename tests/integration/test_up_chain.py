"""Provider chains as a user meets them: `vehicle-ocr up` with PLATE_PROVIDERS=tianapi,local and a
tianapi whose quota is spent still reads the plate, with the offline engine, and says so."""

from __future__ import annotations

import json

from tests.conftest import ROOT
from tests.fakes.upstream import Reply
from tests.integration.running_up import start_up

PHOTO = "plates/001-blue-regular.jpg"


def test_up_with_a_chain_falls_back_to_the_offline_engine_when_tianapi_is_out_of_quota(upstream_env, fake_upstream):
    # Given tianapi answers 150 (quota spent) to everything, and `vehicle-ocr up` with the chain tianapi,local
    fake_upstream.script("tianapi", [Reply(code=150)] * 10)
    with start_up({**upstream_env, "PLATE_PROVIDERS": "tianapi,local"}) as running:
        assert any("plate=tianapi,local" in line for line in running.output)  # it says which chain it uses

        # When a plate photo is uploaded
        running.s3().put_object(Bucket="vehicle-ocr-images", Key=PHOTO, Body=(ROOT / "samples" / PHOTO).read_bytes())

        # Then the record is SUCCEEDED by the offline engine, naming tianapi and its code under fallback
        record = running.record_of(PHOTO, timeout_s=90)
        truth = json.loads((ROOT / "samples" / "ground_truth.json").read_text(encoding="utf-8"))[PHOTO]
        assert record["status"] == "SUCCEEDED"
        assert record["provider"] == "local"
        assert record["fallback"] == [{"provider": "tianapi", "code": "150"}]
        assert [plate["number"] for plate in record["plates"]] == [plate["number"] for plate in truth["plates"]]
        assert fake_upstream.billed() == 0

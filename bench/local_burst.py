"""The local stack under the issue's burst: 400 new plate photos and 40 re-uploads dropped at once.

`vehicle-ocr up`'s stack (its emulator in a process of its own, its dispatchers, the real handler)
against a local tianapi allowing 5 requests in any second (TianapiRequestsPerSecond's default),
answering at once. The photos are uploaded by another process, as `aws s3 cp` would. The limit
allows 400 / 5 = 80 s of paid calls: the figure is the time until every upload is recorded, over
that floor. tests/integration/test_local_burst.py holds the same run, smaller, to nothing lost and
nothing paid twice; the time is measured here, never in a test.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import APIZERO_KEY, TIANAPI_KEY, Figure, Section, patched_environ
from tests.conftest import make_jpeg
from tests.fakes.burst import UPLOADER, write_burst
from tests.fakes.upstream import TIANAPI, FakeUpstream
from vehicle_ocr_local.stack import LocalStack, StackConfig

NEW_PHOTOS = 400
REUPLOADS = 40
LIMIT_PER_S = 5.0  # TianapiRequestsPerSecond's default
FLOOR_S = NEW_PHOTOS / LIMIT_PER_S


def run() -> Section:
    section = Section("Local stack: a burst of 440 uploads drained at tianapi's 5/s")
    with (
        FakeUpstream(tianapi_key=TIANAPI_KEY, apizero_key=APIZERO_KEY) as upstream,
        tempfile.TemporaryDirectory() as folder,
        patched_environ({}, remove=("AWS_ENDPOINT_URL", "AWS_PROFILE")),
    ):
        upstream.rate_limit(TIANAPI, LIMIT_PER_S)
        write_burst(Path(folder), NEW_PHOTOS, REUPLOADS, make_jpeg)
        environment = {
            "TIANAPI_KEY": TIANAPI_KEY,
            "APIZERO_KEY": APIZERO_KEY,
            "TIANAPI_URL": upstream.tianapi_url,
            "APIZERO_URL": upstream.apizero_url,
        }
        with LocalStack(StackConfig(aws_port=0, api_port=0, environment=environment, quiet=True)) as stack:
            start = time.monotonic()
            subprocess.run(  # noqa: S603 - this interpreter, the uploader script
                [sys.executable, "-c", UPLOADER, stack.aws_endpoint, stack.config.bucket, folder], check=True
            )
            done = stack.wait_for(NEW_PHOTOS + REUPLOADS, timeout_s=4 * FLOOR_S)
            elapsed = time.monotonic() - start
            outcomes = list(stack.stats.outcomes)
        billed = upstream.billed(TIANAPI)
        refused = sum(call.outcome == "130" for call in upstream.calls)
    recorded = len({o["id"] for o in outcomes if o["status"] == "SUCCEEDED"})
    section.figures = [
        Figure(
            "local_burst_drain_ratio",
            elapsed / FLOOR_S,
            "<=",
            1.2,
            detail=f"{elapsed:.1f} s until all {done} uploads were recorded; the limit allows {FLOOR_S:.0f} s",
        ),
        Figure(
            "local_burst_lost", NEW_PHOTOS + REUPLOADS - recorded, "==", 0, digits=0, detail="uploads not SUCCEEDED"
        ),
        Figure("local_burst_paid_twice", billed - NEW_PHOTOS, "==", 0, digits=0, detail=f"{billed} billed calls"),
        Figure("local_burst_refusals", refused, "==", 0, digits=0, detail="tianapi answers 130 (too fast)"),
    ]
    section.data = {"elapsed_s": round(elapsed, 2), "floor_s": FLOOR_S, "billed": billed, "refused": refused}
    section.notes = [
        "`vehicle-ocr up`'s stack with its default dispatchers; 400 distinct photos and 40 copies of some of "
        "them under other keys (reused answers, not paid), uploaded at once by a separate process."
    ]
    return section

"""One RecognizeFunction instance in a process of its own, as Lambda runs one per execution environment.

    python -m bench.instance   (environment: the function's, pointed at the emulator and the upstream)

Loads the real handler (cold start), then handles one S3 event at a time: an event as a JSON line
on standard input, and for each a JSON line on standard output with the outcomes and this
instance's rate-budget counters so far. Everything the function prints goes to /dev/null, as its
logs go to CloudWatch, not to the benchmark's pipe.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from vehicle_ocr_local.api_gateway import LocalLambdaContext
from vehicle_ocr_local.stack import load_function


def budget_counters(app: Any) -> dict[str, Any]:
    pacers = app.pipeline._recognition.pacers.values()
    return {
        "budget_requests": sum(getattr(pacer, "requests", 0) for pacer in pacers),
        "budget_draws": sum(getattr(pacer, "draws", 0) for pacer in pacers),
        "budget_waited_s": sum(getattr(pacer, "waited_s", 0.0) for pacer in pacers),
    }


def main() -> int:
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the life of the process
    app = load_function("recognize", "bench_instance_app", dict(os.environ))
    print(json.dumps({"ready": True, **budget_counters(app)}), file=replies, flush=True)
    for line in sys.stdin:
        context = LocalLambdaContext("RecognizeFunction", memory_limit_in_mb=512, timeout_seconds=60)
        start = time.monotonic()
        try:
            result = app.lambda_handler(json.loads(line), context)
            outcomes, error = result.get("processed", []), None
        except Exception as exc:  # what Lambda counts as a failed invocation
            outcomes, error = [], type(exc).__name__
        reply = {"outcomes": outcomes, "error": error, "seconds": time.monotonic() - start, **budget_counters(app)}
        print(json.dumps(reply, ensure_ascii=False), file=replies, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""hyperlpr2 on image files, one JSON line per image: the baseline of scripts/evaluate_engine.py.

    <hyperlpr2 venv>/bin/python scripts/hyperlpr2_worker.py [--runs N] [PATH...]

Runs inside hyperlpr2's own virtualenv (``REQUIREMENTS``; evaluate_engine.py creates it under
~/.cache/vehicle-ocr): hyperlpr2 needs ``opencv-python`` < 5 for ``cv2.CascadeClassifier``,
which cannot live beside the project's ``opencv-python-headless`` 5.  Its models ship inside its
wheel, so it runs offline.  With no PATH it reads one path per line from stdin and answers each
line at once (flushed), so the caller can interleave it with its own calls on the same image.

Each answer: ``{"path", "plates": [{"number", "score", "box": [x1, y1, x2, y2]}], "ms"}`` with
``ms`` the median of ``--runs`` calls (decode included, as the engine's calls include theirs), the
plates those of the first call; or ``{"path", "error"}`` for a file it cannot read.  hyperlpr2
reports no colour.  This file imports nothing outside the standard library at module level, so
the project's interpreter can read ``REQUIREMENTS`` from it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterable
from typing import Any

# Exact pins of a working install (Python 3.11, Linux x86_64); the virtualenv's folder is named
# after their hash, so changing them makes a new one.
REQUIREMENTS = ("hyperlpr2==2.0.0", "opencv-python==4.14.0.94", "numpy==2.4.6")


def recognise(path: str, runs: int) -> dict[str, Any]:
    import cv2
    import hyperlpr2
    import numpy as np

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return {"path": path, "error": f"cannot read: {exc.strerror}"}
    plates: list[dict[str, Any]] | None = None
    times: list[float] = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        # imdecode, not imread: imread cannot open non-ASCII paths on every platform.
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        found = hyperlpr2.HyperLPR_plate_recognition(image) if image is not None else []
        times.append((time.perf_counter() - start) * 1000)
        if image is None:
            return {"path": path, "error": "not an image OpenCV can decode"}
        if plates is None:
            plates = [
                {"number": str(number), "score": round(float(score), 4), "box": [int(v) for v in box]}
                for number, score, box in found
            ]
    return {"path": path, "plates": plates or [], "ms": round(statistics.median(times), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="calls per image; ms is their median")
    parser.add_argument("paths", nargs="*", help="image files (none: one path per line on stdin)")
    args = parser.parse_args(argv)
    paths: Iterable[str] = args.paths or (line.rstrip("\n") for line in sys.stdin)
    for path in paths:
        if path:
            print(json.dumps(recognise(path, args.runs), ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

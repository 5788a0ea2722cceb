"""Regenerate events/: S3 put events exactly as `sam local generate-event s3 put` writes them, plus variants.

sam URL-encodes the key itself (UTF-8 percent-encoding, literal "+" → "%2B", space → "%20"). Real S3
notifications write a space as "+", so that one variant is rewritten to S3's form: the handler must
decode both. Run: .venv/bin/python scripts/generate_events.py
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
BUCKET = "vehicle-ocr-images"
SAM = str(Path(sys.executable).with_name("sam"))

# name → decoded key (what the user typed)
SINGLE = {
    "s3-put-plate": "plates/cam1/car.jpg",
    "s3-put-vehicle-license": "vehicle-licenses/front.jpg",
    "s3-put-chinese-key": "plates/cam1/沪A 1.jpg",
    "s3-put-key-with-space": "plates/gate 2/front car.jpg",
    "s3-put-key-with-plus": "vehicle-licenses/a+b.jpg",
    "s3-put-unknown-prefix": "receipts/scan.jpg",
    "s3-put-folder-marker": "plates/cam3/",
}


def generate(key: str) -> dict:
    out = subprocess.run(  # noqa: S603 - fixed command, our own arguments
        [SAM, "local", "generate-event", "s3", "put", "--bucket", BUCKET, "--key", key],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    return json.loads(out.stdout)


def write(name: str, event: dict) -> None:
    (EVENTS / f"{name}.json").write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    EVENTS.mkdir(exist_ok=True)
    for name, key in SINGLE.items():
        event = generate(key)
        if " " in key and "+" not in key:
            obj = event["Records"][0]["s3"]["object"]
            obj["key"] = obj["key"].replace("%20", "+")
        if key.endswith("/"):
            event["Records"][0]["s3"]["object"]["size"] = 0  # the console's "Create folder" object
        write(name, event)

    # Several records in one event (S3 may batch): a plate, a licence and a second plate.
    records = [
        generate(key)["Records"][0] for key in ("plates/lane1/a.jpg", "vehicle-licenses/b.png", "plates/lane2/c.jpg")
    ]
    write("s3-put-multiple-records", {"Records": records})

    # A record without an object key (hand-made or truncated event): must end as a MALFORMED_EVENT message.
    malformed = generate("plates/cam1/missing.jpg")
    good = copy.deepcopy(malformed["Records"][0])
    del malformed["Records"][0]["s3"]["object"]["key"]
    malformed["Records"].append(good)
    write("s3-put-malformed", malformed)


if __name__ == "__main__":
    main()

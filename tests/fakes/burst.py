"""A burst of plate photos, and the script that uploads a folder of them from another process
(as `aws s3 cp` would): shared by the local stack's burst test and `make bench` (bench/local_burst.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

UPLOADER = """
import sys
from pathlib import Path
import boto3
endpoint, bucket, folder = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="local", aws_secret_access_key="local")
for path in sorted(Path(folder).rglob("*.jpg")):
    s3.put_object(Bucket=bucket, Key=path.relative_to(folder).as_posix(), Body=path.read_bytes())
"""


def write_burst(folder: Path, new_photos: int, reuploads: int, make: Any) -> None:
    """``new_photos`` distinct plate photos under plates/burst/, and copies of some under plates/again/."""
    photos = [make(seed=seed, size=(96, 48)) for seed in range(new_photos)]
    for name in ("burst", "again"):
        Path(folder, "plates", name).mkdir(parents=True)
    for index, photo in enumerate(photos):
        Path(folder, "plates", "burst", f"{index:03d}.jpg").write_bytes(photo)
    for index in range(reuploads):  # the same bytes again under other keys: reused, not paid for
        Path(folder, "plates", "again", f"{index:03d}.jpg").write_bytes(photos[index * (new_photos // reuploads)])

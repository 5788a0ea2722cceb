"""Upload a folder into a bucket from its own process, as a user's `aws s3 cp --recursive` would.

    python -m bench.uploader ENDPOINT BUCKET FOLDER

Keys are the files' paths under FOLDER. In a separate process so that the uploads do not
compete with the local stack's threads for the interpreter: S3 clients are not in the
Lambda function's process either.
"""

from __future__ import annotations

import sys
from pathlib import Path

import boto3


def main(argv: list[str]) -> int:
    endpoint, bucket, folder = argv
    root = Path(folder)
    s3 = boto3.client("s3", endpoint_url=endpoint)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        s3.put_object(Bucket=bucket, Key=path.relative_to(root).as_posix(), Body=path.read_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

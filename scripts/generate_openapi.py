"""Write docs/openapi.json from the query API's routes (the same document GET /openapi.json serves).

Run: .venv/bin/python scripts/generate_openapi.py   (or make openapi). A test fails when the
committed file differs from what the code generates.
"""

from __future__ import annotations

import json
from pathlib import Path

from vehicle_ocr.query_api import create_app, openapi_document

OPENAPI_FILE = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def render() -> str:
    return json.dumps(json.loads(openapi_document(create_app())), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OPENAPI_FILE.write_text(render(), encoding="utf-8")
    print(f"wrote {OPENAPI_FILE}")

"""apizero vehicle-licence (行驶证) recognition (``ocr-vehicle-license``).

POST JSON ``{"input_type": "base64", "input_data": ...}``.  The document's header table
asks for ``Authorization: Bearer <key>`` while all its examples send ``X-Api-Key``; we
send both.  ``code`` 0 with a ``data`` object is success (and counted against the
quota); errors come with a 4xx/5xx status and a JSON body carrying the code.
"""

from __future__ import annotations

import base64
from typing import Any

from vehicle_ocr.providers.http import HttpRecognizer, UnusableAnswer

SUCCESS = 0


class ApizeroVehicleLicenseRecognizer(HttpRecognizer):
    name = "apizero"
    kind = "vehicle_license"
    success_code = SUCCESS

    def request(self, api_key: str, image: bytes) -> dict[str, Any]:
        return {
            "headers": {"Authorization": f"Bearer {api_key}", "X-Api-Key": api_key},
            "json": {"input_type": "base64", "input_data": base64.b64encode(image).decode("ascii")},
        }

    def payload(self, body: dict[str, Any]) -> dict[str, Any]:
        data = body.get("data")
        if not isinstance(data, dict):
            shown = "no data object" if data is None else f"data that is a {type(data).__name__}"
            raise UnusableAnswer(f"success code with {shown}")
        return data

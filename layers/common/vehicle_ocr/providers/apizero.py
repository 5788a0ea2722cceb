"""apizero vehicle-licence (行驶证) recognition (``ocr-vehicle-license``, seeds/004_d75211672f8df966.txt).

POST JSON ``{"input_type": "base64", "input_data": ...}``.  The document's header table
asks for ``Authorization: Bearer <key>`` while all its examples send ``X-Api-Key``; we
send both.  ``code`` 0 with a ``data`` object is success; errors come with a 4xx/5xx
status and a JSON body carrying the code.
"""

from __future__ import annotations

import base64

import requests

from vehicle_ocr.errors import PipelineError, UpstreamError
from vehicle_ocr.providers.base import KeySource, ProviderAnswer
from vehicle_ocr.providers.http import Timeout, answer_code, answer_message, post_json_answer

SUCCESS = 0


class ApizeroVehicleLicenseRecognizer:
    name = "apizero"
    kind = "vehicle_license"

    def __init__(self, url: str, api_key: KeySource, session: requests.Session, timeout: Timeout):
        self.url = url
        self._api_key = api_key
        self._session = session
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ApizeroVehicleLicenseRecognizer(url={self.url!r}, timeout={self.timeout!r})"

    def recognize(self, image: bytes) -> ProviderAnswer:
        key = self._api_key()
        status, body = post_json_answer(
            self._session,
            self.url,
            provider=self.name,
            timeout=self.timeout,
            headers={"Authorization": f"Bearer {key}", "X-Api-Key": key},
            json={"input_type": "base64", "input_data": base64.b64encode(image).decode("ascii")},
        )
        code = answer_code(body, provider=self.name, status=status)
        if code != SUCCESS:
            raise UpstreamError(self.name, code, answer_message(body))
        data = body.get("data")
        if not 200 <= status < 300 or not isinstance(data, dict):
            shown = "no data object" if not isinstance(data, dict) else f"HTTP {status}"
            raise PipelineError(self.name, "UPSTREAM_BAD_RESPONSE", f"success code with {shown}")
        request_id = body.get("request_id")
        return ProviderAnswer(
            provider=self.name, payload=data, request_id=request_id if isinstance(request_id, str) else None
        )

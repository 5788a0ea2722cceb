"""apizero vehicle-licence (行驶证) recognition (``ocr-vehicle-license``).

POST JSON ``{"input_type": "base64", "input_data": ...}``.  The document's header table
asks for ``Authorization: Bearer <key>`` while all its examples send ``X-Api-Key``; we
send both.  ``code`` 0 with a ``data`` object is success (and counted against the
quota); errors come with a 4xx/5xx status and a JSON body carrying the code.
"""

from __future__ import annotations

import base64
from typing import Any

from vehicle_ocr.codes import Action
from vehicle_ocr.providers.http import HttpRecognizer, UnusableAnswer
from vehicle_ocr.providers.registry import ProviderSpec, register_provider

SUCCESS = 0
DEFAULT_URL = "https://v1.apizero.cn/api/ocr-vehicle-license"

# The document's 错误码 table.
CODES = (
    (4000, "缺少必填参数 input_type / input_data,或参数格式不合法", False, Action.BAD_IMAGE),
    (4015, "此接口需要 API Key,匿名不可调用", False, Action.FIX_CONFIG),
    (5020, "上游服务 HTTP 异常,请稍后重试", True, Action.WAIT),
    (5021, "图片无法识别,请确认为行驶证且图片清晰完整", False, Action.BAD_IMAGE),
    (5030, "行驶证识别服务未开通,请联系管理员", False, Action.FIX_CONFIG),
)


class ApizeroVehicleLicenseRecognizer(HttpRecognizer):
    name = "apizero"
    kind = "vehicle_license"
    success_code = SUCCESS

    def request(self, api_key: str, image: bytes) -> dict[str, Any]:
        # The JSON written here, not by requests' json=, so that it is built before the rate slot (prepare).
        body = b'{"input_type":"base64","input_data":"' + base64.b64encode(image) + b'"}'
        return {
            "headers": {
                "Authorization": f"Bearer {api_key}",
                "X-Api-Key": api_key,
                "Content-Type": "application/json",
            },
            "data": body,
        }

    def payload(self, body: dict[str, Any]) -> dict[str, Any]:
        data = body.get("data")
        if not isinstance(data, dict):
            shown = "no data object" if data is None else f"data that is a {type(data).__name__}"
            raise UnusableAnswer(f"success code with {shown}")
        return data


SPEC = register_provider(
    ProviderSpec(
        name=ApizeroVehicleLicenseRecognizer.name,
        kind=ApizeroVehicleLicenseRecognizer.kind,
        factory=ApizeroVehicleLicenseRecognizer.from_settings,
        settings_name="APIZERO",
        default_url=DEFAULT_URL,
        default_rps=2.0,  # "QPS 限制 2 req/s"
        needs_key=True,
        key_parameter="ApizeroKeyParameterName",
        codes=CODES,
        paid=True,
    )
)

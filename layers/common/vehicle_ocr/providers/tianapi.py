"""tianapi licence-plate recognition (``licenseplate/index``, per the provider's document).

POST ``application/x-www-form-urlencoded`` with ``key`` and ``img`` (base64).  ``code`` 200
is success (and billed); every other code is an error listed in ``vehicle_ocr.codes``.
``result`` comes as one plate object, a list of them, or an object holding such a list;
all three are flattened into a list of raw plate dicts.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote_plus

from vehicle_ocr.codes import Action
from vehicle_ocr.providers.http import HttpRecognizer, UnusableAnswer
from vehicle_ocr.providers.registry import ProviderSpec, register_provider

SUCCESS = 200
PLATE_FIELDS = ("number", "color")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
DEFAULT_URL = "https://apis.tianapi.com/licenseplate/index"

# The document's 返回状态码 table: 1xx are system errors, 2xx the caller's; 200 is success (and billed).
CODES = (
    (100, "内部服务器错误", True, Action.WAIT),
    (110, "当前API已下线", False, Action.CONTACT_PROVIDER),
    (120, "API暂时维护中", True, Action.WAIT),
    (130, "API调用频率超限", True, Action.WAIT),
    (140, "API没有调用权限", False, Action.FIX_CONFIG),
    (150, "API可用次数不足", False, Action.TOP_UP),
    (160, "账号未申请该API", False, Action.FIX_CONFIG),
    (170, "Referer请求来源受限", False, Action.FIX_CONFIG),
    (180, "IP请求来源受限", False, Action.FIX_CONFIG),
    (190, "当前key不可用", False, Action.FIX_CONFIG),
    (230, "key错误或为空", False, Action.FIX_CONFIG),
    (240, "缺少key参数", False, Action.FIX_CONFIG),
    (250, "数据返回为空", False, Action.BAD_IMAGE),
    (260, "参数值不得为空", False, Action.BAD_IMAGE),
    (270, "参数值不符合要求", False, Action.BAD_IMAGE),
    (280, "缺少必要的参数", False, Action.FIX_CONFIG),
    (290, "超过最大输入限制", False, Action.BAD_IMAGE),
)


def form_body(api_key: str, image: bytes) -> bytes:
    """``key=…&img=<base64>``, form-encoded.

    Built by hand because urlencode quotes the base64 text one character at a time in
    Python (~5 ms for a 100 KB photo, on every image); base64 only needs ``+ / =`` escaped.
    """
    image_field = base64.b64encode(image).replace(b"+", b"%2B").replace(b"/", b"%2F").replace(b"=", b"%3D")
    return b"key=" + quote_plus(api_key).encode("ascii") + b"&img=" + image_field


class TianapiPlateRecognizer(HttpRecognizer):
    name = "tianapi"
    kind = "plate"
    success_code = SUCCESS

    def request(self, api_key: str, image: bytes) -> dict[str, Any]:
        return {"data": form_body(api_key, image), "headers": {"Content-Type": FORM_CONTENT_TYPE}}

    def payload(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return flatten_result(body.get("result"))


def _is_plate(value: Any) -> bool:
    return isinstance(value, dict) and any(field in value for field in PLATE_FIELDS)


def flatten_result(result: Any) -> list[dict[str, Any]]:
    """Turn any documented ``result`` shape into a list of raw plate dicts.

    ``{"color", "number"}`` → one plate; ``[{...}, ...]`` → those plates; an object whose
    values include lists of plate dicts (``{"list": [...]}`` or any other key) → all of
    them.  Missing or empty results give an empty list (the caller decides what "no
    plate" means); anything else raises :class:`UnusableAnswer`.
    """
    if result is None or result == {} or result == []:
        return []
    if _is_plate(result):
        return [dict(result)]
    if isinstance(result, list):
        if all(isinstance(item, dict) for item in result):
            return [dict(item) for item in result]
        raise UnusableAnswer("result list holds non-object items")
    if isinstance(result, dict):
        lists = [value for value in result.values() if isinstance(value, list)]
        plate_lists = [value for value in lists if all(isinstance(item, dict) for item in value)]
        if plate_lists:
            return [dict(item) for value in plate_lists for item in value]
        raise UnusableAnswer("result object holds neither a plate nor a list of plates")
    raise UnusableAnswer(f"result is a {type(result).__name__}")


SPEC = register_provider(
    ProviderSpec(
        name=TianapiPlateRecognizer.name,
        kind=TianapiPlateRecognizer.kind,
        factory=TianapiPlateRecognizer.from_settings,
        settings_name="TIANAPI",
        default_url=DEFAULT_URL,
        default_rps=5.0,
        needs_key=True,
        key_parameter="TianapiKeyParameterName",
        codes=CODES,
        paid=True,
    )
)

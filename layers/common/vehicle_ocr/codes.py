"""Every outcome code the pipeline can report, in one table.

Upstream codes come from the providers' own documents (transcribed by the fake upstream in
``tests/fakes/upstream.py``, which a test compares with this table); pipeline
codes are ours, upper-case words.  Classification (retryable or not, what the operator
must do) is looked up here and nowhere else, so a new code is one new row.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """What an operator has to do before a failed upload can succeed."""

    WAIT = "wait"  # transient: retry later, nothing to change
    FIX_CONFIG = "fix_config"  # key, whitelist, subscription or provider setting
    TOP_UP = "top_up"  # quota or balance exhausted
    BAD_IMAGE = "bad_image"  # the picture itself cannot be recognised
    CONTACT_PROVIDER = "contact_provider"  # upstream withdrew or broke the service
    NONE = "none"  # nothing to do: the upload was not meant for us


@dataclass(frozen=True)
class CodeInfo:
    provider: str  # "tianapi", "apizero" or "pipeline"
    code: str
    message: str
    retryable: bool
    action: Action


def _rows(provider: str, rows: list[tuple[int | str, str, bool, Action]]) -> dict[tuple[str, str], CodeInfo]:
    return {
        (provider, str(code)): CodeInfo(provider, str(code), message, retryable, action)
        for code, message, retryable, action in rows
    }


PIPELINE = "pipeline"

CODES: dict[tuple[str, str], CodeInfo] = {
    # tianapi licenseplate: 000_d2304e3ca4febe02.txt, "返回状态码". 1xx system, 2xx user.
    **_rows(
        "tianapi",
        [
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
        ],
    ),
    # apizero ocr-vehicle-license: 004_d75211672f8df966.txt, "8. 错误码".
    **_rows(
        "apizero",
        [
            (4000, "缺少必填参数 input_type / input_data,或参数格式不合法", False, Action.BAD_IMAGE),
            (4015, "此接口需要 API Key,匿名不可调用", False, Action.FIX_CONFIG),
            (5020, "上游服务 HTTP 异常,请稍后重试", True, Action.WAIT),
            (5021, "图片无法识别,请确认为行驶证且图片清晰完整", False, Action.BAD_IMAGE),
            (5030, "行驶证识别服务未开通,请联系管理员", False, Action.FIX_CONFIG),
        ],
    ),
    # The pipeline's own codes.
    **_rows(
        PIPELINE,
        [
            ("MALFORMED_EVENT", "the S3 event record lacks a bucket or object key", False, Action.NONE),
            ("UNROUTABLE", "object key matches no configured prefix", False, Action.NONE),
            ("UNEXPECTED_BUCKET", "the event names a bucket this deployment does not read", False, Action.NONE),
            ("OBJECT_NOT_FOUND", "object was deleted or replaced before it could be read", False, Action.NONE),
            ("IMAGE_EMPTY", "object is empty", False, Action.BAD_IMAGE),
            ("IMAGE_UNSUPPORTED", "object is not a JPEG, PNG, BMP, WebP, GIF or TIFF image", False, Action.BAD_IMAGE),
            ("IMAGE_CORRUPT", "image data is truncated or corrupt", False, Action.BAD_IMAGE),
            ("IMAGE_TOO_LARGE", "image exceeds the configured maximum size", False, Action.BAD_IMAGE),
            ("NO_PLATE_FOUND", "the recogniser found no licence plate in the image", False, Action.BAD_IMAGE),
            (
                "NO_LICENSE_FOUND",
                "the recogniser found no vehicle-licence fields in the image",
                False,
                Action.BAD_IMAGE,
            ),
            ("UPSTREAM_TIMEOUT", "upstream did not answer in time", True, Action.WAIT),
            (
                "UPSTREAM_UNAVAILABLE",
                "upstream could not be reached or answered with a server error",
                True,
                Action.WAIT,
            ),
            ("UPSTREAM_RATE_LIMITED", "upstream refused the request as too frequent (HTTP 429)", True, Action.WAIT),
            # Not retryable: such an answer was (or may have been) billed, and asking again would pay again.
            (
                "UPSTREAM_BAD_RESPONSE",
                "upstream answered, and may have billed, something that is not its documented answer",
                False,
                Action.CONTACT_PROVIDER,
            ),
            (
                "UPSTREAM_HTTP_ERROR",
                "upstream refused the request with an HTTP error and no code",
                False,
                Action.FIX_CONFIG,
            ),
            (
                "PROVIDER_NOT_AVAILABLE",
                "the configured provider is not installed in this deployment",
                False,
                Action.FIX_CONFIG,
            ),
            ("CONFIGURATION_ERROR", "the pipeline is misconfigured", False, Action.FIX_CONFIG),
        ],
    ),
}


def lookup(provider: str, code: str | int) -> CodeInfo:
    """Classify a code.  An undocumented upstream code is terminal and passed through as it came."""
    info = CODES.get((provider, str(code)))
    if info is not None:
        return info
    return CodeInfo(provider, str(code), "undocumented upstream code", False, Action.CONTACT_PROVIDER)


def is_documented(provider: str, code: str | int) -> bool:
    return (provider, str(code)) in CODES


def documented(provider: str) -> list[CodeInfo]:
    """Every documented code of one provider (used by tests and the README table)."""
    return [info for (p, _), info in CODES.items() if p == provider]

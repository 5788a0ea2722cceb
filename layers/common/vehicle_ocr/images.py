"""Check that an object is an image an upstream can take, before paying for a call.

Formats are told from magic bytes, never from the key's extension: a text file named
``.jpg`` is rejected here, not billed upstream.
"""

from __future__ import annotations

from vehicle_ocr.errors import PipelineError

# The formats both upstreams document (tianapi: jpg/png/bmp).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
)
# Recognised so the error can name them: other images, not yet accepted as they are.
_OTHER_IMAGES: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
_PNG_END = b"IEND\xaeB`\x82"


def sniff_format(data: bytes) -> str | None:
    for signature, name in _SIGNATURES + _OTHER_IMAGES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "heic"
    return None


def check_size(size: int | None, max_bytes: int) -> None:
    """Reject from the event's size before downloading anything."""
    if size is not None and size > max_bytes:
        raise PipelineError("pipeline", "IMAGE_TOO_LARGE", f"object is {size} bytes; the maximum is {max_bytes}")


def check_image(data: bytes, max_bytes: int) -> str:
    """Return the image format, or raise the pipeline code that says what is wrong."""
    if not data:
        raise PipelineError("pipeline", "IMAGE_EMPTY")
    check_size(len(data), max_bytes)
    image_format = sniff_format(data)
    if image_format is None:
        raise PipelineError("pipeline", "IMAGE_UNSUPPORTED", "object is not an image (unrecognised file signature)")
    if image_format not in {name for _, name in _SIGNATURES}:
        raise PipelineError(
            "pipeline", "IMAGE_UNSUPPORTED", f"{image_format.upper()} images are not accepted; use JPEG, PNG or BMP"
        )
    if not _complete(data, image_format):
        raise PipelineError("pipeline", "IMAGE_CORRUPT", f"{image_format.upper()} data is truncated")
    return image_format


def _complete(data: bytes, image_format: str) -> bool:
    """Cheap structural check for truncation (an interrupted upload), without decoding pixels."""
    if image_format == "jpeg":
        # Encoders may pad after the End Of Image marker; a truncated file has none.
        return data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9")
    if image_format == "png":
        return _PNG_END in data[-64:]
    if image_format == "bmp":
        declared = int.from_bytes(data[2:6], "little") if len(data) >= 6 else 0
        return len(data) >= 26 and (declared == 0 or len(data) >= declared)
    return True

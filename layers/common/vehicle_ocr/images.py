"""The image guard: make an object something an upstream can take, before paying for a call.

Formats are told from magic bytes, never from the key's extension: a text file named
``.jpg`` is rejected here, not billed upstream.

``prepare_for_upstream`` then turns an accepted image into bytes the upstream takes:

* JPEG, PNG and BMP within the upstream's limit and without an EXIF orientation other than 1
  go as they are: the very same ``bytes`` object, metadata included. Only headers are read,
  by a small bounded parser (``_header``): Pillow is not even imported on this path, which
  is most uploads.
* Everything else is decoded with Pillow (imported lazily) and re-encoded as a baseline JPEG:
  WebP, GIF (first frame) and TIFF (first page) are converted; an EXIF orientation other
  than 1 is applied to the pixels; transparency is flattened on white. JPEG, never PNG,
  even for transparent images: uploads are photos of plates and licences, and JPEG is what
  the size ladder below needs anyway. The output carries pixels only: no EXIF (it may hold
  GPS, personal data that must never leave for the upstream), no XMP, comment or ICC profile.
* An image over the limit is re-encoded at JPEG quality 90, 80, 70, then downscaled by steps
  of x0.75 at quality 70 (more pixels at lower quality read better than the reverse) until it
  fits, never below a longest side of 640 px: beyond that IMAGE_TOO_LARGE.

What was done is listed in ``PreparedImage.changes``, for the record and the logs.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vehicle_ocr.errors import PipelineError

if TYPE_CHECKING:  # pragma: no cover - Pillow is imported lazily, only where pixels are needed
    from PIL.Image import Image as PILImage
    from PIL.ImageFile import ImageFile as PILImageFile

# The formats both upstreams document (tianapi: jpg/png/bmp); they go as they are.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
)
# Other images: accepted, and converted to JPEG before the upstream sees them.
_OTHER_IMAGES: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
# ISO-BMFF brands of HEIF/HEIC files (iPhone photos): recognised to name them in the error.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"})
_PNG_END = b"IEND\xaeB`\x82"

UPSTREAM_FORMATS = frozenset(name for _, name in _SIGNATURES)
CONVERTED_FORMATS = frozenset({"webp", "gif", "tiff"})
_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "webp": "WEBP", "gif": "GIF", "tiff": "TIFF"}

JPEG_QUALITIES = (90, 80, 70)  # tried in turn at full size; downscaling keeps the last
DOWNSCALE_STEP = 0.75  # per step, on each side
MIN_LONGEST_SIDE = 640  # below this a plate is too few pixels to read: give up instead
# Decompression bombs are refused from the declared size, before any pixel is decoded.
# Any image: at most 50 MP (a 50 MP phone photo is 8160x6120; 200 MP modes are refused).
MAX_PIXELS = 50_000_000
# Decoded at full resolution: at most 25 MP (up to 4 bytes a pixel and a few copies must fit
# a 512 MB function). Larger JPEGs are decoded at 1/2 scale by the decoder itself
# (``Image.draft``: DCT scaling, the full-size pixels never exist); larger images of other
# formats cannot be, and are refused. Pillow's own limit (Image.MAX_IMAGE_PIXELS: warns over
# ~89 MP, raises over ~179 MP) is left as it is for the rest of the process; both of its
# signals are caught all the same.
MAX_DECODE_PIXELS = 25_000_000

_MAX_JPEG_SEGMENTS = 256  # real files have a few dozen before the scan; beyond that Pillow decides
_MAX_FILL_BYTES = 64  # 0xFF padding allowed before a marker
_MAX_PNG_CHUNKS = 256
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class PreparedImage:
    """Bytes for the upstream, and what was done to get them (empty ``changes``: nothing)."""

    data: bytes
    format: str  # "jpeg", "png" or "bmp"
    original_format: str  # what sniff_format saw: "jpeg", "png", "bmp", "webp", "gif" or "tiff"
    width: int
    height: int
    changes: tuple[str, ...] = ()


def sniff_format(data: bytes) -> str | None:
    for signature, name in _SIGNATURES + _OTHER_IMAGES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
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
    if image_format == "heic":
        raise PipelineError(
            "pipeline",
            "IMAGE_UNSUPPORTED",
            "HEIC/HEIF images are not accepted; upload JPEG (on an iPhone: Settings > Camera > Formats > "
            "Most Compatible), PNG, BMP, WebP, GIF or TIFF",
        )
    if not _complete(data, image_format):
        raise PipelineError("pipeline", "IMAGE_CORRUPT", f"{image_format.upper()} data is truncated")
    return image_format


def prepare_for_upstream(data: bytes, *, limit_bytes: int) -> PreparedImage:
    """Return the image as the upstream should receive it, at most ``limit_bytes`` long.

    ``limit_bytes`` is the upstream's limit on the image itself: base64 inflation (4/3) is the
    caller's concern. Raises PipelineError IMAGE_EMPTY, IMAGE_UNSUPPORTED, IMAGE_CORRUPT or
    IMAGE_TOO_LARGE. The configured maximum object size is ``check_image``'s business, earlier.
    """
    if limit_bytes <= 0:
        raise ValueError(f"limit_bytes must be positive, not {limit_bytes}")
    image_format = check_image(data, max_bytes=len(data))
    if image_format in UPSTREAM_FORMATS and len(data) <= limit_bytes:
        width, height, orientation = _header(data, image_format) or _pillow_header(data, image_format)
        _check_pixels(width, height, image_format, decoding=False)
        if orientation == 1:
            return PreparedImage(data, image_format, image_format, width, height)
    return _reencode(data, image_format, limit_bytes)


# --- the hot path: headers only ---------------------------------------------------------------


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
    if image_format == "webp":
        # RIFF declares the size of what follows its 8-byte header.
        return len(data) >= 12 and len(data) >= 8 + int.from_bytes(data[4:8], "little")
    return True  # GIF and TIFF: a truncated file fails when Pillow decodes it (IMAGE_CORRUPT)


def _header(data: bytes, image_format: str) -> tuple[int, int, int] | None:
    """(width, height, EXIF orientation) from the headers, or None when they cannot be read."""
    try:
        if image_format == "jpeg":
            return _jpeg_header(data)
        if image_format == "png":
            return _png_header(data)
        return _bmp_header(data)
    except struct.error:  # a length pointing past the end: let Pillow judge the file
        return None


def _jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """Walk the marker segments up to the scan: frame size (SOFn) and the first Exif APP1."""
    size: tuple[int, int] | None = None
    orientation: int | None = None
    pos = 2
    for _ in range(_MAX_JPEG_SEGMENTS):
        if data[pos : pos + 1] != b"\xff":
            return None
        for _ in range(_MAX_FILL_BYTES):
            if data[pos + 1 : pos + 2] != b"\xff":
                break
            pos += 1
        if pos + 1 >= len(data) or data[pos + 1] == 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # standalone markers, no length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no more headers
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        start, end = pos + 4, pos + 2 + length
        if length < 2 or end > len(data):
            return None
        if marker == 0xE1 and orientation is None and data.startswith(b"Exif\x00\x00", start):
            orientation = _tiff_orientation(data, start + 6, end)
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and size is None and length >= 7:
            height, width = struct.unpack_from(">HH", data, start + 1)
            size = (width, height)
        pos = end
    else:
        return None
    if size is None or 0 in size:  # height 0: defined later by a DNL marker
        return None
    return size[0], size[1], orientation or 1


def _png_header(data: bytes) -> tuple[int, int, int] | None:
    """IHDR, then the chunks before the image data for an eXIf (PNG 1.5 puts it there)."""
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", data, 16)
    orientation = 1
    pos = 8
    for _ in range(_MAX_PNG_CHUNKS):
        length, kind = struct.unpack_from(">I4s", data, pos)
        start = pos + 8
        if kind in (b"IDAT", b"IEND"):
            return width, height, orientation
        if kind == b"eXIf":
            offset = 6 if data.startswith(b"Exif\x00\x00", start) else 0
            orientation = _tiff_orientation(data, start + offset, min(start + length, len(data)))
        pos = start + length + 4  # data, then CRC
    return None


def _bmp_header(data: bytes) -> tuple[int, int, int] | None:
    (header_size,) = struct.unpack_from("<I", data, 14)
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
    return abs(width), abs(height), 1  # a negative height means rows stored top-down


def _tiff_orientation(data: bytes, start: int, end: int) -> int:
    """The Orientation tag of IFD0 in the TIFF structure at data[start:end]; 1 when absent or odd."""
    order = data[start : start + 2]
    if end - start < 8 or order not in (b"II", b"MM"):
        return 1
    endian = "<" if order == b"II" else ">"
    magic, ifd_offset = struct.unpack_from(endian + "HI", data, start + 2)
    ifd = start + ifd_offset
    if magic != 42 or ifd + 2 > end:
        return 1
    (count,) = struct.unpack_from(endian + "H", data, ifd)
    for index in range(min(count, (end - ifd - 2) // 12)):  # bounded by the segment
        entry = ifd + 2 + 12 * index
        tag, value_type = struct.unpack_from(endian + "HH", data, entry)
        if tag == _ORIENTATION_TAG:
            if value_type == 3:  # SHORT, as the standard says
                (value,) = struct.unpack_from(endian + "H", data, entry + 8)
            elif value_type == 4:  # LONG, from sloppy writers
                (value,) = struct.unpack_from(endian + "I", data, entry + 8)
            else:
                return 1
            return value if 1 <= value <= 8 else 1
    return 1


def _check_pixels(width: int, height: int, image_format: str, *, decoding: bool) -> None:
    """Refuse decompression bombs from the declared size, before any pixel is decoded."""
    limit = MAX_DECODE_PIXELS if decoding else MAX_PIXELS
    if width * height > limit:
        what = " for a format that must be decoded at full size" if decoding else ""
        raise PipelineError(
            "pipeline",
            "IMAGE_TOO_LARGE",
            f"{image_format.upper()} image is {width}x{height} pixels; "
            f"the maximum is {limit // 1_000_000} megapixels{what}",
        )


# --- the slow path: Pillow ---------------------------------------------------------------------


def _reencode(data: bytes, image_format: str, limit_bytes: int) -> PreparedImage:
    # Lazily: a cold start on the unchanged path never pays for it. Outside the try: a missing
    # Pillow is a broken deployment (the invocation fails, loudly), not a corrupt image.
    import PIL.Image  # noqa: F401

    try:
        with warnings.catch_warnings():
            _pillow_warnings()
            image, changes, upright_size = _decode(data, image_format)
            encoded, quality, image = _fit(image, limit_bytes)
    except PipelineError:
        raise
    except Exception as exc:
        raise _decode_failure(exc, image_format) from exc
    if image.size != upright_size:
        changes.append(f"downscaled to {image.width}x{image.height}")
    changes.append(f"re-encoded as JPEG quality {quality}")
    return PreparedImage(encoded, "jpeg", image_format, image.width, image.height, tuple(changes))


def _pillow_header(data: bytes, image_format: str) -> tuple[int, int, int]:
    """What ``_header`` could not read, from Pillow's parser: still no pixel is decoded."""
    import PIL.Image  # noqa: F401 - outside the try, as in _reencode

    try:
        with warnings.catch_warnings():
            _pillow_warnings()
            image = _open(data, image_format)
            # PNG: getexif() would decode the pixels to look for an eXIf after them; not worth it.
            exif = image.getexif() if image_format != "png" or "exif" in image.info else {}
            orientation = exif.get(_ORIENTATION_TAG, 1)
    except Exception as exc:
        raise _decode_failure(exc, image_format) from exc
    return image.width, image.height, orientation if orientation in range(1, 9) else 1


def _pillow_warnings() -> None:
    """Inside warnings.catch_warnings(): bombs are errors, Pillow's other grumbles are not logged."""
    from PIL import Image

    warnings.filterwarnings("ignore", module=r"PIL\.")  # "Corrupt EXIF data" and the like: the outcome says it
    # Over Image.MAX_IMAGE_PIXELS Pillow only warns; make it an error like the 2x case.
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def _decode_failure(exc: Exception, image_format: str) -> PipelineError:
    """Whatever Pillow raised, as the pipeline code that says what is wrong with the image."""
    from PIL import Image

    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return PipelineError("pipeline", "IMAGE_TOO_LARGE", f"too many pixels to decode safely: {exc}")
    if isinstance(exc, MemoryError):
        return PipelineError("pipeline", "IMAGE_TOO_LARGE", "image needs more memory to decode than there is")
    # OSError (truncated, broken stream), SyntaxError and ValueError (bad headers), EOFError, ...
    detail = f"{type(exc).__name__}: {exc}"[:200]
    return PipelineError("pipeline", "IMAGE_CORRUPT", f"{image_format.upper()} data cannot be decoded ({detail})")


_PLUGINS = {
    "jpeg": "JpegImagePlugin",
    "png": "PngImagePlugin",
    "bmp": "BmpImagePlugin",
    "webp": "WebPImagePlugin",
    "gif": "GifImagePlugin",
    "tiff": "TiffImagePlugin",
}


def _decode(data: bytes, image_format: str) -> tuple[PILImage, list[str], tuple[int, int]]:
    """Decode the first frame, upright, in a mode JPEG can hold (RGB or L).

    Also returns the size the upright image has at full resolution, to tell a downscale.
    """
    from PIL import ImageOps

    changes = [f"converted from {image_format}"] if image_format in CONVERTED_FORMATS else []
    image = _open(data, image_format)
    width, height = image.size
    jpeg = image.format in ("JPEG", "MPO")
    _check_pixels(width, height, image_format, decoding=not jpeg)
    if getattr(image, "is_animated", False):
        changes.append(f"first {'page' if image_format == 'tiff' else 'frame'} used")
    orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    upright_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    factor = 1
    while width * height > MAX_DECODE_PIXELS * factor * factor:
        factor *= 2
    if factor > 1 and jpeg:
        # The decoder scales by 1/2 (1/4, 1/8) while decoding: the full-size pixels never exist.
        image.draft(None, (width // factor, height // factor))
    image.load()
    if image.width * image.height > MAX_DECODE_PIXELS:  # draft declined (it only ever scales JPEG)
        image = image.reduce(factor)
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        image = ImageOps.exif_transpose(image)
        changes.append("orientation applied")
    return _jpeg_mode(image, changes), changes, upright_size


def _open(data: bytes, image_format: str) -> PILImageFile:
    """Pillow's parser for the sniffed format only: it neither guesses another nor imports all."""
    import importlib

    from PIL import Image

    importlib.import_module(f"PIL.{_PLUGINS[image_format]}")  # registers it; no Image.init()
    return Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[image_format]])


def _jpeg_mode(image: PILImage, changes: list[str]) -> PILImage:
    """RGB or L; transparency flattened on white; 16-bit and float samples stretched to 8 bits."""
    from PIL import Image

    mode = image.mode
    if mode in ("RGB", "L") and "transparency" not in image.info:
        return image
    if mode in ("I", "F") or mode.startswith("I;"):
        samples = image.convert("F") if mode != "F" else image
        low, high = samples.getextrema()
        scale = 255 / (high - low) if high > low else 0
        return samples.point(lambda value: (value - low) * scale).convert("L")
    if image.has_transparency_data:
        rgba = image if mode == "RGBA" else image.convert("RGBA")
        alpha = rgba.getchannel("A")
        if alpha.getextrema()[0] == 255:  # fully opaque after all
            return rgba.convert("RGB")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=alpha)
        changes.append("transparency flattened on white")
        return flat
    return image.convert("L" if mode == "1" else "RGB")  # 1, P, CMYK, YCbCr, LAB, HSV


def _fit(image: PILImage, limit_bytes: int) -> tuple[bytes, int, PILImage]:
    """Encode at decreasing quality, then at decreasing size, until it fits in limit_bytes."""
    import math

    from PIL import Image

    for quality in JPEG_QUALITIES:
        encoded = _jpeg(image, quality)
        if len(encoded) <= limit_bytes:
            return encoded, quality, image
    width, height = image.size
    longest = max(width, height)
    smallest = min(MIN_LONGEST_SIDE, longest)
    step, scale, candidate = 0, 1.0, image
    while round(longest * scale) > smallest:
        # Skip the steps the last attempt already rules out at constant bytes per pixel, but
        # one: bytes per pixel do change with scale (measured: up for photos, down for noise).
        needed = math.log(limit_bytes / len(encoded)) / math.log(DOWNSCALE_STEP * DOWNSCALE_STEP)
        step += max(1, math.ceil(needed) - 1)
        scale = max(DOWNSCALE_STEP**step, smallest / longest)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        candidate = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        encoded = _jpeg(candidate, quality)
        if len(encoded) <= limit_bytes:
            return encoded, quality, candidate
    raise PipelineError(
        "pipeline",
        "IMAGE_TOO_LARGE",
        f"image does not fit the upstream's limit of {limit_bytes} bytes even at "
        f"{candidate.width}x{candidate.height} pixels and JPEG quality {quality} ({len(encoded)} bytes)",
    )


def _jpeg(image: PILImage, quality: int) -> bytes:
    """Baseline JPEG with pixels only: no EXIF, XMP, ICC profile or comment is written."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, comment=b"")
    return buffer.getvalue()

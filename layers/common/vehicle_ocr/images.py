"""The image guard: make an object something an upstream can take, before paying for a call.

Formats are told from magic bytes, never from the key's extension: a text file named
``.jpg`` is rejected here, not billed upstream. So, from the headers alone, is an image the
upstream could not read though it was billed: one declaring a width or height of 0, more pixels
than the maximum, or more than its bytes can hold (a forged or another file's header; see
``_check_declared``).

``prepare_for_upstream`` then turns an accepted image into bytes the upstream takes:

* JPEG, PNG and BMP within the upstream's limit and without an EXIF orientation other than 1
  keep their pixels exactly: the compressed data is copied, never decoded. Only their metadata
  is cut out, whole segments or chunks, by a small bounded parser (``_header`` and
  ``_without_metadata``): Pillow is not even imported on this path, which is most uploads.
  EXIF (GPS, camera serial numbers, owner names), XMP, IPTC, comments and the like must
  never leave for the upstream. What stays is an allow-list of what decoding needs:

  - JPEG: every non-APPn segment (tables, frame, scans) byte for byte; APP0 JFIF (an
    embedded JFIF thumbnail is cut: it may show the picture before a crop); APP2 ICC
    profile (colour only, kept so the colours stay as shot; it names the profile, not the
    person); APP14 Adobe (it says how CMYK/YCCK/RGB samples decode). Removed: APP1 (Exif,
    XMP), APP13 (Photoshop IPTC), COM and every other APPn. Images appended after the first
    one (an MPO, an Ultra HDR gain map) go too, cut where the Multi-Picture Format index says
    the first one ends; a Google container announced in XMP without that index goes to
    Pillow instead. Any other trailer after the first image's EOI goes as well: Samsung's SEF
    records, the MP4 of a motion photo, vendors' data; its bytes are counted in the changes.
    Finding that EOI means scanning the compressed data (about 1 ms a MB); it is skipped when
    the file ends with an EOI that the 64 KB before it show to be the scan's own, as most files
    do. Known gaps: APPn/COM *between* the scans of a progressive JPEG (no encoder writes them
    there) stay, and so does a JPEG of over 64 KB appended without announcement.
  - PNG: critical chunks and those that change how pixels render (gAMA, cHRM, sRGB, iCCP,
    cICP, mDCV, cLLI, sBIT, tRNS, bKGD, pHYs) or are pixels (APNG acTL, fcTL, fdAT) stay;
    every other chunk goes (eXIf, tEXt, zTXt, iTXt, tIME, private chunks, ...), and any bytes
    after IEND. CRCs are per chunk: nothing is recomputed.
  - BMP has no metadata.

  Nothing to remove: the very same ``bytes`` object. Headers the parser cannot follow go
  to Pillow, below, like everything else.
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
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from vehicle_ocr.errors import PipelineError

if TYPE_CHECKING:  # pragma: no cover - Pillow is imported lazily, only where pixels are needed
    from PIL.Image import Image as PILImage
    from PIL.ImageFile import ImageFile as PILImageFile

# The formats both upstreams document (tianapi: jpg/png/bmp); they go as they are, less their metadata.
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

# The fewest bytes an encoder can spend on the pixels a header declares (see _check_declared).
_DEFLATE_MAX_RATIO = 1032  # PNG: a deflate copy of 258 bytes takes at least 2 bits
_JPEG_HUFFMAN_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC3})  # baseline, extended, progressive, lossless
_BMP_UNCOMPRESSED = frozenset({0, 3, 6})  # BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS: every row is there
_BMP_WINDOWS_HEADERS = frozenset({40, 52, 56, 108, 124})  # OS/2's 16 and 64 number compressions otherwise
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type: grey, RGB, palette, grey+alpha, RGBA
# Pillow's messages may name the file object it read: "cannot identify image file <_io.BytesIO
# object at 0x7f...>". An address says nothing about the image, and differs on every run.
_OBJECT_REPR = re.compile(r"\s*<[^<>]*(?:\bobject\b|\bat 0x)[^<>]*>")
_ADDRESS = re.compile(r"\s*\b0x[0-9a-fA-F]{6,}\b")

_MAX_JPEG_SEGMENTS = 256  # real files have a few dozen before the scan; beyond that Pillow decides
_MAX_FILL_BYTES = 64  # 0xFF padding allowed before a marker
_EOI = b"\xff\xd9"  # JPEG End Of Image
_PADDING = b"\x00\r\n "  # what encoders and transfers may leave after an EOI
_MAX_PADDING = 16  # of it at the end of a file that ends with its EOI; more is scanned for the EOI
# In a scan's compressed data 0xFF is followed by a stuffed 0x00 or a restart marker's second byte.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_EOI_CHECKED = 65536  # bytes before a file's final EOI checked to be compressed data, not a trailer
_MAX_PNG_CHUNKS = 256  # before the image data
# The whole file, for its metadata: libpng writes 8 KiB IDAT chunks, Pillow 64 KiB ones, so
# real files under the upstream's limit have a few hundred at most. Beyond, Pillow re-encodes.
_MAX_PNG_ALL_CHUNKS = 4096
_ORIENTATION_TAG = 0x0112
_MP_ENTRY_TAG = 0xB002  # Multi-Picture Format (CIPA DC-007): one 16-byte entry per image
# JPEG APPn segments decoding needs, told by their identifier: APP0 JFIF, APP2 ICC, APP14 Adobe.
_JPEG_KEPT_APPS = {0xE0: b"JFIF\x00", 0xE2: b"ICC_PROFILE\x00", 0xEE: b"Adobe"}
_JFIF_BODY = 14  # identifier, version, units, densities, then a thumbnail's width and height
_GOOGLE_CONTAINER = b"http://ns.google.com/photos/1.0/container/"  # XMP: files appended after the image
# PNG ancillary chunks that change how the pixels look (or are pixels, APNG): kept.
_PNG_KEPT_CHUNKS = frozenset(
    {b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"cICP", b"mDCV", b"cLLI", b"sBIT", b"tRNS", b"bKGD", b"pHYs"}
    | {b"acTL", b"fcTL", b"fdAT"}
)


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
    _check_declared(data, image_format)
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
        if orientation == 1 and (stripped := _without_metadata(data, image_format)) is not None:
            clean, changes = stripped
            return PreparedImage(clean, image_format, image_format, width, height, changes)
    return _reencode(data, image_format, limit_bytes)


# --- the hot path: headers only ---------------------------------------------------------------


def _complete(data: bytes, image_format: str) -> bool:
    """Cheap structural check for truncation (an interrupted upload), without decoding pixels."""
    if image_format == "jpeg":
        return _jpeg_complete(data)
    if image_format == "png":
        return _PNG_END in data[-64:]
    if image_format == "bmp":
        declared = int.from_bytes(data[2:6], "little") if len(data) >= 6 else 0
        return len(data) >= 26 and (declared == 0 or len(data) >= declared)
    if image_format == "webp":
        # RIFF declares the size of what follows its 8-byte header.
        return len(data) >= 12 and len(data) >= 8 + int.from_bytes(data[4:8], "little")
    return True  # GIF and TIFF: a truncated file fails when Pillow decodes it (IMAGE_CORRUPT)


def _jpeg_complete(data: bytes) -> bool:
    """An EOI after the first scan begins: data after it (a phone's trailer, a motion photo's
    MP4) is no truncation; a file cut in its compressed data has no EOI there."""
    try:
        walked = _jpeg_segments(data)
        # Headers it cannot follow, or no scan at all: any EOI will do, Pillow decodes such a file and judges.
        scan_data = _jpeg_scan_data(data, walked[1]) if walked is not None and walked[2] == 0xDA else 2
    except struct.error:  # a length cut off by the end of the data
        return False
    # Most files end with their EOI: then nothing is scanned.
    return _jpeg_final_eoi(data, scan_data) is not None or data.find(_EOI, scan_data) != -1


def _jpeg_scan_data(data: bytes, sos: int) -> int:
    """Where the compressed data of the scan whose SOS (fill bytes included) begins at ``sos`` begins.

    May raise struct.error when its length is cut off by the end of the data.
    """
    marker = data.index(0xDA, sos)  # after the 0xFF fill bytes: _jpeg_segments found them
    (length,) = struct.unpack_from(">H", data, marker + 1)
    return marker + 1 + length


def _jpeg_final_eoi(data: bytes, scan_data: int) -> int | None:
    """Where the EOI ending the file begins, a little padding after it allowed, if it is after
    ``scan_data``; None when the file does not end with an EOI. Constant time."""
    tail = data[-_MAX_PADDING:]
    eoi = len(data) - len(tail) + len(tail.rstrip(_PADDING)) - 2
    return eoi if eoi >= scan_data and data.startswith(_EOI, eoi, eoi + 2) else None


def _jpeg_image_end(data: bytes, scan_data: int) -> int | None:
    """Where the first image ends, just after its EOI (or its padding); None when it has none.

    ``scan_data`` is where the compressed data of its first scan begins. The image ends at the
    first EOI after it, and whatever follows that is a trailer (Samsung's SEF records, a motion
    photo's MP4), which may hold FF D9 bytes of its own (an embedded JPEG, video frames).

    That first EOI is the image's own, even in a progressive JPEG of many scans: in compressed
    data every 0xFF byte is followed by a stuffed 0x00, and its only markers are the restart
    markers FF D0 to FF D7; between two scans there are only marker segments (DHT, DQT, DRI,
    SOS, DNL) whose valid table values never make FF D9 (APPn or COM could hold one, but no
    encoder writes them there). So no FF D9 comes before the image's EOI.

    Finding it takes ``bytes.find`` over the compressed data, about 1 ms a MB, so the common
    case is taken first: the file ends with an EOI, and the 64 KB before it are compressed data
    (no marker but restart ones; about 30 us): that EOI ends the scan, and the image. A trailer
    that happens to end with FF D9 fails this (video and vendors' records are full of FF bytes
    followed by others); an appended JPEG larger than 64 KB would pass it, a known gap.
    """
    final = _jpeg_final_eoi(data, scan_data)
    if final is not None and _JPEG_MARKER.search(data, max(scan_data, final - _EOI_CHECKED), final) is None:
        return len(data)  # the padding, if any, stays: it says nothing
    eoi = data.find(_EOI, scan_data)
    if eoi == -1:
        return None
    return len(data) if eoi == final else eoi + 2


def _check_declared(data: bytes, image_format: str) -> None:
    """Refuse from the headers what no decoder can read, before anything is paid for.

    An image declaring no pixels (a width or height of 0; in a JPEG a height "set later by a
    DNL marker", which libjpeg refuses), or more than MAX_PIXELS; a PNG header whose checksum
    is wrong (libpng and Pillow refuse it); and an image declaring more pixels than its bytes
    can hold: a forged header, or another file's header on a cut one.

    The last is a bound, not a decode. Decoding would not tell: libjpeg (Pillow's decoder, and
    most upstreams') decodes a JPEG whose scan ends before the blocks its frame declares, at
    full size or on a draft, without an error (a warning Pillow does not pass on), the missing
    blocks grey; ``verify()`` checks nothing in a JPEG. And it would bring Pillow and tens of
    milliseconds to the path that sends most uploads on untouched. The bound instead compares
    the fewest bytes the format's own coding can spend on the declared pixels with the bytes
    after the headers: microseconds, and no image an encoder wrote can fall below it, however
    flat. Photos spend 10 to 60 bits on an 8x8 block (the samples at least 11), a JPEG of one
    colour with optimised tables 2, against a floor of 1; deflate compresses a PNG of one colour
    about 1030:1, against a ceiling of 1032:1. A 693-byte JPEG claiming 7000x7000 pixels is over
    a hundred times short. What it lets through: a header claiming a few times more than its
    data hold (decoders show a grey band), arithmetic-coded or hierarchical JPEGs and RLE BMPs
    (no floor), and headers the parser cannot read (Pillow judges them in ``prepare_for_upstream``).
    """
    try:
        frame = _frame(data, image_format)
    except struct.error:  # a length pointing past the end: Pillow judges the file later
        return
    if frame is None:
        return
    width, height, least, held = frame
    _check_pixels(width, height, image_format, decoding=False)
    if image_format == "png" and zlib.crc32(data[12:29]) != int.from_bytes(data[29:33], "big"):
        raise PipelineError("pipeline", "IMAGE_CORRUPT", "PNG header is corrupt (its IHDR checksum does not match)")
    if held < least:
        raise PipelineError(
            "pipeline",
            "IMAGE_CORRUPT",
            f"{width} x {height} pixels need at least {least} bytes of {image_format.upper()} data "
            f"but the image has {max(held, 0)}: a forged header or truncated data",
        )


def _frame(data: bytes, image_format: str) -> tuple[int, int, int, int] | None:
    """The declared size, the fewest bytes any encoder spends on it, and the bytes after the
    headers: (width, height, least, held). None for formats Pillow decodes (they fail there)
    and headers the parser cannot read. May raise struct.error on a file cut in its headers."""
    if image_format == "jpeg":
        return _jpeg_frame(data)
    if image_format == "png":
        return _png_frame(data)
    if image_format == "bmp":
        return _bmp_frame(data)
    return None


def _jpeg_frame(data: bytes) -> tuple[int, int, int, int] | None:
    """Huffman coding spends at least 1 bit on each 8x8 block of each component: the code of
    its DC coefficient (2 in practice: a baseline block ends with an EOB code, and libjpeg
    refines the DC of a progressive one). Arithmetic coding has no such floor."""
    walked = _jpeg_segments(data)
    if walked is None:
        return None
    segments, scan, _ = walked
    for marker, _, start, end in segments:
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn: the first frame
            if end - start < 6:  # too short for a size: Pillow judges the file later
                return None
            height, width, count = struct.unpack_from(">HHB", data, start + 1)
            factors = [(byte >> 4, byte & 0x0F) for byte in data[start + 7 : min(end, start + 6 + 3 * count) : 3]]
            least = 0
            if marker in _JPEG_HUFFMAN_FRAMES and factors and all(0 < h <= 4 and 0 < v <= 4 for h, v in factors):
                h_max, v_max = max(h for h, _ in factors), max(v for _, v in factors)
                # A component's blocks: its own size (subsampled by its factors) in 8x8 blocks.
                blocks = sum(_ceil(_ceil(width * h, h_max), 8) * _ceil(_ceil(height * v, v_max), 8) for h, v in factors)
                least = blocks // 8
            return width, height, least, len(data) - scan  # the scans, and any trailer: all it may have
    return None


def _ceil(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _png_frame(data: bytes) -> tuple[int, int, int, int] | None:
    """The pixels' bytes (filter bytes and padding aside) over deflate's best ratio: a copy of
    258 bytes, its longest, takes a length code and a distance code, of at least 1 bit each."""
    if data[12:16] != b"IHDR":
        return None
    width, height, depth, colour = struct.unpack_from(">IIBB", data, 16)
    pixel_bytes = width * height * depth * _PNG_CHANNELS.get(colour, 1) // 8
    return width, height, pixel_bytes // _DEFLATE_MAX_RATIO, len(data) - 33  # after signature and IHDR


def _bmp_frame(data: bytes) -> tuple[int, int, int, int] | None:
    """An uncompressed BMP holds every row (its padding aside); RLE may skip pixels: no floor."""
    offset, header_size = struct.unpack_from("<II", data, 10)
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: never compressed
        width, height, _, bits = struct.unpack_from("<HHHH", data, 18)
        compression = 0
    elif header_size in _BMP_WINDOWS_HEADERS:
        width, height, _, bits, compression = struct.unpack_from("<iiHHI", data, 18)
    else:
        return None
    width, height = abs(width), abs(height)  # a negative height means rows stored top-down
    least = _ceil(width * bits, 8) * height if compression in _BMP_UNCOMPRESSED else 0
    return width, height, least, len(data) - offset


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


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, int, int, int]], int, int] | None:
    """The marker segments before the first scan, or None when they cannot be followed.

    Returns the segments as (marker, begin, body, end): the segment is data[begin:end], its
    0xFF fill bytes included, and its payload data[body:end] (empty for standalone markers);
    then where the SOS (or an early EOI) begins, and which of the two it is. May raise
    struct.error on a length cut off by the end of the data.
    """
    segments: list[tuple[int, int, int, int]] = []
    pos = 2
    for _ in range(_MAX_JPEG_SEGMENTS):
        begin = pos
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
            segments.append((marker, begin, pos, pos))
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no more headers
            return segments, begin, marker
        (length,) = struct.unpack_from(">H", data, pos + 2)
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return None
        segments.append((marker, begin, pos + 4, end))
        pos = end
    return None


def _jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """Walk the marker segments up to the scan: frame size (SOFn) and the first Exif APP1."""
    walked = _jpeg_segments(data)
    if walked is None:
        return None
    size: tuple[int, int] | None = None
    orientation: int | None = None
    for marker, _, start, end in walked[0]:
        if marker == 0xE1 and orientation is None and data.startswith(b"Exif\x00\x00", start):
            orientation = _tiff_orientation(data, start + 6, end)
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and size is None and end - start >= 5:
            height, width = struct.unpack_from(">HH", data, start + 1)
            size = (width, height)
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


def _tiff_entry(data: bytes, start: int, end: int, tag: int) -> tuple[str, int, int] | None:
    """IFD0's entry for ``tag`` in the TIFF structure at data[start:end]: (byte order, type, position)."""
    order = data[start : start + 2]
    if end - start < 8 or order not in (b"II", b"MM"):
        return None
    endian = "<" if order == b"II" else ">"
    magic, ifd_offset = struct.unpack_from(endian + "HI", data, start + 2)
    ifd = start + ifd_offset
    if magic != 42 or ifd + 2 > end:
        return None
    (count,) = struct.unpack_from(endian + "H", data, ifd)
    for index in range(min(count, (end - ifd - 2) // 12)):  # bounded by the segment
        entry = ifd + 2 + 12 * index
        entry_tag, value_type = struct.unpack_from(endian + "HH", data, entry)
        if entry_tag == tag:
            return endian, value_type, entry
    return None


def _tiff_orientation(data: bytes, start: int, end: int) -> int:
    """The Orientation tag of IFD0 in the TIFF structure at data[start:end]; 1 when absent or odd."""
    found = _tiff_entry(data, start, end, _ORIENTATION_TAG)
    if found is None:
        return 1
    endian, value_type, entry = found
    if value_type == 3:  # SHORT, as the standard says
        (value,) = struct.unpack_from(endian + "H", data, entry + 8)
    elif value_type == 4:  # LONG, from sloppy writers
        (value,) = struct.unpack_from(endian + "I", data, entry + 8)
    else:
        return 1
    return value if 1 <= value <= 8 else 1


class _Unfollowable(Exception):
    """The parser cannot follow this file's structure (Pillow may)."""


def _without_metadata(data: bytes, image_format: str) -> tuple[bytes, tuple[str, ...]] | None:
    """The image with its metadata (and a JPEG's trailer) cut out, and the changes that says
    (none: the very same object).

    None when the structure cannot be followed: Pillow decides then, and re-encodes.
    """
    trailer = 0
    try:
        if image_format == "jpeg":
            pieces, removed, trailer = _jpeg_pieces(data)
        elif image_format == "png":
            pieces, removed = _png_pieces(data)
        else:
            return data, ()  # BMP: pixels and a header, nothing else
    except (struct.error, _Unfollowable):
        return None
    changes: tuple[str, ...] = (f"metadata removed ({', '.join(dict.fromkeys(removed))})",) if removed else ()
    if trailer:
        changes += (f"trailer removed ({trailer} bytes)",)
    if not changes:
        return data, ()
    return b"".join(pieces), changes  # one copy: the pieces are views


def _jpeg_pieces(data: bytes) -> tuple[list[bytes | memoryview], list[str], int]:
    """The JPEG as pieces to join, the segments before the scan that carry metadata left out,
    and everything after its first image; then how many bytes of trailer that left out."""
    walked = _jpeg_segments(data)
    if walked is None or walked[2] != 0xDA:
        raise _Unfollowable
    segments, scan, _ = walked
    view = memoryview(data)
    pieces: list[bytes | memoryview] = []
    removed: list[str] = []
    kept_from = 0  # data[kept_from:begin] is kept as it is
    image_end = len(data)
    trailer = 0
    container = False
    for marker, begin, start, end in segments:
        kind = _jpeg_metadata(data, marker, start, end)
        if kind is None:
            continue
        pieces.append(view[kept_from:begin])
        kept_from = end
        removed.append(kind)
        if kind == "thumbnail":  # the JFIF segment without its thumbnail
            pieces.append(b"\xff\xe0" + struct.pack(">H", _JFIF_BODY + 2) + data[start : start + 12] + b"\x00\x00")
        elif kind == "mpf":  # more images follow the first one: cut there
            image_end = _mpf_first_image_size(data, start, end)
            if not scan < image_end <= len(data) or data[image_end - 2 : image_end] != b"\xff\xd9":
                raise _Unfollowable
        elif kind == "xmp":
            container = container or data.find(_GOOGLE_CONTAINER, start, end) != -1
    if container and image_end == len(data):  # files appended, but where the image ends is unknown
        raise _Unfollowable
    if image_end < len(data):
        removed.append("appended images")
    else:
        # A phone's trailer (Samsung's SEF records), an MP4 appended to a motion photo, a vendor's
        # data: everything after the EOI goes. Padding after an EOI that ends the file stays.
        eoi = _jpeg_image_end(data, _jpeg_scan_data(data, scan))
        if eoi is None:  # truncated: check_image refuses it before
            raise _Unfollowable
        image_end, trailer = eoi, len(data) - eoi
    pieces.append(view[kept_from:image_end])
    return pieces, removed, trailer


def _jpeg_metadata(data: bytes, marker: int, start: int, end: int) -> str | None:
    """What a segment before the scan holds when it is to be removed; None when it stays."""
    if marker == 0xFE:
        return "comment"
    if not 0xE0 <= marker <= 0xEF:  # tables, frame, restart interval, ...: decoding needs them
        return None
    if marker == 0xE1:
        if data.startswith(b"Exif\x00\x00", start):
            return "exif"
        # http://ns.adobe.com/xap/1.0/ and, for XMP over 64 KB, http://ns.adobe.com/xmp/extension/
        return "xmp" if data.startswith(b"http://ns.adobe.com/x", start) else "app1"
    if marker == 0xED:
        return "iptc" if data.startswith(b"Photoshop 3.0\x00", start) else "app13"
    if marker == 0xE2 and data.startswith(b"MPF\x00", start):
        return "mpf"
    identifier = _JPEG_KEPT_APPS.get(marker)
    if identifier is None or not data.startswith(identifier, start):
        return f"app{marker - 0xE0}"
    if marker == 0xE0 and end - start > _JFIF_BODY:
        return "thumbnail"
    return None


def _mpf_first_image_size(data: bytes, start: int, end: int) -> int:
    """From a Multi-Picture Format APP2: the size of the first image, SOI to EOI."""
    found = _tiff_entry(data, start + 4, end, _MP_ENTRY_TAG)  # after b"MPF\0"
    if found is None:
        raise _Unfollowable
    endian, value_type, entry = found
    count, offset = struct.unpack_from(endian + "II", data, entry + 4)
    first = start + 4 + offset
    if value_type != 7 or count < 16 or first + 16 > end:  # UNDEFINED, 16 bytes an image
        raise _Unfollowable
    size, image_offset = struct.unpack_from(endian + "II", data, first + 4)  # after its attributes
    if image_offset != 0:  # the first entry is the first image, at offset 0
        raise _Unfollowable
    return size


def _png_pieces(data: bytes) -> tuple[list[bytes | memoryview], list[str]]:
    """The PNG as pieces to join, the chunks that carry no pixels and change no colour left out."""
    view = memoryview(data)
    pieces: list[bytes | memoryview] = []
    removed: list[str] = []
    kept_from = 0
    pos = 8
    for _ in range(_MAX_PNG_ALL_CHUNKS):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length  # length, type, data, CRC
        if length > 0x7FFFFFFF or end > len(data) or not kind.isalpha():  # the standard: four letters
            raise _Unfollowable
        if kind == b"IEND":
            break
        if kind[0] & 0x20 and kind not in _PNG_KEPT_CHUNKS:  # ancillary (lowercase first letter)
            pieces.append(view[kept_from:pos])
            kept_from = end
            removed.append(_png_metadata(data, kind, pos + 8))
        pos = end
    else:
        raise _Unfollowable
    if end < len(data):
        removed.append("data after IEND")
    pieces.append(view[kept_from:end])
    return pieces, removed


def _png_metadata(data: bytes, kind: bytes, start: int) -> str:
    if kind == b"eXIf":
        return "exif"
    if kind == b"iTXt" and data.startswith(b"XML:com.adobe.xmp\x00", start):
        return "xmp"
    if kind in (b"tEXt", b"zTXt", b"iTXt"):
        return "text"
    return kind.decode("ascii")  # tIME, private chunks, ...


def _check_pixels(width: int, height: int, image_format: str, *, decoding: bool) -> None:
    """Refuse decompression bombs from the declared size, before any pixel is decoded, and
    images without pixels (which upstreams would bill, and could not read).

    Sizes are written "W x H": "7000x7000" would read, to a search for addresses, as 0x7000.
    """
    if width <= 0 or height <= 0:
        raise PipelineError(
            "pipeline",
            "IMAGE_CORRUPT",
            f"{image_format.upper()} image is {width} x {height} pixels: there is nothing to read",
        )
    limit = MAX_DECODE_PIXELS if decoding else MAX_PIXELS
    if width * height > limit:
        what = " for a format that must be decoded at full size" if decoding else ""
        raise PipelineError(
            "pipeline",
            "IMAGE_TOO_LARGE",
            f"{image_format.upper()} image is {width} x {height} pixels; "
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
        return PipelineError("pipeline", "IMAGE_TOO_LARGE", f"too many pixels to decode safely: {_complaint(exc)}")
    if isinstance(exc, MemoryError):
        return PipelineError("pipeline", "IMAGE_TOO_LARGE", "image needs more memory to decode than there is")
    # OSError (truncated, broken stream), SyntaxError and ValueError (bad headers), EOFError, ...
    return PipelineError(
        "pipeline", "IMAGE_CORRUPT", f"{image_format.upper()} data cannot be decoded ({_complaint(exc)})"
    )


def _complaint(exc: Exception) -> str:
    """What Pillow found, without the object it read or any address: messages go to records,
    queues and logs, where "<_io.BytesIO object at 0x7f...>" only tells the pipeline's insides.
    The exception's name only when nothing else is left (its name alone is no explanation)."""
    text = _ADDRESS.sub("", _OBJECT_REPR.sub("", str(exc))).strip()
    return (text or type(exc).__name__)[:200]


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
    image: PILImage = _open(data, image_format)
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
        low, high = cast(tuple[float, float], samples.getextrema())  # one band: (min, max)
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
        f"{candidate.width} x {candidate.height} pixels and JPEG quality {quality} ({len(encoded)} bytes)",
    )


def _jpeg(image: PILImage, quality: int) -> bytes:
    """Baseline JPEG with pixels only: no EXIF, XMP, ICC profile or comment is written."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, comment=b"")
    return buffer.getvalue()

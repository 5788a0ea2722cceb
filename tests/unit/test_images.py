"""The image guard: formats from magic bytes, truncation and size caught before any paid call,
and images made into something the upstream takes (converted, upright, small enough, no EXIF)."""

import io
import random
import struct
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

from tests.conftest import make_jpeg
from vehicle_ocr import images
from vehicle_ocr.errors import PipelineError
from vehicle_ocr.images import PreparedImage, check_image, check_size, prepare_for_upstream, sniff_format

LIMIT = 3 * 1024 * 1024  # tianapi: "图片大小不超过3M"
GPS_IFD = 0x8825
ORIENTATION = 0x0112


def encoded(fmt: str, size: tuple[int, int] = (20, 10), mode: str = "RGB", color="green", **params) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format=fmt, **params)
    return buffer.getvalue()


def save(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def noise(size: tuple[int, int], seed: int = 1) -> Image.Image:
    """Random pixels: the worst case for JPEG, every byte counts."""
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))


def corner_marked(size: tuple[int, int] = (40, 20)) -> Image.Image:
    """Blue, with a red square in the top-left corner: shows where a rotation took it."""
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 8, 8))
    return image


def exif_with(orientation: int | None = None, *, gps: bool = False) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    if orientation is not None:
        exif[ORIENTATION] = orientation
    if gps:
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (31.0, 13.0, 42.0), 3: "E", 4: (121.0, 28.0, 12.0)})
    return exif


def decoded(result: PreparedImage) -> Image.Image:
    image = Image.open(io.BytesIO(result.data))
    image.load()
    return image


def is_red(pixel) -> bool:
    return pixel[0] > 200 and pixel[2] < 60


def is_blue(pixel) -> bool:
    return pixel[2] > 200 and pixel[0] < 60


# --- check_image: what may be downloaded and prepared at all --------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("JPEG", "jpeg"), ("PNG", "png"), ("BMP", "bmp"), ("GIF", "gif"), ("WEBP", "webp"), ("TIFF", "tiff")],
)
def test_accepted_formats_pass(fmt, name):
    # Given an image in a format the upstream takes, or one prepare_for_upstream converts
    data = encoded(fmt)
    # Then it is accepted, named after its magic bytes
    assert sniff_format(data) == name
    assert check_image(data, 10_000_000) == name


@pytest.mark.parametrize("brand", [b"heic", b"heix", b"mif1", b"hevc"])
def test_heic_is_named_in_the_error_and_jpeg_suggested(brand):
    # Given an iPhone photo in HEIC (only its signature matters)
    data = b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00mif1heic" + bytes(64)
    assert sniff_format(data) == "heic"
    # When it is checked, or prepared for the upstream
    for attempt in (lambda: check_image(data, 10_000_000), lambda: prepare_for_upstream(data, limit_bytes=LIMIT)):
        with pytest.raises(PipelineError, match="HEIC") as caught:
            attempt()
        # Then it is refused as unsupported, with the way out
        assert caught.value.code == "IMAGE_UNSUPPORTED"
        assert "JPEG" in caught.value.message


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "IMAGE_EMPTY"),
        (b"hello, I am text named car.jpg", "IMAGE_UNSUPPORTED"),
        (b"%PDF-1.7 ...", "IMAGE_UNSUPPORTED"),
        (make_jpeg(1)[:-100], "IMAGE_CORRUPT"),
        (make_jpeg(1)[:200], "IMAGE_CORRUPT"),
        (encoded("PNG")[:-12], "IMAGE_CORRUPT"),
        (encoded("BMP")[:-30], "IMAGE_CORRUPT"),
        (encoded("WEBP", (64, 64))[:-10], "IMAGE_CORRUPT"),
    ],
)
def test_unusable_objects_get_a_code(data, code):
    for attempt in (lambda: check_image(data, 10_000_000), lambda: prepare_for_upstream(data, limit_bytes=LIMIT)):
        with pytest.raises(PipelineError) as caught:
            attempt()
        assert caught.value.code == code
        assert caught.value.source == "pipeline"


def test_jpeg_with_trailing_padding_is_complete():
    assert check_image(make_jpeg(2) + b"\x00\x00\r\n", 10_000_000) == "jpeg"


def test_size_limit_is_checked_before_download_and_after():
    with pytest.raises(PipelineError, match="13 bytes; the maximum is 12"):
        check_size(13, 12)
    check_size(None, 12)  # unknown size: checked after download instead
    with pytest.raises(PipelineError) as caught:
        check_image(make_jpeg(1), 100)
    assert caught.value.code == "IMAGE_TOO_LARGE"


# --- prepare_for_upstream: the unchanged path ----------------------------------------------------


def test_unchanged_jpeg_is_the_identical_bytes_object():
    # Given a JPEG under the limit with an EXIF orientation of 1
    data = save(corner_marked((64, 32)), "JPEG", quality=90, exif=exif_with(1))
    # When it is prepared
    result = prepare_for_upstream(data, limit_bytes=LIMIT)
    # Then the very same object goes upstream, with its size read from the headers
    assert result.data is data
    assert result == PreparedImage(data, "jpeg", "jpeg", 64, 32, ())


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("JPEG", {"exif": exif_with(None)}),  # EXIF without an orientation
        ("PNG", {}),
        ("PNG", {"exif": exif_with(1)}),
        ("BMP", {}),
    ],
)
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_upstream_formats_under_the_limit_pass_as_they_are(fmt, params, mode):
    # Given a JPEG, PNG or BMP under the limit, upright
    data = encoded(fmt, (123, 45), mode=mode, color="white" if mode == "RGB" else 200, **params)
    # When it is prepared
    result = prepare_for_upstream(data, limit_bytes=LIMIT)
    # Then nothing is done to it, and the header parser agrees with Pillow on its size
    assert result.data is data
    assert (result.format, result.original_format, result.changes) == (fmt.lower(), fmt.lower(), ())
    assert (result.width, result.height) == Image.open(io.BytesIO(data)).size == (123, 45)


def test_top_down_bmp_reports_a_positive_height():
    # Given a BMP whose rows are stored top-down (a negative height in its header)
    data = bytearray(encoded("BMP", (30, 20)))
    data[22:26] = struct.pack("<i", -20)
    # When it is prepared, Then it passes unchanged with its real size
    result = prepare_for_upstream(bytes(data), limit_bytes=LIMIT)
    assert (result.width, result.height, result.changes) == (30, 20, ())


def test_the_unchanged_path_does_not_import_pillow(tmp_path):
    # Given a JPEG and a fresh interpreter (a Lambda cold start)
    path = tmp_path / "photo.jpg"
    path.write_bytes(save(corner_marked(), "JPEG", exif=exif_with(1, gps=True)))
    code = textwrap.dedent(
        f"""
        import sys
        from vehicle_ocr.images import prepare_for_upstream
        data = open({str(path)!r}, "rb").read()
        assert prepare_for_upstream(data, limit_bytes=10**6).data is data
        print(sorted(name for name in sys.modules if name == "PIL" or name.startswith("PIL.")))
        """
    )
    # When it is prepared there
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
    # Then Pillow was never imported
    assert run.stdout.strip() == "[]"


# --- conversions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "name"), [("WEBP", "webp"), ("GIF", "gif"), ("TIFF", "tiff")])
def test_other_formats_are_converted_to_jpeg_of_the_same_size(fmt, name):
    # Given a small WebP, GIF or TIFF
    data = save(corner_marked((90, 60)), fmt)
    # When it is prepared
    result = prepare_for_upstream(data, limit_bytes=LIMIT)
    # Then the upstream gets a JPEG of the same size and picture, and the record says why
    image = decoded(result)
    assert (image.format, image.size) == ("JPEG", (90, 60))
    assert (result.format, result.original_format, result.width, result.height) == ("jpeg", name, 90, 60)
    assert result.changes == (f"converted from {name}", "re-encoded as JPEG quality 90")
    assert is_red(image.getpixel((2, 2)))
    assert is_blue(image.getpixel((80, 50)))


def test_animated_gif_sends_its_first_frame():
    # Given an animated GIF: red, then green
    frames = [Image.new("RGB", (32, 32), color) for color in ("red", "lime")]
    data = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    # When it is prepared
    result = prepare_for_upstream(data, limit_bytes=LIMIT)
    # Then the first frame went, and the record says so
    assert is_red(decoded(result).getpixel((16, 16)))
    assert "first frame used" in result.changes


def test_multi_page_tiff_sends_its_first_page():
    pages = [Image.new("RGB", (32, 32), color) for color in ("blue", "red")]
    data = save(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    result = prepare_for_upstream(data, limit_bytes=LIMIT)
    assert is_blue(decoded(result).getpixel((16, 16)))
    assert "first page used" in result.changes


@pytest.mark.parametrize("fmt", ["WEBP", "PNG", "GIF"])
def test_transparency_is_flattened_on_white(fmt):
    # Given an image whose left half is fully transparent, the right half noise and a blue band
    image = noise((200, 100), seed=3).convert("RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 100, 100))
    image.paste((0, 0, 255, 255), (150, 0, 200, 100))
    data = save(image, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    # When it is prepared (the PNG because it is over the limit)
    result = prepare_for_upstream(data, limit_bytes=LIMIT if fmt != "PNG" else len(data) - 1)
    # Then the transparent half is white, the opaque half unchanged
    flat = decoded(result)
    assert flat.mode == "RGB"
    assert min(flat.getpixel((50, 50))) > 240
    assert is_blue(flat.getpixel((175, 50)))
    assert "transparency flattened on white" in result.changes


def test_16_bit_tiff_is_stretched_to_8_bits_not_clipped_white():
    # Given a 16-bit grayscale TIFF, a gradient from 0 to 65280 (a scanner's output)
    image = Image.new("I;16", (256, 8))
    image.putdata([x * 256 for x in range(256)] * 8)
    data = save(image, "TIFF")
    # When it is prepared
    gray = decoded(prepare_for_upstream(data, limit_bytes=LIMIT))
    # Then the gradient survives as 8-bit gray
    assert gray.mode == "L"
    assert gray.getpixel((2, 4)) < 10
    assert 100 < gray.getpixel((128, 4)) < 156
    assert gray.getpixel((253, 4)) > 245


# --- orientation and metadata ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "TIFF", "PNG"])
def test_exif_orientation_6_is_applied_and_exif_dropped(fmt):
    # Given a 40x20 picture stored sideways: EXIF orientation 6 (rotate 90 degrees clockwise to view)
    data = save(corner_marked((40, 20)), fmt, exif=exif_with(6, gps=True))
    assert Image.open(io.BytesIO(data)).getexif()[ORIENTATION] == 6
    # When it is prepared
    result = prepare_for_upstream(data, limit_bytes=LIMIT)
    # Then the upstream gets it upright: 20x40, the red corner now top-right
    image = decoded(result)
    assert (result.width, result.height) == image.size == (20, 40)
    assert is_red(image.getpixel((16, 3)))
    assert is_blue(image.getpixel((3, 3)))
    assert "orientation applied" in result.changes
    assert result.changes[-1] == "re-encoded as JPEG quality 90"
    # And no EXIF at all went with it
    assert not image.getexif()
    assert "exif" not in image.info
    assert b"Exif" not in result.data


@pytest.mark.parametrize("orientation", range(2, 9))
def test_every_orientation_but_1_is_applied(orientation):
    data = save(corner_marked((40, 20)), "JPEG", exif=exif_with(orientation))
    result = prepare_for_upstream(data, limit_bytes=LIMIT)
    swapped = orientation >= 5
    assert (result.width, result.height) == ((20, 40) if swapped else (40, 20))
    assert "orientation applied" in result.changes


def app1_exif(orientation: int, endian: str) -> bytes:
    """An Exif APP1 segment by hand: one IFD0 entry, Orientation as a SHORT, in either byte order."""
    order = b"II" if endian == "<" else b"MM"
    tiff = order + struct.pack(endian + "HI", 42, 8) + struct.pack(endian + "H", 1)
    tiff += struct.pack(endian + "HHI", ORIENTATION, 3, 1) + struct.pack(endian + "HH", orientation, 0)
    tiff += struct.pack(endian + "I", 0)
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize(("orientation", "unchanged"), [(1, True), (3, False), (8, False), (0, True), (9, True)])
def test_header_parser_reads_orientation_in_both_byte_orders(endian, orientation, unchanged):
    # Given a JPEG carrying a hand-made Exif segment (big- or little-endian; 0 and 9 are invalid)
    plain = make_jpeg(3)
    data = plain[:2] + app1_exif(orientation, endian) + plain[2:]
    # When it is prepared, Then only a valid orientation other than 1 makes it re-encoded
    result = prepare_for_upstream(data, limit_bytes=LIMIT)
    assert (result.data is data) is unchanged


def test_gps_and_comments_never_survive_a_conversion():
    # Given a WebP with GPS in its EXIF, and a sideways JPEG with GPS, XMP and a comment
    photo = corner_marked((64, 48))
    webp = save(photo, "WEBP", exif=exif_with(None, gps=True))
    jpeg = save(
        photo, "JPEG", exif=exif_with(6, gps=True), comment=b"taken at 31.2N 121.4E", xmp=b"<x:xmpmeta>GPS</x:xmpmeta>"
    )
    for data in (webp, jpeg):
        # When each is prepared
        result = prepare_for_upstream(data, limit_bytes=LIMIT)
        # Then no metadata left with the pixels
        image = decoded(result)
        assert image.getexif().get_ifd(GPS_IFD) == {}
        assert not {"exif", "xmp", "comment", "icc_profile"} & set(image.info)
        assert b"31.2N" not in result.data
        assert b"xmpmeta" not in result.data


# --- size ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phone_photo() -> bytes:
    """A 4000x3000 noisy JPEG of about 9 MB: a 12 MP phone photo at its worst."""
    return save(noise((4000, 3000)), "JPEG", quality=85)


def test_9_mb_photo_is_shrunk_until_it_fits_3_mb(phone_photo):
    # Given a 9 MB, 4000x3000 JPEG, over tianapi's 3 MB
    assert 8_500_000 < len(phone_photo) < 9_500_000
    # When it is prepared
    result = prepare_for_upstream(phone_photo, limit_bytes=LIMIT)
    # Then it fits, smaller but in proportion, and the record says what was done
    assert len(result.data) <= LIMIT
    image = decoded(result)
    assert image.format == "JPEG"
    assert (result.width, result.height) == image.size
    assert 640 <= result.width < 4000
    assert result.width * 3 == pytest.approx(result.height * 4, abs=4)
    assert result.changes == (f"downscaled to {result.width}x{result.height}", "re-encoded as JPEG quality 70")


def test_over_the_limit_tries_quality_before_size():
    # Given a JPEG over the limit that fits once re-encoded at quality 90
    source = save(noise((300, 200), seed=5), "JPEG", quality=100)
    at_90 = save(Image.open(io.BytesIO(source)), "JPEG", quality=90)
    assert len(at_90) < len(source)
    # When it is prepared with a limit between the two
    result = prepare_for_upstream(source, limit_bytes=len(at_90))
    # Then it keeps every pixel and only lost quality
    assert (result.width, result.height) == (300, 200)
    assert result.changes == ("re-encoded as JPEG quality 90",)
    assert len(result.data) <= len(at_90)


@pytest.mark.parametrize("fmt", ["PNG", "BMP"])
def test_png_and_bmp_over_the_limit_become_jpeg(fmt):
    data = save(noise((400, 300), seed=7), fmt)
    result = prepare_for_upstream(data, limit_bytes=len(data) // 2)
    assert (result.format, result.original_format) == ("jpeg", fmt.lower())
    assert len(result.data) <= len(data) // 2
    assert decoded(result).format == "JPEG"


@pytest.mark.parametrize(("size", "smallest"), [((1000, 800), "640x512"), ((300, 200), "300x200")])
def test_image_that_cannot_fit_even_at_the_minimum_size_is_too_large(size, smallest):
    # Given a noisy image and a limit it cannot meet at 640 px (nor at its own size, when smaller)
    data = save(noise(size, seed=9), "JPEG", quality=90)
    # When it is prepared
    with pytest.raises(PipelineError) as caught:
        prepare_for_upstream(data, limit_bytes=5_000)
    # Then it ends as too large, saying how far it went; nothing was upscaled
    assert caught.value.code == "IMAGE_TOO_LARGE"
    assert f"even at {smallest} pixels and JPEG quality 70" in caught.value.message
    assert "5000 bytes" in caught.value.message


def test_large_jpeg_is_decoded_at_reduced_scale(monkeypatch):
    # Given a JPEG with more pixels than may be decoded at full size (a 48 MP photo, in miniature)
    monkeypatch.setattr(images, "MAX_DECODE_PIXELS", 5_000)
    data = save(corner_marked((200, 100)), "JPEG", exif=exif_with(6))
    # When it is prepared
    result = prepare_for_upstream(data, limit_bytes=LIMIT)
    # Then the decoder scaled it by 1/2 (DCT scaling), before the orientation was applied
    assert (result.width, result.height) == (50, 100)
    assert result.changes == ("orientation applied", "downscaled to 50x100", "re-encoded as JPEG quality 90")


def test_non_jpeg_too_big_to_decode_in_full_is_refused(monkeypatch):
    monkeypatch.setattr(images, "MAX_DECODE_PIXELS", 5_000)
    with pytest.raises(PipelineError, match=r"100x100 pixels; the maximum is 0 megapixels for a format") as caught:
        prepare_for_upstream(encoded("WEBP", (100, 100)), limit_bytes=LIMIT)
    assert caught.value.code == "IMAGE_TOO_LARGE"


def test_declared_dimensions_over_the_maximum_are_refused_from_the_header():
    # Given a small PNG whose header claims 10000x10000 pixels (a decompression bomb)
    data = bytearray(encoded("PNG"))
    data[16:24] = struct.pack(">II", 10_000, 10_000)
    # When it is prepared, even under the byte limit
    with pytest.raises(PipelineError, match="10000x10000 pixels; the maximum is 50 megapixels") as caught:
        prepare_for_upstream(bytes(data), limit_bytes=LIMIT)
    # Then it is too large, and nothing was decoded
    assert caught.value.code == "IMAGE_TOO_LARGE"


@pytest.mark.parametrize("size", [(40, 40), (100, 100)])  # over Pillow's limit: a warning; over twice: an error
def test_pillow_decompression_bomb_signals_become_too_large(monkeypatch, size):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    with pytest.raises(PipelineError, match="too many pixels") as caught:
        prepare_for_upstream(encoded("WEBP", size), limit_bytes=LIMIT)
    assert caught.value.code == "IMAGE_TOO_LARGE"


# --- corrupt data ----------------------------------------------------------------------------------------


def test_corrupt_webp_is_corrupt():
    # Given a WebP whose container and frame header are whole but whose picture is garbage
    data = bytearray(encoded("WEBP", (64, 64)))
    data[30:] = random.Random(1).randbytes(len(data) - 30)
    # When it is prepared (it must be decoded to be converted)
    with pytest.raises(PipelineError) as caught:
        prepare_for_upstream(bytes(data), limit_bytes=LIMIT)
    # Then it ends as corrupt, naming the format
    assert caught.value.code == "IMAGE_CORRUPT"
    assert caught.value.message.startswith("WEBP data cannot be decoded")


@pytest.mark.parametrize(
    "data",
    [
        save(noise((64, 64)), "GIF")[:-200],  # an interrupted upload
        b"II*\x00" + bytes(100),  # TIFF signature, nothing behind it
        b"MM\x00*\x00\x00\x00\x08" + b"\xff" * 50,
    ],
)
def test_undecodable_gif_and_tiff_are_corrupt(data):
    with pytest.raises(PipelineError) as caught:
        prepare_for_upstream(data, limit_bytes=LIMIT)
    assert caught.value.code == "IMAGE_CORRUPT"


def test_jpeg_headers_the_parser_cannot_read_go_to_pillow_which_judges():
    # Given a "JPEG" whose first segment claims to run past the end of the file
    data = b"\xff\xd8\xff\xe1\xff\xf0Exif\x00\x00" + bytes(20) + b"\xff\xd9"
    # When it is prepared, Then it is corrupt, not a crash and not sent
    with pytest.raises(PipelineError) as caught:
        prepare_for_upstream(data, limit_bytes=LIMIT)
    assert caught.value.code == "IMAGE_CORRUPT"


def test_a_missing_pillow_is_a_deployment_error_not_a_corrupt_image(monkeypatch):
    # Given a layer built without Pillow
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    # When an image needs converting, Then the invocation fails loudly instead of blaming the image
    with pytest.raises(ImportError):
        prepare_for_upstream(encoded("WEBP"), limit_bytes=LIMIT)
    # And the unchanged path still works
    data = make_jpeg(4)
    assert prepare_for_upstream(data, limit_bytes=LIMIT).data is data


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        prepare_for_upstream(make_jpeg(1), limit_bytes=0)

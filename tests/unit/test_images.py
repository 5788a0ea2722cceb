"""The image guard: formats from magic bytes, truncation and size caught before any paid call."""

import io

import pytest
from PIL import Image

from tests.conftest import make_jpeg
from vehicle_ocr.errors import PipelineError
from vehicle_ocr.images import check_image, check_size, sniff_format


def encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), "green").save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "jpeg"), ("PNG", "png"), ("BMP", "bmp")])
def test_accepted_formats_pass(fmt, name):
    assert check_image(encoded(fmt), 10_000_000) == name


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "gif"), ("WEBP", "webp"), ("TIFF", "tiff")])
def test_other_images_are_named_in_the_error(fmt, name):
    data = encoded(fmt)
    assert sniff_format(data) == name
    with pytest.raises(PipelineError, match=name.upper()) as caught:
        check_image(data, 10_000_000)
    assert caught.value.code == "IMAGE_UNSUPPORTED"


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
    ],
)
def test_unusable_objects_get_a_code(data, code):
    with pytest.raises(PipelineError) as caught:
        check_image(data, 10_000_000)
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

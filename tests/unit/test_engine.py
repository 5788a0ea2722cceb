"""The offline engine (provider "local"): plates and vehicle licences from small rendered images.

The geometry and colour rules are tested on hand-made OCR lines and pixel patches (fast, no
model); the whole recognisers on images drawn here with a CJK font (the real PP-OCR models,
about a second to load once per test session).
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rapidocr", reason="the offline engine's extra (rapidocr) is not installed")

import cv2
from PIL import Image, ImageDraw, ImageFont

from vehicle_ocr.errors import PipelineError
from vehicle_ocr.normalize.plates import PROVINCES, normalize_plate
from vehicle_ocr.normalize.vehicle_license import VEHICLE_LICENSE_FIELDS, normalize_vehicle_license
from vehicle_ocr.providers.base import ProviderAnswer
from vehicle_ocr_local import engine
from vehicle_ocr_local.engine import grammar, ocr, reader
from vehicle_ocr_local.engine.authority import candidates
from vehicle_ocr_local.engine.colors import cast_gains, plate_color
from vehicle_ocr_local.engine.ocr import OcrLine, ctc_greedy, ctc_log_likelihood

CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
CJK_FONT = next((path for path in CJK_FONTS if Path(path).exists()), None)
needs_font = pytest.mark.skipif(CJK_FONT is None, reason="no CJK font installed (apt-get install fonts-wqy-zenhei)")

BLUE, WHITE, YELLOW, BLACK = (14, 62, 180), (245, 245, 242), (246, 190, 20), (18, 18, 20)


def line(text: str, x0: float, y0: float, x1: float, y1: float, score: float = 0.99) -> OcrLine:
    return OcrLine(text=text, score=score, box=((x0, y0), (x1, y0), (x1, y1), (x0, y1)))


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def font(size: int) -> ImageFont.FreeTypeFont:
    assert CJK_FONT is not None
    return ImageFont.truetype(CJK_FONT, size)


def plate_photo(text: str, background: tuple[int, int, int], ink: tuple[int, int, int]) -> bytes:
    """A plate (440 x 140 proportions) on a grey street-ish scene."""
    plate = Image.new("RGB", (440, 140), background)
    draw = ImageDraw.Draw(plate)
    draw.rounded_rectangle((5, 5, 434, 134), radius=10, outline=ink, width=4)
    draw.text((220, 72), text, font=font(88), fill=ink, anchor="mm")
    scene = Image.new("RGB", (800, 500), (96, 98, 104))
    scene.paste(plate.resize((300, 95)), (250, 280))
    return jpeg(scene)


def license_photo() -> bytes:
    """A front page (主页) with labels, values beside them, and a bilingual caption."""
    page = Image.new("RGB", (1000, 640), (226, 236, 222))
    draw = ImageDraw.Draw(page)
    draw.text((500, 50), "中华人民共和国机动车行驶证", font=font(40), fill=(30, 30, 30), anchor="mm")
    rows = [
        [("号牌号码", "沪A12345"), ("车辆类型", "小型轿车")],
        [("所有人", "张三")],
        [("住址", "上海市浦东新区锦绣路1500号")],
        [("使用性质", "非营运"), ("品牌型号", "大众汽车牌SVW7152")],
        [("车辆识别代号", "LSVAB6184KN204731")],
        [("注册日期", "2019-05-14"), ("发证日期", "2019-05-20")],
    ]
    y = 130
    for row in rows:
        for column, (label, value) in enumerate(row):
            x = 40 if column == 0 else 520
            draw.text((x, y), label, font=font(30), fill=(50, 50, 50), anchor="lm")
            draw.text(
                (x + draw.textlength(label, font=font(30)) + 28, y),
                value,
                font=font(32),
                fill=(15, 15, 30),
                anchor="lm",
            )
        y += 80
    return jpeg(page)


@pytest.fixture(scope="module")
def plates() -> engine.LocalPlateRecognizer:
    return engine.LocalPlateRecognizer()


@pytest.fixture(scope="module")
def licences() -> engine.LocalVehicleLicenseRecognizer:
    return engine.LocalVehicleLicenseRecognizer()


# --------------------------------------------------------------------------- the contract


def test_recognisers_have_the_names_and_kinds_the_factory_expects():
    # Given the two classes build_recognizers instantiates without arguments
    plate, licence = engine.LocalPlateRecognizer(), engine.LocalVehicleLicenseRecognizer()
    # Then they present themselves as provider "local", one per kind
    assert (plate.name, plate.kind) == ("local", "plate")
    assert (licence.name, licence.kind) == ("local", "vehicle_license")


# --------------------------------------------------------------------------- whole images


@needs_font
def test_a_clean_blue_plate_is_read_with_its_colour(plates):
    # Given a photo of a blue plate with white characters
    image = plate_photo("沪A·12345", BLUE, WHITE)
    # When the local recogniser reads it
    answer = plates.recognize(image)
    # Then it answers one plate, which the pipeline normalises to the number and colour printed
    assert isinstance(answer, ProviderAnswer) and answer.provider == "local"
    assert len(answer.payload) == 1
    plate = normalize_plate(answer.payload[0])
    assert (plate["number"], plate["color"], plate["valid"]) == ("沪A12345", "blue", True)
    assert 0.5 < plate["confidence"] <= 1.0
    # And the engine says where the plate is: [x1, y1, x2, y2] in the photo's pixels, on the pasted plate
    x1, y1, x2, y2 = answer.payload[0]["box"]
    assert 250 <= x1 < x2 <= 550 and 280 <= y1 < y2 <= 375


@needs_font
def test_the_box_is_in_the_photos_own_pixels_when_the_photo_was_downscaled(plates):
    # Given a photo larger than the engine works on (it is halved before OCR)
    scene = Image.open(io.BytesIO(plate_photo("沪A·12345", BLUE, WHITE)))
    big = scene.resize((scene.width * 5, scene.height * 5))
    # When it is read, Then the box is on the plate in the photo as uploaded, not in the halved copy
    [raw] = plates.recognize(jpeg(big)).payload
    x1, y1, x2, y2 = raw["box"]
    assert 1250 <= x1 < x2 <= 2750 and 1400 <= y1 < y2 <= 1875


@needs_font
def test_a_red_suffix_outside_the_detectors_box_is_still_read(plates):
    # Given a white police plate whose 警 is printed in red, a little apart from the serial
    plate = Image.new("RGB", (470, 140), WHITE)
    draw = ImageDraw.Draw(plate)
    draw.rounded_rectangle((5, 5, 464, 134), radius=10, outline=BLACK, width=4)
    draw.text((30, 72), "京A·0321", font=font(84), fill=BLACK, anchor="lm")
    draw.text((372, 72), "警", font=font(84), fill=(200, 20, 30), anchor="lm")
    scene = Image.new("RGB", (800, 500), (96, 98, 104))
    scene.paste(plate.resize((320, 95)), (240, 280))
    # When it is read, Then the suffix is part of the number and the plate is white
    [raw] = plates.recognize(jpeg(scene)).payload
    assert (normalize_plate(raw)["number"], raw["color"]) == ("京A0321警", "white")


@needs_font
def test_a_yellow_coach_plate_keeps_its_suffix_and_colour(plates):
    answer = plates.recognize(plate_photo("粤B·1234学", YELLOW, BLACK))
    [plate] = [normalize_plate(raw) for raw in answer.payload]
    assert (plate["number"], plate["color"], plate["kind"]) == ("粤B1234学", "yellow", "coach")


def test_an_image_without_text_has_no_plate(plates):
    # Given a photo of nothing readable
    scene = Image.new("RGB", (640, 480), (120, 130, 140))
    ImageDraw.Draw(scene).rectangle((100, 100, 400, 300), fill=(40, 60, 90))
    # When it is recognised, Then the payload is empty (the pipeline turns that into NO_PLATE_FOUND)
    assert plates.recognize(jpeg(scene)).payload == []


@pytest.mark.parametrize(
    "data",
    [b"not an image at all", b"\xff\xd8\xff\xe0" + b"\x00" * 64, jpeg(Image.new("RGB", (64, 64)))[:200]],
    ids=["garbage", "jpeg-header-only", "truncated-jpeg"],
)
def test_undecodable_bytes_fail_as_image_corrupt(plates, licences, data):
    for recognizer in (plates, licences):
        with pytest.raises(PipelineError) as caught:
            recognizer.recognize(data)
        assert caught.value.code == "IMAGE_CORRUPT"
        assert caught.value.provider == "local"
        assert caught.value.retryable is False


@needs_font
def test_a_licence_page_gives_its_labelled_fields(licences):
    # Given a front page with labels and their values beside them, two pairs on some rows
    answer = licences.recognize(license_photo())
    fields = answer.payload
    # Then the payload is apizero's 20 fields, as strings
    assert set(fields) == set(VEHICLE_LICENSE_FIELDS)
    assert all(isinstance(value, str) for value in fields.values())
    # And after the pipeline's normalisation the printed values come out
    record = normalize_vehicle_license(fields)
    assert record["plate_number"] == "沪A12345"
    assert record["vehicle_type"] == "小型轿车"
    assert record["owner"] == "张三"
    assert record["address"] == "上海市浦东新区锦绣路1500号"
    assert record["use_character"] == "非营运"
    assert record["model"] == "大众汽车牌SVW7152"
    assert record["vin"] == "LSVAB6184KN204731" and record["vin_valid"] is True
    assert (record["register_date"], record["issue_date"]) == ("2019-05-14", "2019-05-20")
    # And fields not printed on this page stay empty
    assert fields["total_mass"] == "" and fields["inspection_record"] == ""


def test_a_photo_without_licence_labels_is_no_licence(licences):
    scene = Image.new("RGB", (640, 480), (200, 200, 200))
    with pytest.raises(PipelineError) as caught:
        licences.recognize(jpeg(scene))
    assert caught.value.code == "NO_LICENSE_FOUND"


def test_a_transparent_png_is_read_on_white():
    # Given an RGBA PNG whose pixels are fully transparent
    buffer = io.BytesIO()
    Image.new("RGBA", (40, 20), (0, 0, 0, 0)).save(buffer, "PNG")
    # When decoded, Then it is white, not black
    rgb = engine.decode_image(buffer.getvalue())
    assert rgb.shape == (20, 40, 3) and int(rgb.min()) == 255


def test_huge_photos_are_downscaled_before_ocr():
    big = Image.new("RGB", (5000, 2500), (10, 20, 30))
    rgb = engine.decode_image(jpeg(big))
    assert max(rgb.shape[:2]) <= ocr.MAX_SIDE
    assert rgb.shape[1] / rgb.shape[0] == pytest.approx(2.0, rel=0.01)


# --------------------------------------------------------------------------- the shared engine


def test_the_engine_is_loaded_once_for_both_recognisers(monkeypatch, plates, licences):
    # Given a process where the OCR engine has not been created yet
    real_create = ocr._create_engine
    created = []

    def counting_create():
        created.append(1)
        return real_create()

    monkeypatch.setattr(ocr, "_engine", None)
    monkeypatch.setattr(ocr, "_loads", 0)
    monkeypatch.setattr(ocr, "_create_engine", counting_create)
    blank = jpeg(Image.new("RGB", (320, 240), (200, 200, 200)))
    # When both recognisers recognise images, twice each
    for _ in range(2):
        plates.recognize(blank)
        with pytest.raises(PipelineError):
            licences.recognize(blank)
    # Then the engine was created exactly once, and both used that one instance
    assert len(created) == 1
    assert engine.load_count() == 1
    assert engine.ocr_engine() is engine.ocr_engine()


def test_concurrent_first_calls_create_the_engine_once(monkeypatch):
    created = []

    def slow_create():
        created.append(1)
        time.sleep(0.2)
        return object()

    monkeypatch.setattr(ocr, "_engine", None)
    monkeypatch.setattr(ocr, "_loads", 0)
    monkeypatch.setattr(ocr, "_create_engine", slow_create)
    results = []
    threads = [threading.Thread(target=lambda: results.append(ocr.ocr_engine())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(created) == 1
    assert len({id(result) for result in results}) == 1


def test_rapidocr_prints_nothing_per_call(plates, capfd):
    # Given the engine is loaded (it may log while loading)
    engine.ocr_engine()
    capfd.readouterr()
    # When images with and without text are recognised
    plates.recognize(jpeg(Image.new("RGB", (320, 240), (200, 200, 200))))
    engine.raw_ocr(jpeg(Image.new("RGB", (320, 240), (90, 90, 90))))
    # Then rapidocr wrote nothing (it logs INFO/WARNING lines to stderr by default)
    out, err = capfd.readouterr()
    assert "RapidOCR" not in out + err


def test_raw_ocr_is_the_plain_rapidocr_call():
    result = engine.raw_ocr(jpeg(Image.new("RGB", (320, 240), (200, 200, 200))))
    assert type(result).__module__.startswith("rapidocr")


# --------------------------------------------------------------------------- plates from lines


def blue_page() -> np.ndarray:
    rgb = np.full((300, 600, 3), 90, dtype=np.uint8)
    rgb[100:160, 100:400] = BLUE
    rgb[115:145, 120:380:12] = WHITE  # glyph strokes
    return rgb


def test_a_plate_split_at_the_separator_is_joined():
    # Given the detector boxed "沪A" and "12345" separately, side by side
    lines = [line("沪A", 100, 100, 175, 160), line("12345", 190, 100, 400, 160)]
    # Then one plate is found, with both boxes' colour
    [plate] = engine.find_plates(blue_page(), lines)
    assert (plate.number, plate.color) == ("沪A12345", "blue")


def test_the_separator_read_as_a_dot_or_middle_dot_is_dropped():
    for text in ("沪A·12345", "沪A.12345", "沪A 12345", "沪A-12345", "滬A•12345"):
        [plate] = engine.find_plates(blue_page(), [line(text, 100, 100, 400, 160)])
        assert plate.number == "沪A12345", text


def test_a_two_row_plate_is_read_top_row_first():
    # Given a rear truck plate: "沪A" small on top, "12345" large below
    rgb = np.full((300, 400, 3), 90, dtype=np.uint8)
    rgb[40:200, 80:320] = YELLOW
    lines = [line("沪·A", 150, 50, 250, 90), line("12345", 90, 95, 310, 190)]
    [plate] = engine.find_plates(rgb, lines)
    assert (plate.number, plate.color) == ("沪A12345", "yellow")


def test_several_plates_and_special_kinds_are_reported_left_to_right():
    rgb = np.full((200, 1200, 3), 90, dtype=np.uint8)
    lines = [
        line("WJ粤·28763", 700, 50, 950, 100),
        line("使014·578", 1000, 50, 1190, 100),
        line("京A·0762学", 20, 50, 250, 100),
        line("VA·60532", 300, 50, 500, 100),
        line("粤Z·F023港", 520, 50, 690, 100),
        line("停车场入口", 20, 150, 300, 190),
    ]
    numbers = [plate.number for plate in engine.find_plates(rgb, lines)]
    assert numbers == ["京A0762学", "VA60532", "粤ZF023港", "WJ粤28763", "使014578"]


def test_new_energy_plates_keep_eight_characters():
    rgb = np.full((200, 600, 3), 90, dtype=np.uint8)
    found = engine.find_plates(rgb, [line("沪A·D71829", 20, 50, 280, 100), line("粤B·04571D", 300, 50, 580, 100)])
    assert [plate.number for plate in found] == ["沪AD71829", "粤B04571D"]


def test_an_eight_character_plate_that_looks_white_is_a_green_new_energy_plate():
    # Given a pale plate with dark glyphs, as a new-energy plate's faded green gradient photographs
    rgb = np.full((300, 600, 3), 90, dtype=np.uint8)
    rgb[100:160, 100:400] = WHITE
    rgb[115:145, 120:380:12] = BLACK
    # When its line reads eight characters, Then it is green; a seven-character police plate stays white
    [new_energy] = engine.find_plates(rgb, [line("沪A·D71829", 100, 100, 400, 160)])
    [police] = engine.find_plates(rgb, [line("京A·0321警", 100, 100, 400, 160)])
    assert (new_energy.number, new_energy.color) == ("沪AD71829", "green")
    assert (police.number, police.color) == ("京A0321警", "white")


def test_a_province_misread_as_its_look_alike_is_repaired():
    [plate] = engine.find_plates(blue_page(), [line("相T·506A学", 100, 100, 400, 160)])
    assert plate.number == "湘T506A学"


def test_text_that_is_no_plate_is_ignored():
    lines = [line("欢迎光临", 10, 10, 200, 50), line("限速5km/h", 10, 60, 200, 100), line("EXIT", 10, 110, 100, 150)]
    assert engine.find_plates(blue_page(), lines) == []


def blue_plate(text: str) -> Image.Image:
    """A blue plate face, 440 x 140 like a real one, with ``text`` in white."""
    plate = Image.new("RGB", (440, 140), BLUE)
    ImageDraw.Draw(plate).text((220, 72), text, font=font(88), fill=WHITE, anchor="mm")
    return plate


@needs_font
def test_a_short_plate_line_is_stretched_for_reading_and_boxed_on_the_plate():
    # Given a small plate whose line is much shorter than the recogniser's input width (about 3:1)
    plate = blue_plate("鄂A·66666")
    scene = Image.new("RGB", (400, 200), (96, 98, 104))
    scene.paste(plate.resize((120, 40)), (100, 60))
    quad = ((105.0, 68.0), (215.0, 68.0), (215.0, 92.0), (105.0, 92.0))
    # When the line is read again
    reading = reader.read_line(np.asarray(scene), quad, color="blue")
    # Then every repeated digit is kept, and the box lies on the plate, not on the widened crop
    assert reading is not None and reading.number == "鄂A66666"
    x0, _, x1, _ = reading.box
    assert 90 <= x0 < 120 and 200 < x1 <= 230


REAL_PLATES = Path(__file__).resolve().parents[2] / "samples" / "real" / "plates"


def real_photo(name: str) -> bytes:
    path = REAL_PLATES / name
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path.read_bytes()


def test_a_province_the_wide_crop_cannot_read_is_read_from_a_tighter_crop(plates):
    # Given a phone photo (samples/real) of a small plate, 闽E99999, in the car's dark recess: in the crop
    # widened by 0.8 line heights the recogniser sees almost nothing of 闽 (p 0.001), nor when 闽 is read
    # alone, while the rest of the plate is read without doubt
    photo = real_photo("passerbyzzz-fujian-4.jpg")
    # When it is recognised
    [plate] = plates.recognize(photo).payload
    # Then the line read again from a crop 0.35 line heights wide gives the province, sure enough to return
    assert (plate["number"], plate["color"]) == ("闽E99999", "blue")
    assert plate["confidence"] >= 0.5


def test_a_blue_plate_whose_line_reads_as_a_military_number_is_read_from_two_looks_at_its_province(plates):
    # Given 沪A·78730 on a blue plate, whose faint 沪 the detector's line reads as "F": "FA78730" has the
    # shape of a (white) military plate, and each crop sees the 沪 only faintly (p 0.05 and 0.02)
    photo = real_photo("passerbyzzz-shanghai-3.jpg")
    # When it is recognised
    [plate] = plates.recognize(photo).payload
    # Then the military reading is no contender on a blue plate, and the two crops that both read 沪
    # together give it enough evidence to be returned
    assert (plate["number"], plate["color"]) == ("沪A78730", "blue")
    assert plate["confidence"] >= 0.5


@needs_font
def test_a_plate_the_detector_found_no_text_on_is_read_from_its_plate_coloured_rectangle():
    # Given a small, slightly tilted blue plate on a car, and a blue square (a sign) beside it, and the
    # detector finding no text at all (as on a soft 140 px wide photo scaled up for detection)
    scene = Image.new("RGB", (480, 320), (70, 72, 78))
    plate = blue_plate("吉A·44444").resize((150, 48)).convert("RGBA").rotate(6, expand=True, resample=Image.BICUBIC)
    scene.paste(plate, (170, 180), plate)
    ImageDraw.Draw(scene).rectangle((30, 30, 110, 110), fill=BLUE)
    # When plates are found
    found = engine.find_plates(np.asarray(scene), [])
    # Then the plate is read from its colour, with its colour and a box on it; the square is no plate
    assert [(p.number, p.color) for p in found] == [("吉A44444", "blue")]
    x0, y0, x1, y1 = found[0].box
    assert 160 <= x0 < 200 and 290 < x1 <= 340 and 170 <= y0 < y1 <= 260


def test_a_photo_with_plate_coloured_shapes_but_no_plate_has_no_plate():
    # Given plate-shaped blue and yellow bars with no characters on them, and no text detected
    scene = np.full((300, 500, 3), 90, dtype=np.uint8)
    scene[40:90, 40:200] = BLUE
    scene[150:200, 250:420] = YELLOW
    # When plates are found, Then none is returned: an empty plate reads as no plate
    assert engine.find_plates(scene, []) == []


@needs_font
def test_text_under_a_whole_plate_is_not_read_as_the_lower_row_of_a_two_row_plate():
    # Given a plate with a dealer's frame text right under it, off to the left, so that where a two-row
    # plate's upper row would stand over that text there is the plate's own clear "粤L"; both boxed
    plate = blue_plate("粤L·8888B")
    scene = Image.new("RGB", (600, 400), (200, 200, 200))
    scene.paste(plate.resize((300, 95)), (150, 100))
    ImageDraw.Draw(scene).text((240, 225), "FV 5043", font=font(56), fill=BLACK, anchor="mm")
    lines = [line("粤L·8888B", 150, 111, 451, 188, 0.99), line("FV 5043", 137, 194, 343, 255, 0.97)]
    # When plates are found, Then the plate is read once and the frame text lends it no upper row
    # (read as one, the two would make a confident "粤LFV504")
    assert [plate.number for plate in engine.find_plates(np.asarray(scene), lines)] == ["粤L8888B"]


# --------------------------------------------------------------------------- plate colours


def patch(background, ink, split=None) -> np.ndarray:
    rgb = np.zeros((60, 200, 3), dtype=np.uint8)
    rgb[:] = background
    if split is not None:
        rgb[:, :50] = split
    rgb[15:45, 20:190:14] = ink
    rgb[15:45, 21:190:14] = ink
    return rgb


@pytest.mark.parametrize(
    ("background", "ink", "split", "expected"),
    [
        (BLUE, WHITE, None, "blue"),
        (YELLOW, BLACK, None, "yellow"),
        ((60, 180, 90), BLACK, None, "green"),
        ((70, 176, 92), BLACK, YELLOW, "yellow_green"),
        (WHITE, BLACK, None, "white"),
        (BLACK, WHITE, None, "black"),
        (tuple(int(c * 0.55) for c in BLUE), (150, 150, 150), None, "blue"),  # at dusk
        (tuple(int(c * 0.6) for c in YELLOW), (10, 10, 10), None, "yellow"),
    ],
)
def test_plate_colour_from_the_background_around_the_glyphs(background, ink, split, expected):
    rgb = patch(background, ink, split)
    assert plate_color(rgb, 0, 0, rgb.shape[1], rgb.shape[0]) == expected


def test_a_white_plate_half_in_shadow_stays_white_and_a_black_one_in_sun_black():
    # A cast shadow over the right half turns the white background grey there
    white = patch(WHITE, BLACK)
    white[:, 90:] = (white[:, 90:] * 0.4).astype(np.uint8)
    assert plate_color(white, 0, 0, 200, 60) == "white"
    # A patch of sunlight over a black plate's left half lifts its background to grey
    black = patch(BLACK, WHITE)
    black[:, :110] = np.clip(black[:, :110].astype(int) * 4 + 40, 0, 255).astype(np.uint8)
    assert plate_color(black, 0, 0, 200, 60) == "black"


def test_a_tilted_plate_is_straightened_before_its_colour_is_judged():
    # A yellow plate tilted in a dark car body: the axis-aligned box's corners are mostly car
    rgb = np.full((300, 400, 3), 25, dtype=np.uint8)
    quad = np.array([[60, 150], [340, 60], [350, 120], [70, 210]], dtype=np.int32)
    cv2.fillPoly(rgb, [quad], YELLOW)
    box = (60, 60, 350, 210)
    assert plate_color(rgb, *box, quad=[tuple(p) for p in quad.tolist()]) == "yellow"


def test_the_gradient_green_of_new_energy_plates_is_green():
    rows = np.linspace(0, 1, 60)[:, None, None]
    rgb = (np.array([236, 248, 236]) * (1 - rows**0.7) + np.array([72, 178, 96]) * rows**0.7).repeat(200, axis=1)
    rgb = rgb.astype(np.uint8)
    rgb[15:45, 20:190:14] = BLACK
    assert plate_color(rgb, 0, 0, 200, 60) == "green"


# --------------------------------------------------------------------------- licences from lines


def test_labels_and_values_in_one_line_or_side_by_side_and_two_per_row():
    lines = [
        line("号牌号码 沪A12345", 40, 100, 300, 130),
        line("车辆类型", 520, 100, 640, 130),
        line("小型轿车", 660, 100, 800, 130),
        line("Plate No.", 40, 132, 110, 146),
        line("住址", 40, 200, 100, 230),
        line("上海市浦东新区", 180, 200, 420, 230),
        line("锦绣路1500号", 430, 200, 600, 230),
        line("核定载人数 5人", 40, 300, 300, 330),
        line("总质量", 520, 300, 610, 330),
        line("1,945 kg", 660, 300, 780, 330),
        line("外廓尺寸 4885×1840×1455mm", 40, 400, 500, 430),
    ]
    fields = engine.parse_license(np.full((600, 900, 3), 230, np.uint8), lines)
    record = normalize_vehicle_license(fields)
    assert record["plate_number"] == "沪A12345"
    assert record["vehicle_type"] == "小型轿车"
    assert record["address"] == "上海市浦东新区锦绣路1500号"
    assert record["approved_passengers"] == 5
    assert record["total_mass_kg"] == 1945
    assert record["dimensions_mm"] == {"length": 4885, "width": 1840, "height": 1455}


def test_a_partly_hidden_label_still_names_its_field():
    # Given a seal hid the first character of 发动机号码 and the OCR merged the value into the line
    lines = [
        line("动机号码DJS083417", 40, 100, 400, 130),
        line("注册日期", 40, 200, 150, 230),
        line("2019-05-14", 180, 200, 330, 230),
    ]
    fields = engine.parse_license(np.full((400, 600, 3), 230, np.uint8), lines)
    assert fields["engine_number"] == "DJS083417"
    assert fields["register_date"] == "2019-05-14"


def test_a_value_printed_under_its_label_is_found():
    # 副页: the inspection record is printed in a box below its label, the caption between them
    lines = [
        line("检验记录", 40, 100, 160, 130),
        line("Inspection Record", 40, 132, 170, 146),
        line("检验有效期至2025年05月沪A", 60, 160, 420, 192),
    ]
    fields = engine.parse_license(np.full((400, 600, 3), 230, np.uint8), lines)
    assert fields["inspection_record"] == "检验有效期至2025年05月沪A"


def test_a_page_beside_another_does_not_lend_it_values():
    # Two pages photographed side by side: the right page's value is far from the left page's label
    lines = [
        line("发动机号码", 20, 100, 120, 120),
        line("HR16832907B", 140, 100, 260, 120),
        line("检验有效期至2025年10月湘A", 560, 100, 780, 120),
    ]
    fields = engine.parse_license(np.full((300, 900, 3), 230, np.uint8), lines)
    assert fields["engine_number"] == "HR16832907B"


def test_a_dash_means_empty():
    lines = [line("准牵引总质量", 40, 100, 200, 130), line("--", 230, 100, 260, 130)]
    fields = engine.parse_license(np.full((300, 600, 3), 230, np.uint8), lines)
    assert fields["traction_mass"] == ""


def test_no_label_at_all_is_no_licence():
    with pytest.raises(PipelineError) as caught:
        engine.parse_license(np.full((100, 100, 3), 230, np.uint8), [line("欢迎光临", 0, 0, 90, 30)])
    assert caught.value.code == "NO_LICENSE_FOUND"


# --------------------------------------------------------------------------- the seal's authority


def test_authority_names_the_page_makes_plausible():
    prefecture = {c.text for c in candidates("浙A52B7M", "浙江省杭州市西湖区文三路259号")}
    assert "浙江省杭州市公安局交通警察支队" in prefecture
    municipality = {c.text for c in candidates("沪A5K2M7", "上海市闵行区七莘路2018弄15号")}
    assert "上海市公安局交通警察总队" in municipality
    # An address in another province than the plate's says nothing about the seal
    assert candidates("浙A52B7M", "江苏省苏州市工业园区星湖街328号") == []


def test_ctc_scores_prefer_the_text_the_frames_spell():
    characters = ["blank", "公", "安", "局"]
    frames = np.full((6, 4), 0.02, dtype=np.float32)
    for t, best in enumerate([1, 0, 2, 2, 0, 3]):  # 公 _ 安 安 _ 局
        frames[t, best] = 0.94
    text, log_likelihood = ctc_greedy(frames, characters)
    index = {c: i for i, c in enumerate(characters)}
    assert text == "公安局"
    assert log_likelihood == pytest.approx(ctc_log_likelihood(frames, "公安局", index))
    assert ctc_log_likelihood(frames, "公安局", index) > ctc_log_likelihood(frames, "公局", index) + 2
    assert ctc_log_likelihood(frames, "交通", index) == float("-inf")


# --------------------------------------------------------------------------- the plate grammar decoder

# A small recogniser alphabet: the blank, the plate characters and a few look-alikes and strangers.
ALPHABET = ["blank", *PROVINCES, *"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", *"学警港澳挂领使", "·", "周", "折", "欢"]


def frames_for(*reads: str | dict[str, float]) -> np.ndarray:
    """CTC frames: each read is one frame ("_" a gap, a character, or {char: probability} for an unsure one);
    a blank frame is put between reads so that repeated characters stay two."""
    rows = []
    for read in reads:
        spread = {read: 0.97} if isinstance(read, str) else dict(read)
        for frame in (spread, {"_": 0.97}):
            row = np.full(len(ALPHABET), 1e-4, dtype=np.float32)
            for char, probability in frame.items():
                row[0 if char == "_" else ALPHABET.index(char)] = probability
            rows.append(row / row.sum())
    return np.stack(rows)


def spell(text: str) -> list[str]:
    return ["_", *text, "_"]


def test_the_grammar_keeps_a_plate_read_cleanly():
    [best, *_] = grammar.decode(frames_for(*spell("苏A·4762B")), ALPHABET)
    assert (best.number, best.layout) == ("苏A4762B", "regular")
    assert best.confidence > 0.9


def test_look_alikes_are_settled_by_the_position_and_the_scores():
    # O and I cannot stand in a serial: they are read as 0 and 1; an unsure 8/B goes to the likelier one
    reads = ["_", "京", "A", "O", "I", {"8": 0.6, "B": 0.35}, "2", "5", "_"]
    [best, *_] = grammar.decode(frames_for(*reads), ALPHABET)
    assert best.number == "京A01825"
    # ... and the unsure character makes the whole plate less sure than a clean one
    [clean, *_] = grammar.decode(frames_for(*spell("京A01825")), ALPHABET)
    assert best.confidence < clean.confidence


def test_a_province_read_as_a_stranger_is_taken_from_the_provinces_only():
    # 浙 misread as "M" on a colour-cast frame: among the provinces only 浙 has any weight there
    reads = ["_", {"M": 0.86, "浙": 0.12}, "B", "7", "3", "1", "9", "0", "_"]
    [best, *_] = grammar.decode(frames_for(*reads), ALPHABET)
    assert best.number == "浙B73190"
    assert best.chars[0].share > 0.9
    assert best.chars[0].p == pytest.approx(0.12, abs=0.01)


def test_a_province_seen_nowhere_gives_a_plate_with_no_confidence():
    # Only the serial was in the crop: some province is forced in, but the reading says it saw none
    [best, *_] = grammar.decode(frames_for(*spell("B73190")), ALPHABET)
    assert best.confidence < 0.2


def test_suffixes_prefixes_and_eight_character_plates_are_layouts_of_their_own():
    cases = {
        "鄂F8888警": "suffixed",
        "沪A1707领": "consulate",
        "使224424": "embassy",
        "粤ZF023港": "hong_kong_macau",
        "沪AD71829": "new_energy_small",
        "粤B04571D": "new_energy_large",
        "WJ粤28763": "armed_police",
    }
    for number, layout in cases.items():
        [best, *_] = grammar.decode(frames_for(*spell(number)), ALPHABET)
        assert (best.number, best.layout) == (number, layout)


def test_the_plate_colour_keeps_a_blue_plate_at_seven_characters():
    # A bolt beside a blue plate read as "B": an eight-character new-energy layout would explain it
    reads = ["_", "京", "A", "8", "8", "8", "8", "8", {"B": 0.85}, "_"]
    [free, *_] = grammar.decode(frames_for(*reads), ALPHABET)
    [blue, *_] = grammar.decode(frames_for(*reads), ALPHABET, penalties=grammar.color_penalties("blue"))
    assert free.number == "京A88888B"
    assert (blue.number, blue.layout) == ("京A88888", "regular")


def test_a_look_alike_is_weak_evidence_so_a_new_energy_marker_is_not_swapped_for_a_digit():
    # 云AD16666: the D could be read as 0 and the last 6 as G (large new-energy layout) only by look-alikes
    [best, *_] = grammar.decode(frames_for(*spell("云AD16666")), ALPHABET, penalties=grammar.color_penalties("green"))
    assert (best.number, best.layout) == ("云AD16666", "new_energy_small")


def test_a_zero_read_as_the_authority_letter_is_the_round_letter_the_recogniser_saw_behind_it():
    # Given 晋O88888 (a provincial public-security plate) whose O the recogniser reads as a clear "0",
    # with the letter O, not D or Q, its runner-up
    reads = ["_", "晋", {"0": 0.97, "O": 0.003}, "8", "8", "8", "8", "8", "_"]
    # When decoded, Then the authority letter is O, and the plate is sure enough to be returned
    [best, *_] = grammar.decode(frames_for(*reads), ALPHABET, penalties=grammar.color_penalties("blue"))
    assert best.number == "晋O88888"
    assert best.confidence > 0.5
    # Given a D blurred towards a 0 (the recogniser's first choice) but with the D seen too, Then it stays a D
    reads = ["_", "宁", {"0": 0.49, "D": 0.21, "O": 0.003}, "8", "A", "9", "1", "5", "_"]
    [best, *_] = grammar.decode(frames_for(*reads), ALPHABET, penalties=grammar.color_penalties("blue"))
    assert best.number == "宁D8A915"


def test_repeated_digits_keep_their_count():
    [best, *_] = grammar.decode(frames_for(*spell("鄂A66666")), ALPHABET)
    assert best.number == "鄂A66666"


def test_a_letter_read_with_a_diacritic_is_evidence_for_that_letter():
    # Given the authority letter read as "Å" (a screw or a speck over the A)
    alphabet = [*ALPHABET, "Å", "①"]
    reads = ["_", "晋", "Å", "V", "6", "6", "0", "0", "_"]
    frames = frames_for(*(r if r != "Å" else "A" for r in reads))
    accented = np.zeros((frames.shape[0], 2), dtype=np.float32)
    accented[:, :] = 1e-4
    column_a = ALPHABET.index("A")
    accented[:, 0], frames[:, column_a] = frames[:, column_a], 1e-4
    # When decoded, Then it is an A, seen with full evidence
    [best, *_] = grammar.decode(np.concatenate([frames, accented], axis=1), alphabet)
    assert best.number == "晋AV6600"
    assert best.chars[1].p > 0.9


def test_text_beside_the_plate_is_skipped_and_a_separator_is_no_character():
    reads = ["欢", "_", "苏", "A", "·", "4", "7", "6", "2", "B", "_", "欢"]
    [best, *_] = grammar.decode(frames_for(*reads), ALPHABET)
    assert best.number == "苏A4762B"
    assert 0.1 < best.span[0] < best.span[1] < 0.9


def test_a_two_row_plate_decodes_its_rows_with_their_own_layouts():
    [top, *_] = grammar.decode(frames_for(*spell("鲁R")), ALPHABET, grammar.TOP_ROW_LAYOUTS)
    [bottom, *_] = grammar.decode(frames_for(*spell("7E86挂")), ALPHABET, grammar.BOTTOM_ROW_LAYOUTS)
    assert top.number + bottom.number == "鲁R7E86挂"


def test_nothing_is_decoded_from_fewer_frames_than_characters():
    assert grammar.decode(frames_for("A"), ALPHABET) == []


# --------------------------------------------------------------------------- colour under casts and darkness


def test_a_photo_wide_colour_cast_is_taken_off_before_the_plate_colour_is_judged():
    # A white plate under a strong yellow-green sodium/IR cast over the whole frame
    scene = np.full((240, 320, 3), 120, dtype=np.uint8)
    scene[100:160, 60:260] = (236, 236, 230)
    scene[115:145, 80:250:14] = BLACK
    cast = np.clip(scene.astype(float) * (1.08, 1.0, 0.62), 0, 255).astype(np.uint8)
    assert plate_color(cast, 60, 100, 260, 160, gains=cast_gains(cast)) == "white"


def test_a_blue_plate_at_night_is_blue_not_black():
    # Backlit: the plate's blue is dim and greyish, its glyphs a dull grey
    dim = patch((28, 34, 52), (92, 94, 98))
    assert plate_color(dim, 0, 0, dim.shape[1], dim.shape[0]) == "blue"
    assert plate_color(patch(BLACK, WHITE), 0, 0, 200, 60) == "black"

"""Render the synthetic sample photos in samples/ and their ground truth.

Run from the repository root, after installing the fonts (Debian packages
fonts-wqy-zenhei, fonts-arphic-uming and fonts-dejavu-core):

    .venv/bin/python samples/generate.py

It rewrites samples/plates/*.jpg, samples/vehicle-licenses/*.jpg and
samples/ground_truth.json.  Everything is drawn here with Pillow and numpy (no photo,
no person's data); every random choice comes from a fixed per-image seed, so two runs on
the same versions give byte-identical files.  Generated with Pillow 13.0.0 (FreeType
2.14.3, libjpeg-turbo 6.2 API), numpy 2.4.6, fonts-wqy-zenhei 0.9.45-8, fonts-arphic-uming
0.2.20080216.2-11, fonts-dejavu-core 2.37-6 (Debian): other versions may change pixels (not the ground
truth).

Plates follow the GA 36-2018 looks (sizes in mm, drawn at PLATE_PX_PER_MM); licences
follow the layout of the 88 x 60 mm 机动车行驶证 主页 / 副页 (drawn at CARD_PX_PER_MM).
Every plate number is checked with vehicle_ocr.normalize.plates and every VIN carries
its ISO 3779 check digit.
"""

from __future__ import annotations

import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from vehicle_ocr.normalize.plates import canonical_plate_number, is_valid_plate, plate_kind
from vehicle_ocr.normalize.vin import vin_check_digit

HERE = Path(__file__).resolve().parent
PLATES_DIR = HERE / "plates"
LICENSES_DIR = HERE / "vehicle-licenses"
GROUND_TRUTH = HERE / "ground_truth.json"

MAX_JPEG_BYTES = 80_000  # "80 KB" in either reading

# --------------------------------------------------------------------------- fonts

FONT_FILES = {
    # Hei (sans) CJK: plate characters and the printed values on licences.
    "hei": ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    # Song/Ming (serif) CJK, simplified-Chinese variant: the pre-printed licence form.
    "song": ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
    # Condensed bold sans: plate letters and digits.
    "plate": ("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf", 0),
    # Small English captions under the licence labels.
    "serif": ("/usr/share/fonts/truetype/dejavu/DejaVuSerifCondensed.ttf", 0),
}


def _check_fonts() -> None:
    missing = [path for path, _ in FONT_FILES.values() if not Path(path).exists()]
    if missing:
        sys.exit(
            "missing fonts: "
            + ", ".join(missing)
            + "\ninstall them with: apt-get install -y fonts-wqy-zenhei fonts-arphic-uming fonts-dejavu-core"
        )


_FONT_CACHE: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}


def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    key = (name, size)
    if key not in _FONT_CACHE:
        path, index = FONT_FILES[name]
        _FONT_CACHE[key] = ImageFont.truetype(path, size, index=index)
    return _FONT_CACHE[key]


def is_cjk(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff"


# --------------------------------------------------------------------------- helpers


def require(condition: object, what: object) -> None:
    """Stop the generator when a sample would contradict its ground truth."""
    if not condition:
        raise SystemExit(f"sample check failed: {what}")


def rng_for(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def perspective_coeffs(src: list[tuple[float, float]], dst: list[tuple[float, float]]) -> list[float]:
    """Coefficients for Image.transform(PERSPECTIVE) mapping output points dst to input points src."""
    rows = []
    rhs = []
    for (u, v), (x, y) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    solution = np.linalg.solve(np.array(rows, dtype=np.float64), np.array(rhs, dtype=np.float64))
    return [float(value) for value in solution]


def warp_onto(scene: Image.Image, layer: Image.Image, quad: list[tuple[float, float]]) -> None:
    """Paste RGBA ``layer`` into ``scene`` so its corners land on ``quad`` (tl, tr, br, bl)."""
    top = math.dist(quad[0], quad[1])
    bottom = math.dist(quad[3], quad[2])
    left = math.dist(quad[0], quad[3])
    right = math.dist(quad[1], quad[2])
    # Shrink first with a proper filter: the perspective transform itself does no averaging.
    scale = min(1.0, 1.15 * max(top, bottom) / layer.width, 1.15 * max(left, right) / layer.height)
    if scale < 1.0:
        layer = layer.resize(
            (max(2, round(layer.width * scale)), max(2, round(layer.height * scale))), Image.Resampling.LANCZOS
        )
    w, h = layer.size
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    coeffs = perspective_coeffs(src, quad)
    warped = layer.transform(scene.size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC)
    scene.alpha_composite(warped)


def quad_for(
    cx: float, cy: float, width: float, height: float, angle_deg: float, yaw: float, pitch: float
) -> list[tuple[float, float]]:
    """Corners (tl, tr, br, bl) of a width x height rectangle seen rotated and slightly in perspective.

    ``yaw`` > 0 makes the right edge shorter (turned away), ``pitch`` > 0 the top edge shorter.
    """
    hw, hh = width / 2, height / 2
    corners = [
        (-hw * (1 - pitch), -hh * (1 + yaw)),
        (hw * (1 - pitch), -hh * (1 - yaw)),
        (hw * (1 + pitch), hh * (1 - yaw)),
        (-hw * (1 + pitch), hh * (1 + yaw)),
    ]
    a = math.radians(angle_deg)
    cos_a, sin_a = math.cos(a), math.sin(a)
    return [(cx + x * cos_a - y * sin_a, cy + x * sin_a + y * cos_a) for x, y in corners]


def to_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def from_array(array: np.ndarray, mode: str = "RGB") -> Image.Image:
    return Image.fromarray(np.clip(array + 0.5, 0, 255).astype(np.uint8), mode)


def vertical_gradient(size: tuple[int, int], top: tuple[float, ...], bottom: tuple[float, ...]) -> np.ndarray:
    w, h = size
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top_a = np.array(top, dtype=np.float32)[None, None, :]
    bottom_a = np.array(bottom, dtype=np.float32)[None, None, :]
    return np.broadcast_to(top_a * (1 - t) + bottom_a * t, (h, w, len(top))).copy()


def smooth_noise(rng: np.random.Generator, size: tuple[int, int], cell: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1], shape (h, w)."""
    w, h = size
    gw, gh = max(2, w // cell + 2), max(2, h // cell + 2)
    grid = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    img = Image.fromarray(((grid + 1) * 127.5).astype(np.uint8), "L").resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 127.5 - 1


def add_noise(image: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    array = to_array(image)
    array += rng.normal(0, sigma, array.shape[:2])[:, :, None].astype(np.float32) * 0.6
    array += rng.normal(0, sigma, array.shape).astype(np.float32) * 0.5
    return from_array(array)


def lighting(image: Image.Image, rng: np.random.Generator, low: float, high: float, vignette: float) -> Image.Image:
    """Multiply by a linear light gradient in a random direction and a vignette."""
    w, h = image.size
    array = to_array(image)
    angle = uniform(rng, 0, 2 * math.pi)
    xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    ys = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    ramp = (xs * math.cos(angle) + ys * math.sin(angle)) / math.sqrt(2) * 0.5 + 0.5
    gain = low + (high - low) * ramp
    radius = np.sqrt(xs**2 + ys**2) / math.sqrt(2)
    gain = gain * (1 - vignette * radius**2)
    array *= gain[:, :, None]
    return from_array(array)


def color_cast(image: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    gains = 1 + rng.uniform(-strength, strength, 3).astype(np.float32)
    return from_array(to_array(image) * gains[None, None, :])


def save_jpeg(image: Image.Image, path: Path, quality: int) -> int:
    """Save as a baseline JPEG no larger than MAX_JPEG_BYTES; returns the quality used."""
    image = image.convert("RGB")
    while True:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality, optimize=True)
        if buffer.tell() <= MAX_JPEG_BYTES or quality <= 40:
            break
        quality -= 4
    if buffer.tell() > MAX_JPEG_BYTES:
        raise SystemExit(f"{path.name}: {buffer.tell()} bytes even at quality {quality}")
    path.write_bytes(buffer.getvalue())
    return quality


# --------------------------------------------------------------------------- plates

PLATE_PX_PER_MM = 4

BLUE = (18, 66, 170)
YELLOW = (246, 186, 18)
WHITE_PLATE = (238, 240, 236)
BLACK_PLATE = (22, 22, 24)
NE_GREEN = (72, 178, 96)
NE_GREEN_TOP = (238, 248, 236)
CHAR_WHITE = (246, 246, 244)
CHAR_BLACK = (16, 16, 18)
CHAR_RED = (206, 26, 30)


@dataclass
class PlateSpec:
    number: str  # canonical ground-truth number
    color: str  # blue, yellow, green, yellow_green, white, black
    kind: str  # vehicle_ocr PlateKind value
    double_row: bool = False  # rear plate of a large vehicle or trailer (440 x 220 mm)
    wear: float = 0.0  # 0 clean .. 1 dirty / faded


def plate_glyphs(spec: PlateSpec) -> list[tuple[str, tuple[int, int, int]]]:
    """The printed characters with their colours (the separator dot is added by the layout)."""
    base = CHAR_WHITE if spec.color in ("blue", "black") else CHAR_BLACK
    glyphs = [(char, base) for char in spec.number]
    red_at: set[int] = set()
    if spec.kind in ("police", "consulate"):
        red_at = {len(glyphs) - 1}
    elif spec.kind == "embassy":
        red_at = {0}
    elif spec.kind in ("military", "armed_police"):
        red_at = {0, 1}
    return [(char, CHAR_RED if i in red_at else colour) for i, (char, colour) in enumerate(glyphs)]


def _glyph_mask(char: str, box_w: int, box_h: int) -> Image.Image:
    """The character scaled into a box_w x box_h cell, as plate characters are (tall, narrow)."""
    cjk = is_cjk(char)
    f = font("hei" if cjk else "plate", 400)
    canvas = Image.new("L", (640, 640), 0)
    draw = ImageDraw.Draw(canvas)
    draw.text((100, 50), char, font=f, fill=255, stroke_width=4 if cjk else 7, stroke_fill=255)
    ink = canvas.crop(canvas.getbbox())
    cell = Image.new("L", (box_w, box_h), 0)
    if cjk:
        glyph = ink.resize((round(box_w * 0.9), round(box_h * 0.98)), Image.Resampling.LANCZOS)
        # Squeezing a square character into a 1:2 cell thins its vertical strokes: thicken
        # them again by dilating sideways only, as the plate typeface's strokes are even.
        array = np.asarray(glyph, dtype=np.uint8)
        grow = max(1, round(box_w * 0.03))
        padded = np.pad(array, ((0, 0), (grow, grow)))
        thick = np.max([padded[:, k : k + array.shape[1]] for k in range(2 * grow + 1)], axis=0)
        glyph = Image.fromarray(thick.astype(np.uint8), "L").resize((box_w, glyph.height), Image.Resampling.LANCZOS)
    else:
        target_w = min(box_w, round(ink.width * box_h / ink.height * 0.85))
        glyph = ink.resize((target_w, box_h), Image.Resampling.LANCZOS)
    cell.paste(glyph, ((box_w - glyph.width) // 2, (box_h - glyph.height) // 2))
    return cell


def _row_layout(n: int, widths: list[float], spacing: float, gap_after: int, gap: float, plate_w: float) -> list[float]:
    """Left x (mm) of each of n characters, centred on the plate, with a wider gap after gap_after chars."""
    total = sum(widths) + spacing * (n - 1) + (gap - spacing)
    x = (plate_w - total) / 2
    lefts = []
    for i in range(n):
        lefts.append(x)
        x += widths[i] + (gap if i == gap_after - 1 else spacing)
    return lefts


def render_plate(spec: PlateSpec, rng: np.random.Generator) -> Image.Image:
    """The plate as RGBA at PLATE_PX_PER_MM, transparent outside its rounded corners."""
    s = PLATE_PX_PER_MM
    new_energy = spec.kind in ("new_energy_small", "new_energy_large")
    plate_w_mm = 480 if new_energy else 440
    plate_h_mm = 220 if spec.double_row else 140
    W, H = plate_w_mm * s, plate_h_mm * s

    # Background.
    if spec.color == "blue":
        bg = vertical_gradient((W, H), tuple(c + 12 for c in BLUE), tuple(c - 8 for c in BLUE))
    elif spec.color == "yellow":
        bg = vertical_gradient((W, H), (250, 196, 40), (238, 176, 10))
    elif spec.color == "white":
        bg = vertical_gradient((W, H), (246, 247, 244), (228, 230, 226))
    elif spec.color == "black":
        bg = vertical_gradient((W, H), (36, 36, 38), (14, 14, 16))
    elif spec.color == "green":
        bg = vertical_gradient((W, H), NE_GREEN_TOP, NE_GREEN)
        # The gradient is not linear: the lower half is mostly green.
        t = np.linspace(0, 1, H, dtype=np.float32) ** 0.7
        top = np.array(NE_GREEN_TOP, dtype=np.float32)
        bottom = np.array(NE_GREEN, dtype=np.float32)
        bg = np.broadcast_to((top * (1 - t[:, None]) + bottom * t[:, None])[:, None, :], (H, W, 3)).copy()
    elif spec.color == "yellow_green":
        bg = np.zeros((H, W, 3), dtype=np.float32)
    else:
        raise ValueError(spec.color)

    # Character layout (mm): list of (char, colour, left, top, w, h).
    glyphs = plate_glyphs(spec)
    placed: list[tuple[str, tuple[int, int, int], float, float, float, float]] = []
    dots: list[tuple[float, float]] = []
    emblem_at: tuple[float, float] | None = None
    if spec.double_row:
        top_chars, bottom_chars = glyphs[:2], glyphs[2:]
        lefts = _row_layout(2, [80, 80], 0, 1, 40, plate_w_mm)
        for (char, colour), x in zip(top_chars, lefts, strict=True):
            placed.append((char, colour, x, 15, 80, 60))
        dots.append((plate_w_mm / 2, 45))
        lefts = _row_layout(5, [65] * 5, 15, 0, 15, plate_w_mm)
        for (char, colour), x in zip(bottom_chars, lefts, strict=True):
            placed.append((char, colour, x, 95, 65, 110))
    elif new_energy:
        widths = [45, 45] + [43] * 6
        lefts = _row_layout(8, widths, 9, 2, 49, plate_w_mm)
        for (char, colour), x, w in zip(glyphs, lefts, widths, strict=True):
            placed.append((char, colour, x, 25, w, 90))
        emblem_at = ((lefts[1] + 45 + lefts[2]) / 2, 70)
    elif spec.kind == "armed_police":
        widths = [40] * 8
        lefts = _row_layout(8, widths, 8, 3, 30, plate_w_mm)
        for (char, colour), x, w in zip(glyphs, lefts, widths, strict=True):
            placed.append((char, colour, x, 25, w, 90))
        dots.append(((lefts[2] + 40 + lefts[3]) / 2, 70))
    else:
        gap_after = 4 if spec.kind == "embassy" else 2
        widths = [45] * 7
        lefts = _row_layout(7, widths, 12, gap_after, 34, plate_w_mm)
        for (char, colour), x, w in zip(glyphs, lefts, widths, strict=True):
            placed.append((char, colour, x, 25, w, 90))
        dots.append(((lefts[gap_after - 1] + 45 + lefts[gap_after]) / 2, 70))

    if spec.color == "yellow_green":
        # 黄绿双拼: the province + authority part yellow, the serial part green.
        split = round((placed[1][2] + 45 + placed[2][2]) / 2 * s)
        bg[:, :split] = vertical_gradient((split, H), (250, 200, 40), (240, 182, 16))
        bg[:, split:] = vertical_gradient((W - split, H), (96, 196, 112), (66, 170, 88))

    # Fine security texture and wear.
    texture = smooth_noise(rng, (W, H), 6) * 4 + smooth_noise(rng, (W, H), 60) * (3 + 4 * spec.wear)
    bg += texture[:, :, None]
    plate = from_array(bg).convert("RGBA")

    # Frame line.
    frame_colour = CHAR_WHITE if spec.color in ("blue", "black") else CHAR_BLACK
    draw = ImageDraw.Draw(plate)
    inset = 3 * s
    draw.rounded_rectangle(
        (inset, inset, W - inset, H - inset), radius=8 * s, outline=(*frame_colour, 255), width=round(1.6 * s)
    )

    # Characters, raised (embossed): shadow down-right, highlight up-left.
    ink = Image.new("L", (W, H), 0)
    colour_layer = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    for char, colour, x, y, w, h in placed:
        mask = _glyph_mask(char, round(w * s), round(h * s))
        pos = (round(x * s), round(y * s))
        ink.paste(mask, pos, mask)
        colour_layer.paste(Image.new("RGBA", mask.size, (*colour, 255)), pos, mask)
    for dx, dy in dots:
        r = 5 * s
        ImageDraw.Draw(ink).ellipse((dx * s - r, dy * s - r, dx * s + r, dy * s + r), fill=255)
        ImageDraw.Draw(colour_layer).ellipse(
            (dx * s - r, dy * s - r, dx * s + r, dy * s + r), fill=(*frame_colour, 255)
        )
    shadow = ImageChops.offset(ink, 3, 3).filter(ImageFilter.GaussianBlur(2))
    plate = Image.composite(Image.new("RGBA", (W, H), (0, 0, 0, 255)), plate, shadow.point(lambda v: v * 0.35))
    highlight = ImageChops.offset(ink, -2, -2).filter(ImageFilter.GaussianBlur(1.5))
    plate = Image.composite(Image.new("RGBA", (W, H), (255, 255, 255, 255)), plate, highlight.point(lambda v: v * 0.25))
    plate.alpha_composite(colour_layer)

    if emblem_at is not None:
        # New-energy emblem (stylised plug in a ring) in place of the dot: a graphic, not text.
        ex, ey = emblem_at[0] * s, emblem_at[1] * s
        r = 7 * s
        d = ImageDraw.Draw(plate)
        d.ellipse((ex - r, ey - r, ex + r, ey + r), outline=(30, 110, 60, 255), width=round(1.2 * s))
        d.rectangle((ex - 2 * s, ey - 3 * s, ex + 2 * s, ey + 2 * s), fill=(30, 110, 60, 255))
        d.line((ex - 1 * s, ey - 3 * s, ex - 1 * s, ey - 5.5 * s), fill=(30, 110, 60, 255), width=s)
        d.line((ex + 1 * s, ey - 3 * s, ex + 1 * s, ey - 5.5 * s), fill=(30, 110, 60, 255), width=s)
        d.line((ex, ey + 2 * s, ex, ey + 5.5 * s), fill=(30, 110, 60, 255), width=s)

    # Two mounting screws in the top margin.
    d = ImageDraw.Draw(plate)
    for sx in (0.18, 0.82):
        x, y, r = sx * W, 12 * s, 3.2 * s
        d.ellipse((x - r, y - r, x + r, y + r), fill=(150, 150, 150, 255), outline=(70, 70, 70, 255), width=2)
        d.line((x - r * 0.6, y, x + r * 0.6, y), fill=(60, 60, 60, 255), width=3)

    # Dirt specks and a reflective sheen.
    array = to_array(plate)
    if spec.wear > 0:
        grime = np.clip(smooth_noise(rng, (W, H), 70), 0, 1) ** 2 * spec.wear * 40
        array[:, :, :3] -= grime[:, :, None]
        specks = rng.random((H, W)) < 0.002 * spec.wear
        array[specks, :3] *= 0.55
    sheen = np.clip(smooth_noise(rng, (W, H), 180), -1, 1) * 10
    array[:, :, :3] += sheen[:, :, None]
    plate = from_array(array, "RGBA")

    # Rounded corners.
    alpha = Image.new("L", (W, H), 0)
    ImageDraw.Draw(alpha).rounded_rectangle((0, 0, W - 1, H - 1), radius=10 * s, fill=255)
    plate.putalpha(alpha)
    return plate


# ----- scenes

CAR_COLOURS = [
    (196, 198, 202),  # silver
    (236, 236, 232),  # white
    (32, 34, 38),  # black
    (150, 28, 30),  # red
    (40, 70, 130),  # blue
    (90, 92, 96),  # grey
    (226, 218, 196),  # champagne
    (235, 236, 238),  # white bus
]


def paint_background(rng: np.random.Generator, size: tuple[int, int], style: str, ground_y: float) -> Image.Image:
    """What is behind the car: a street (sky, buildings), a car-park wall or a dark garage; road below ground_y."""
    w, h = size
    horizon = max(h * 0.15, ground_y - h * 0.25)
    if style == "street":
        array = vertical_gradient(size, (140, 172, 212), (212, 220, 228))
    elif style == "garage":
        array = vertical_gradient(size, (52, 54, 58), (92, 92, 90))
    else:  # wall
        array = vertical_gradient(size, (176, 170, 156), (146, 140, 128))
    array += smooth_noise(rng, size, 50)[:, :, None] * 6
    image = from_array(array)
    draw = ImageDraw.Draw(image)
    if style == "street":
        x = -int(rng.integers(0, 80))
        while x < w:
            bw = int(rng.integers(90, 240))
            top = horizon - int(rng.integers(h // 8, h // 2))
            shade = int(rng.integers(120, 200))
            tint = tuple(int(v) for v in rng.integers(-12, 12, 3))
            fill = tuple(max(0, min(255, shade + t)) for t in tint)
            draw.rectangle((x, top, x + bw, horizon + 40), fill=fill)
            for wy in range(int(top) + 12, int(horizon), 26):
                for wx in range(x + 10, x + bw - 14, 24):
                    draw.rectangle((wx, wy, wx + 11, wy + 14), fill=tuple(max(0, v - 55) for v in fill))
            x += bw + int(rng.integers(4, 30))
    elif style == "garage":
        for y in np.arange(horizon - 40, -200, -110):
            draw.rectangle((0, y, w, y + 14), fill=(74, 74, 78))
        for x in range(int(rng.integers(0, 200)), w, 320):
            draw.rectangle((x, 0, x + 46, horizon + 40), fill=(112, 112, 108))
            draw.rectangle((x, horizon - 90, x + 46, horizon - 60), fill=(190, 170, 40))
    else:
        for y in np.arange(horizon, -40, -34):
            draw.line((0, y, w, y), fill=(150, 146, 134), width=2)
    # Road.
    road = vertical_gradient((w, max(1, h - int(ground_y))), (96, 96, 98), (70, 70, 72))
    road += rng.normal(0, 6, road.shape[:2])[:, :, None].astype(np.float32)
    image.paste(from_array(road), (0, int(ground_y)))
    if style != "garage":
        draw.rectangle((0, int(ground_y) - 2, w, int(ground_y) + 2), fill=(130, 130, 128))
    return image


@dataclass
class CarLook:
    """Proportions of the vehicle carrying a plate, in metres around the plate centre (y down)."""

    width: float
    roof: float  # top of the body above the plate centre (negative y)
    ground: float  # ground below the plate centre
    large: bool  # truck / bus: flat panel, no rear window taper


def car_look(spec: PlateSpec) -> CarLook:
    if spec.kind in ("new_energy_large", "trailer") or (spec.color == "yellow" and spec.kind == "regular"):
        return CarLook(width=2.5, roof=-2.6, ground=0.75, large=True)
    return CarLook(width=1.82, roof=-0.9, ground=0.58, large=False)


def paint_vehicle(
    image: Image.Image,
    rng: np.random.Generator,
    centre: tuple[float, float],
    metre: float,
    look: CarLook,
    colour: tuple[int, int, int],
    plate_size: tuple[float, float],
) -> None:
    """The rear of a car (or a truck/bus) seen straight on, laid out around its plate."""
    cx, cy = centre
    w = round(look.width * metre)
    top = cy + look.roof * metre
    bottom = cy + look.ground * metre
    x0, y0 = round(cx - w / 2), round(top)
    draw = ImageDraw.Draw(image)
    dark = (22, 22, 24)

    # Ground shadow and tyres.
    draw.ellipse((x0 - 0.05 * w, bottom - 0.06 * metre, x0 + 1.05 * w, bottom + 0.06 * metre), fill=(30, 30, 32))
    for side in (-1, 1):
        tx = cx + side * 0.36 * w
        draw.rounded_rectangle(
            (tx - 0.11 * metre, bottom - 0.42 * metre, tx + 0.11 * metre, bottom), radius=0.04 * metre, fill=dark
        )

    # Body with shading: lighter upper surfaces, darker lower, darker towards the flanks.
    body_h = round((cy + (0.36 if look.large else 0.3) * metre) - top)
    shade = vertical_gradient(
        (w, body_h), tuple(min(255, c * 1.15 + 14) for c in colour), tuple(c * 0.7 for c in colour)
    )
    xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
    shade *= 1 - 0.22 * xs**4
    shade += smooth_noise(rng, (w, body_h), 60)[:, :, None] * 5
    band_y = uniform(rng, 0.35, 0.55) * body_h
    band = np.exp(-(((np.arange(body_h) - band_y) / (body_h * 0.05)) ** 2)).astype(np.float32)
    shade += band[:, None, None] * 34
    # A soft diagonal reflection of the sky.
    ys = np.arange(body_h, dtype=np.float32)[:, None]
    xr = np.arange(w, dtype=np.float32)[None, :]
    offset = uniform(rng, 0.1, 0.9) * w
    diagonal = np.exp(-(((xr - offset - ys * 0.8) / (0.18 * w)) ** 2))
    shade += diagonal[:, :, None] * uniform(rng, 10, 28)
    mask = Image.new("L", (w, body_h), 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        (0, 0, w - 1, body_h + 40), radius=round((0.06 if look.large else 0.18) * metre), fill=255
    )
    image.paste(from_array(shade), (x0, y0), mask)

    if look.large:
        # Rear panel seams, lamps low at the corners, a ladder or door line.
        for sx in (0.33, 0.5, 0.67):
            draw.line(
                (x0 + sx * w, y0 + 0.05 * metre, x0 + sx * w, cy - 0.45 * metre),
                fill=tuple(int(c * 0.6) for c in colour),
                width=3,
            )
        lamp_y = cy - 0.18 * metre
    else:
        # Rear window: a dark trapezoid with a sky reflection.
        win_top, win_bot = top + 0.06 * metre, top + 0.42 * metre
        window = [
            (cx - 0.34 * w, win_top),
            (cx + 0.34 * w, win_top),
            (cx + 0.44 * w, win_bot),
            (cx - 0.44 * w, win_bot),
        ]
        draw.polygon(window, fill=(38, 46, 56))
        draw.polygon([window[0], (cx - 0.05 * w, win_top), (cx - 0.2 * w, win_bot), window[3]], fill=(66, 78, 92))
        lamp_y = cy - 0.3 * metre
    if not look.large:
        # Trunk-lid crease above the plate, and the maker's chrome badge.
        crease = cy - 0.2 * metre
        draw.line(
            (x0 + 0.04 * w, crease, x0 + 0.96 * w, crease),
            fill=tuple(min(255, int(c * 1.3 + 30)) for c in colour),
            width=2,
        )
        draw.line(
            (x0 + 0.04 * w, crease + 3, x0 + 0.96 * w, crease + 3), fill=tuple(int(c * 0.5) for c in colour), width=2
        )
        bx, by, br = cx, cy - 0.34 * metre, 0.05 * metre
        draw.ellipse(
            (bx - br * 1.4, by - br, bx + br * 1.4, by + br), fill=(200, 202, 206), outline=(90, 92, 96), width=2
        )
        draw.ellipse((bx - br * 0.9, by - br * 0.6, bx + br * 0.9, by + br * 0.6), outline=(120, 122, 126), width=2)
    # Lamps.
    for side in (-1, 1):
        outer = cx + side * 0.49 * w
        inner = cx + side * (0.3 if not look.large else 0.4) * w
        box = (min(outer, inner), lamp_y - 0.07 * metre, max(outer, inner), lamp_y + 0.08 * metre)
        draw.rounded_rectangle(box, radius=0.03 * metre, fill=(150, 20, 22), outline=(70, 20, 20), width=2)
        core = (
            box[0] + 0.2 * (box[2] - box[0]),
            box[1] + 0.04 * metre,
            box[2] - 0.2 * (box[2] - box[0]),
            box[3] - 0.05 * metre,
        )
        draw.rounded_rectangle(core, radius=0.02 * metre, fill=(215, 70, 60))
    # Bumper.
    bumper_top = cy + (0.36 if look.large else 0.3) * metre
    draw.rounded_rectangle(
        (x0 + 0.01 * w, bumper_top, x0 + 0.99 * w, bumper_top + 0.2 * metre),
        radius=0.05 * metre,
        fill=dark if look.large or rng.random() < 0.5 else tuple(int(c * 0.8) for c in colour),
    )
    for side in (-1, 1):
        rx = cx + side * 0.4 * w
        draw.rectangle(
            (rx - 0.06 * metre, bumper_top + 0.05 * metre, rx + 0.06 * metre, bumper_top + 0.09 * metre),
            fill=(170, 30, 30),
        )
    # Plate recess.
    pw, ph = plate_size
    if rng.random() < 0.5:
        recess = (cx - pw * 0.56, cy - ph * 0.62, cx + pw * 0.56, cy + ph * 0.66)
        draw.rounded_rectangle(recess, radius=0.03 * metre, fill=tuple(int(c * 0.55) for c in colour))
    else:  # black plastic plate frame
        frame = (cx - pw * 0.53, cy - ph * 0.58, cx + pw * 0.53, cy + ph * 0.64)
        draw.rounded_rectangle(frame, radius=0.02 * metre, fill=(18, 18, 20), outline=(60, 60, 64), width=2)


def place_plate(
    scene: Image.Image,
    spec: PlateSpec,
    rng: np.random.Generator,
    centre: tuple[float, float],
    width_px: float,
    tilt: float,
) -> None:
    plate = render_plate(spec, rng)
    height_px = width_px * plate.height / plate.width
    quad = quad_for(centre[0], centre[1], width_px, height_px, tilt, 0.0, 0.0)
    warp_onto(scene, plate, quad)


@dataclass
class PlateShot:
    name: str
    plates: list[PlateSpec]
    seed: int
    size: tuple[int, int] = (640, 480)
    backdrop: str = "street"
    plate_width: float = 260  # px, first plate
    angle: float = 0.0  # camera roll, degrees
    yaw: float = 0.0  # camera perspective, see quad_for
    pitch: float = 0.0
    blur: float = 0.0
    motion: bool = False
    brightness: float = 1.0
    contrast: float = 1.0
    noise: float = 3.0
    quality: int = 80
    light: tuple[float, float] = (0.9, 1.08)
    shadow: float = 0.0  # a hard cast shadow (e.g. of a wall) across the first plate: 0 none .. 1 black


MARGIN = 0.3  # the scene is drawn this much larger on every side, then the camera crops it


def render_plate_shot(shot: PlateShot) -> Image.Image:
    rng = rng_for(shot.seed)
    w, h = shot.size
    mx, my = round(w * MARGIN), round(h * MARGIN)
    canvas_size = (w + 2 * mx, h + 2 * my)
    n = len(shot.plates)

    # Where each plate sits in the frame, and so where its vehicle is.
    layout = []
    for i, spec in enumerate(shot.plates):
        sub_rng = rng_for(shot.seed * 100 + i)
        plate_w = shot.plate_width * (1 if i == 0 else uniform(sub_rng, 0.88, 0.96))
        if n == 1:
            cx = w / 2 + uniform(sub_rng, -0.1, 0.1) * w
            cy = h * uniform(sub_rng, 0.5, 0.62)
        else:
            cx = w * (0.2 if i == 0 else 0.77) + uniform(sub_rng, -0.01, 0.01) * w
            cy = h * (uniform(sub_rng, 0.6, 0.66) if i == 0 else uniform(sub_rng, 0.5, 0.56))
        width_440 = plate_w * (440 / 480 if "new_energy" in spec.kind else 1)
        metre = width_440 / 0.44
        layout.append((spec, sub_rng, cx + mx, cy + my, plate_w, metre))

    ground = max(cy + car_look(spec).ground * metre for spec, _, _, cy, _, metre in layout)
    scene = paint_background(rng, canvas_size, shot.backdrop, ground).convert("RGBA")
    # Farther (smaller) vehicles first, so the nearer one hides them.
    for spec, sub_rng, cx, cy, plate_w, metre in sorted(layout, key=lambda item: item[5]):
        look = car_look(spec)
        colour = CAR_COLOURS[int(sub_rng.integers(0, len(CAR_COLOURS)))]
        if spec.kind == "police":
            colour = (236, 236, 232)
        plate_h = plate_w * (220 if spec.double_row else 140) / (480 if "new_energy" in spec.kind else 440)
        paint_vehicle(scene, sub_rng, (cx, cy), metre, look, colour, (plate_w, plate_h))
        place_plate(scene, spec, sub_rng, (cx, cy), plate_w, uniform(sub_rng, -1.2, 1.2))

    if shot.shadow > 0:
        # A cast shadow whose soft edge crosses the first plate diagonally.
        _, _, pcx, pcy, pw, _ = layout[0]
        a = uniform(rng, 0.9, 1.3)
        yy, xx = np.mgrid[0 : canvas_size[1], 0 : canvas_size[0]].astype(np.float32)
        side = (xx - pcx - pw * uniform(rng, -0.1, 0.2)) * math.cos(a) + (yy - pcy) * math.sin(a)
        shade = 1 - shot.shadow / (1 + np.exp(np.clip(-side / 3.0, -50, 50)))
        array = to_array(scene)
        array[:, :, :3] *= shade[:, :, None]
        scene = from_array(array, "RGBA")

    # The camera: roll and slight perspective, cropping the frame out of the larger scene.
    ccx, ccy = canvas_size[0] / 2, canvas_size[1] / 2
    src = quad_for(ccx, ccy, w, h, shot.angle, shot.yaw, shot.pitch)
    coeffs = perspective_coeffs(src, [(0, 0), (w, 0), (w, h), (0, h)])
    photo = scene.convert("RGB").transform((w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC)

    photo = lighting(photo, rng, shot.light[0], shot.light[1], 0.25)
    photo = color_cast(photo, rng, 0.05)
    photo = ImageEnhance.Brightness(photo).enhance(shot.brightness)
    photo = ImageEnhance.Contrast(photo).enhance(shot.contrast)
    if shot.motion:
        kernel = [0.0] * 25
        for k in range(5):
            kernel[10 + k] = 0.2
        photo = photo.filter(ImageFilter.Kernel((5, 5), kernel, scale=1))
    photo = photo.filter(ImageFilter.GaussianBlur(0.5 + shot.blur))  # every lens blurs a little
    photo = add_noise(photo, rng, shot.noise)
    return photo


def P(number: str, color: str, kind: str, **kw: object) -> PlateSpec:
    return PlateSpec(number=number, color=color, kind=kind, **kw)  # type: ignore[arg-type]


PLATE_SHOTS: list[PlateShot] = [
    # Blue, regular.
    PlateShot("001-blue-regular", [P("沪A3H57K", "blue", "regular")], 1, plate_width=300, quality=85),
    PlateShot("002-blue-regular", [P("京N8Y2C6", "blue", "regular")], 2, plate_width=240, angle=4, yaw=0.06),
    PlateShot(
        "003-blue-regular",
        [P("粤B9L27X", "blue", "regular")],
        3,
        backdrop="garage",
        plate_width=280,
        angle=-3,
        brightness=0.85,
        quality=70,
    ),
    PlateShot(
        "004-blue-regular",
        [P("浙A52B7M", "blue", "regular", wear=0.4)],
        4,
        plate_width=210,
        pitch=0.05,
        blur=0.6,
        quality=75,
    ),
    PlateShot(
        "005-blue-regular",
        [P("苏E6F0G8", "blue", "regular")],
        5,
        backdrop="wall",
        plate_width=360,
        angle=2,
        yaw=-0.08,
        quality=88,
    ),
    PlateShot(
        "006-blue-regular", [P("川A1T3Z5", "blue", "regular")], 6, plate_width=190, angle=-7, quality=65, noise=5
    ),
    PlateShot(
        "007-blue-regular-shadow",
        [P("鲁B70M5E", "blue", "regular", wear=0.6)],
        7,
        backdrop="wall",
        plate_width=250,
        contrast=0.8,
        shadow=0.6,
        quality=72,
    ),
    PlateShot(
        "008-blue-regular", [P("鄂AQ2D81", "blue", "regular")], 8, plate_width=320, angle=6, pitch=-0.06, quality=80
    ),
    PlateShot(
        "009-blue-regular-rotated",
        [P("湘A9X8T2", "blue", "regular")],
        9,
        plate_width=230,
        angle=8.8,
        yaw=0.1,
        quality=78,
    ),
    PlateShot(
        "010-blue-regular-dusk",
        [P("豫A8M8B6", "blue", "regular")],
        10,
        backdrop="garage",
        plate_width=260,
        brightness=0.6,
        contrast=0.85,
        noise=7,
        quality=62,
        light=(0.6, 1.0),
    ),
    PlateShot(
        "011-blue-regular-small-hard",
        [P("闽D32V67", "blue", "regular", wear=0.3)],
        11,
        plate_width=150,
        angle=-4,
        blur=0.8,
        noise=6,
        quality=50,
    ),
    PlateShot(
        "012-blue-regular-blurred-hard",
        [P("渝A7P2J1", "blue", "regular")],
        12,
        plate_width=200,
        blur=1.6,
        motion=True,
        quality=50,
        noise=5,
    ),
    # Yellow: large vehicles (front single row, rear double row), coach 学, trailer 挂.
    PlateShot(
        "013-yellow-regular-truck",
        [P("冀A51662", "yellow", "regular", wear=0.5)],
        13,
        backdrop="wall",
        plate_width=280,
        angle=-2,
        quality=75,
    ),
    PlateShot(
        "014-yellow-regular-truck",
        [P("晋B3C892", "yellow", "regular", wear=0.3)],
        14,
        plate_width=240,
        yaw=-0.1,
        angle=3,
        quality=70,
    ),
    PlateShot(
        "015-yellow-regular-double-row",
        [P("陕A6T813", "yellow", "regular", double_row=True, wear=0.5)],
        15,
        backdrop="wall",
        plate_width=260,
        angle=2,
        quality=75,
    ),
    PlateShot("016-yellow-coach", [P("沪A0762学", "yellow", "coach")], 16, plate_width=290, angle=-5, quality=82),
    PlateShot(
        "017-yellow-coach",
        [P("粤A5R3G学", "yellow", "coach")],
        17,
        backdrop="garage",
        plate_width=230,
        pitch=0.07,
        quality=70,
    ),
    PlateShot(
        "018-yellow-trailer-double-row",
        [P("鲁R7E86挂", "yellow", "trailer", double_row=True, wear=0.7)],
        18,
        backdrop="wall",
        plate_width=280,
        angle=-3,
        quality=72,
    ),
    PlateShot(
        "019-yellow-trailer-double-row",
        [P("冀FH358挂", "yellow", "trailer", double_row=True, wear=0.4)],
        19,
        plate_width=240,
        angle=4,
        yaw=0.07,
        quality=68,
    ),
    # Green gradient: small new-energy.
    PlateShot(
        "020-green-new-energy-small", [P("沪AD71829", "green", "new_energy_small")], 20, plate_width=320, quality=85
    ),
    PlateShot(
        "021-green-new-energy-small",
        [P("粤BDF2718", "green", "new_energy_small")],
        21,
        backdrop="garage",
        plate_width=260,
        angle=-4,
        quality=75,
    ),
    PlateShot(
        "022-green-new-energy-small",
        [P("浙AF59331", "green", "new_energy_small")],
        22,
        backdrop="wall",
        plate_width=220,
        angle=3,
        yaw=-0.05,
        quality=70,
    ),
    PlateShot(
        "023-green-new-energy-small",
        [P("苏ADA8826", "green", "new_energy_small")],
        23,
        plate_width=280,
        pitch=0.05,
        brightness=1.15,
        quality=78,
    ),
    PlateShot(
        "024-green-new-energy-small-angled-hard",
        [P("川AF08732", "green", "new_energy_small")],
        24,
        plate_width=230,
        angle=-8.8,
        yaw=0.16,
        blur=0.4,
        quality=60,
    ),
    # Yellow-green: large new-energy.
    PlateShot(
        "025-yellow-green-new-energy-large",
        [P("粤B04571D", "yellow_green", "new_energy_large")],
        25,
        plate_width=300,
        quality=82,
    ),
    PlateShot(
        "026-yellow-green-new-energy-large",
        [P("沪B32968F", "yellow_green", "new_energy_large", wear=0.3)],
        26,
        backdrop="garage",
        plate_width=250,
        angle=5,
        quality=70,
    ),
    PlateShot(
        "027-yellow-green-new-energy-large",
        [P("京A25183D", "yellow_green", "new_energy_large")],
        27,
        backdrop="wall",
        plate_width=280,
        yaw=0.08,
        angle=-2,
        quality=75,
    ),
    # White: police 警, military, armed police WJ.
    PlateShot("028-white-police", [P("沪A0953警", "white", "police")], 28, plate_width=280, angle=2, quality=80),
    PlateShot(
        "029-white-police-shadow",
        [P("京A3728警", "white", "police")],
        29,
        backdrop="garage",
        plate_width=230,
        angle=-6,
        shadow=0.65,
        quality=70,
    ),
    PlateShot(
        "030-white-military", [P("VA60532", "white", "military")], 30, backdrop="wall", plate_width=270, quality=78
    ),
    PlateShot(
        "031-white-military",
        [P("KJ27815", "white", "military", wear=0.3)],
        31,
        plate_width=220,
        angle=5,
        yaw=-0.06,
        quality=68,
    ),
    PlateShot(
        "032-white-armed-police", [P("WJ粤28763", "white", "armed_police")], 32, plate_width=290, angle=-2, quality=80
    ),
    PlateShot(
        "033-white-armed-police",
        [P("WJ沪31457", "white", "armed_police")],
        33,
        backdrop="garage",
        plate_width=240,
        pitch=0.06,
        quality=70,
    ),
    # Black: Hong Kong 港, Macau 澳, consulate 领, embassy 使.
    PlateShot("034-black-hong-kong", [P("粤ZF023港", "black", "hong_kong")], 34, plate_width=280, angle=3, quality=80),
    PlateShot(
        "035-black-hong-kong-shadow",
        [P("粤Z3B47港", "black", "hong_kong", wear=0.3)],
        35,
        backdrop="wall",
        plate_width=230,
        yaw=0.07,
        shadow=0.5,
        quality=70,
    ),
    PlateShot("036-black-macau", [P("粤Z1A08澳", "black", "macau")], 36, plate_width=260, angle=-4, quality=76),
    PlateShot(
        "037-black-consulate",
        [P("沪A0126领", "black", "consulate")],
        37,
        backdrop="wall",
        plate_width=270,
        angle=2,
        quality=78,
    ),
    PlateShot(
        "038-black-embassy", [P("使014578", "black", "embassy")], 38, plate_width=260, angle=-2, pitch=0.05, quality=78
    ),
    # Two plates in one photo (ground truth lists them left to right).
    PlateShot(
        "039-two-blue-green",
        [P("沪C5U8N2", "blue", "regular"), P("沪ADG7731", "green", "new_energy_small")],
        39,
        size=(800, 480),
        plate_width=168,
        quality=75,
    ),
    PlateShot(
        "040-two-blue-yellow",
        [P("粤B7Q9F3", "blue", "regular"), P("粤S83H21", "yellow", "regular", wear=0.4)],
        40,
        size=(800, 480),
        backdrop="wall",
        plate_width=168,
        angle=2,
        quality=72,
    ),
    PlateShot(
        "041-two-police-blue",
        [P("苏A1027警", "white", "police"), P("苏A8VV32", "blue", "regular")],
        41,
        size=(800, 480),
        backdrop="garage",
        plate_width=168,
        angle=-2,
        quality=74,
    ),
    PlateShot(
        "042-two-blue-yellow-green",
        [P("浙B6W1K7", "blue", "regular"), P("浙B07719D", "yellow_green", "new_energy_large")],
        42,
        size=(800, 480),
        plate_width=168,
        quality=76,
    ),
    PlateShot(
        "043-two-hong-kong-blue",
        [P("粤ZJ702港", "black", "hong_kong"), P("粤B2N5L8", "blue", "regular")],
        43,
        size=(800, 480),
        plate_width=168,
        angle=3,
        quality=72,
    ),
    PlateShot(
        "044-two-green-blue",
        [P("京AD03319", "green", "new_energy_small"), P("京P7N6U2", "blue", "regular")],
        44,
        size=(800, 480),
        backdrop="wall",
        plate_width=168,
        angle=-3,
        blur=0.3,
        quality=70,
    ),
]


def check_plate_spec(spec: PlateSpec) -> None:
    require(canonical_plate_number(spec.number) == spec.number, spec.number)
    require(is_valid_plate(spec.number), f"{spec.number} is not a valid GA 36 number")
    require(plate_kind(spec.number, spec.color).value == spec.kind, (spec.number, plate_kind(spec.number, spec.color)))
    serial_start = {"military": 2, "armed_police": 3, "embassy": 1}.get(spec.kind, 2)
    require(not set(spec.number[serial_start:]) & {"I", "O"}, spec.number)


# --------------------------------------------------------------------------- vehicle licences

CARD_PX_PER_MM = 12
CARD_W_MM, CARD_H_MM = 88, 60

LABEL_COLOUR = (52, 56, 54)
CAPTION_COLOUR = (86, 92, 88)
VALUE_COLOUR = (18, 20, 34)
SEAL_COLOUR = (214, 40, 44)

FRONT_FIELDS = (
    "plate_number",
    "vehicle_type",
    "owner",
    "address",
    "use_character",
    "model",
    "vin",
    "engine_number",
    "register_date",
    "issue_date",
    "license_issuing_authority",
)
BACK_FIELDS = (
    "plate_number",
    "document_id",
    "approved_passengers_capacity",
    "total_mass",
    "curb_weight",
    "ratified_load_capacity",
    "gabarite",
    "traction_mass",
    "remarks",
    "inspection_record",
)

# Printed form: (field, label, English caption, label x mm, row top y mm, value x mm, value max width mm).
FRONT_LAYOUT = [
    ("plate_number", "号牌号码", "Plate No.", 3.0, 14.0, 17.5, 27.0),
    ("vehicle_type", "车辆类型", "Vehicle Type", 46.0, 14.0, 60.5, 26.0),
    ("owner", "所有人", "Owner", 3.0, 20.6, 17.5, 68.0),
    ("address", "住址", "Address", 3.0, 27.2, 17.5, 68.0),
    ("use_character", "使用性质", "Use Character", 3.0, 33.8, 17.5, 27.0),
    ("model", "品牌型号", "Model", 46.0, 33.8, 60.5, 26.0),
    ("vin", "车辆识别代号", "Vehicle Identification Number", 3.0, 40.4, 25.5, 45.0),
    ("engine_number", "发动机号码", "Engine No.", 3.0, 47.0, 25.5, 30.0),
    ("register_date", "注册日期", "Register Date", 3.0, 53.6, 21.0, 22.0),
    ("issue_date", "发证日期", "Issue Date", 46.0, 53.6, 60.5, 22.0),
]
BACK_LAYOUT = [
    ("plate_number", "号牌号码", "Plate No.", 3.0, 5.0, 17.5, 24.0),
    ("document_id", "档案编号", "File No.", 46.0, 5.0, 60.5, 26.0),
    ("approved_passengers_capacity", "核定载人数", "Approved Passengers", 3.0, 11.6, 20.5, 20.0),
    ("total_mass", "总质量", "Gross Mass", 46.0, 11.6, 60.5, 24.0),
    ("curb_weight", "整备质量", "Unladen Mass", 3.0, 18.2, 17.5, 24.0),
    ("ratified_load_capacity", "核定载质量", "Approved Load", 46.0, 18.2, 63.0, 22.0),
    ("gabarite", "外廓尺寸", "Overall Dimension", 3.0, 24.8, 17.5, 50.0),
    ("traction_mass", "准牵引总质量", "Traction Mass", 3.0, 31.4, 23.5, 18.0),
    ("remarks", "备注", "Remarks", 46.0, 31.4, 55.0, 30.0),
    ("inspection_record", "检验记录", "Inspection Record", 3.0, 38.0, 5.0, 46.0),
]
LABEL_MM = 2.5  # label character height
CAPTION_MM = 1.15
VALUE_MM = 2.9


@dataclass
class Vehicle:
    plate_number: str
    vehicle_type: str
    owner: str
    address: str
    use_character: str
    model: str
    vin: str
    engine_number: str
    register_date: str
    issue_date: str
    license_issuing_authority: str
    document_id: str
    approved_passengers_capacity: str
    total_mass: str
    curb_weight: str
    ratified_load_capacity: str
    gabarite: str
    traction_mass: str
    remarks: str
    inspection_record: str

    def fields(self, page: str) -> dict[str, str]:
        names = {"front": FRONT_FIELDS, "back": BACK_FIELDS, "both": FRONT_FIELDS + BACK_FIELDS}[page]
        return {name: getattr(self, name) for name in sorted(set(names))}


def make_vin(wmi: str, vds: str, year: str, plant: str, serial: str) -> str:
    body = wmi + vds + "0" + year + plant + serial
    require(len(body) == 17, body)
    check = vin_check_digit(body)
    require(check is not None, body)
    return body[:8] + check + body[9:]


AUTHORITIES = {
    "沪": "上海市公安局交通警察总队",
    "京": "北京市公安局公安交通管理局",
    "粤B": "广东省深圳市公安局交通警察支队",
    "粤A": "广东省广州市公安局交通警察支队",
    "浙A": "浙江省杭州市公安局交通警察支队",
    "苏E": "江苏省苏州市公安局交通警察支队",
    "川A": "四川省成都市公安局交通管理局",
    "鲁B": "山东省青岛市公安局交通警察支队",
    "鄂A": "湖北省武汉市公安局交通管理局",
    "冀A": "河北省石家庄市公安局交通管理局",
    "湘A": "湖南省长沙市公安局交通警察支队",
    "陕A": "陕西省西安市公安局交通警察支队",
}


def authority_for(plate: str) -> str:
    return AUTHORITIES.get(plate[:2]) or AUTHORITIES[plate[0]]


def V(**kw: str) -> Vehicle:
    plate = kw["plate_number"]
    kw.setdefault("license_issuing_authority", authority_for(plate))
    kw.setdefault("remarks", "")
    kw.setdefault("ratified_load_capacity", "")
    kw.setdefault("traction_mass", "")
    return Vehicle(**kw)


VEHICLES: list[Vehicle] = [
    V(
        plate_number="沪A5K2M7",
        vehicle_type="小型轿车",
        owner="张伟",
        address="上海市闵行区七莘路2018弄15号",
        use_character="非营运",
        model="大众汽车牌SVW7152",
        vin=make_vin("LSV", "AB618", "K", "N", "204731"),
        engine_number="DJS083417",
        register_date="2019-05-14",
        issue_date="2019-05-14",
        document_id="310017294518",
        approved_passengers_capacity="5人",
        total_mass="1945kg",
        curb_weight="1520kg",
        gabarite="4753×1800×1462mm",
        inspection_record="检验有效期至2025年05月沪A",
    ),
    V(
        plate_number="京NB7X21",
        vehicle_type="小型普通客车",
        owner="李秀英",
        address="北京市朝阳区望京西路48号院3号楼2单元501",
        use_character="非营运",
        model="丰田牌TV7250HEV",
        vin=make_vin("LVG", "BH3E6", "L", "B", "018326"),
        engine_number="A25A9264183",
        register_date="2020-09-27",
        issue_date="2020-09-27",
        document_id="110021845903",
        approved_passengers_capacity="7人",
        total_mass="2485kg",
        curb_weight="1955kg",
        gabarite="4935×1850×1745mm",
        inspection_record="检验有效期至2026年09月京N",
    ),
    V(
        plate_number="粤BDF2718",
        vehicle_type="小型轿车",
        owner="陈静",
        address="广东省深圳市南山区科技南十二路28号",
        use_character="非营运",
        model="比亚迪牌BYD7005BEVA",
        vin=make_vin("LGX", "CE4C7", "N", "0", "472913"),
        engine_number="TZ200XSQ2249017",
        register_date="2022-03-08",
        issue_date="2022-03-08",
        document_id="440305518276",
        approved_passengers_capacity="5人",
        total_mass="2425kg",
        curb_weight="2050kg",
        gabarite="4800×1875×1460mm",
        inspection_record="检验有效期至2028年03月粤B",
    ),
    V(
        plate_number="鲁B3Y8K6",
        vehicle_type="重型半挂牵引车",
        owner="青岛海联物流有限公司",
        address="山东省青岛市黄岛区前湾港路567号",
        use_character="货运",
        model="解放牌CA4250P66K24T1A",
        vin=make_vin("LFW", "SRXRJ", "M", "1", "073522"),
        engine_number="CA6DM2J4206851",
        register_date="2021-07-19",
        issue_date="2021-07-19",
        document_id="370206318845",
        approved_passengers_capacity="2人",
        total_mass="25000kg",
        curb_weight="8800kg",
        gabarite="6865×2500×3860mm",
        traction_mass="38870kg",
        inspection_record="检验有效期至2025年07月鲁B",
    ),
    V(
        plate_number="浙A52B7M",
        vehicle_type="小型轿车",
        owner="王磊",
        address="浙江省杭州市西湖区文三路259号",
        use_character="非营运",
        model="别克牌SGM7151LAAT",
        vin=make_vin("LSG", "ZS53L", "H", "S", "138460"),
        engine_number="171882345",
        register_date="2017-11-02",
        issue_date="2017-11-02",
        document_id="330100726154",
        approved_passengers_capacity="5人",
        total_mass="1750kg",
        curb_weight="1355kg",
        gabarite="4658×1801×1485mm",
        inspection_record="检验有效期至2025年11月浙A",
    ),
    V(
        plate_number="粤B04571D",
        vehicle_type="大型普通客车",
        owner="深圳市绿途公交有限公司",
        address="广东省深圳市福田区梅林路12号",
        use_character="公交客运",
        model="比亚迪牌BYD6121LGEV3",
        vin=make_vin("LC0", "6C8EB", "P", "0", "325587"),
        engine_number="TYC90A2G1850",
        register_date="2023-04-26",
        issue_date="2023-04-26",
        document_id="440300904471",
        approved_passengers_capacity="81人",
        total_mass="18000kg",
        curb_weight="13100kg",
        gabarite="12000×2550×3300mm",
        inspection_record="检验有效期至2024年10月粤B",
    ),
    V(
        plate_number="苏E6F0G8",
        vehicle_type="小型越野客车",
        owner="刘洋",
        address="江苏省苏州市工业园区星湖街328号",
        use_character="非营运",
        model="本田牌DHW6471R5ASE",
        vin=make_vin("LVH", "RW184", "J", "5", "061294"),
        engine_number="K24W71320568",
        register_date="2018-06-30",
        issue_date="2018-06-30",
        document_id="320500817402",
        approved_passengers_capacity="5人",
        total_mass="2040kg",
        curb_weight="1585kg",
        gabarite="4621×1855×1679mm",
        inspection_record="检验有效期至2024年06月苏E",
    ),
    V(
        plate_number="川A1T3Z5",
        vehicle_type="轻型厢式货车",
        owner="成都顺远商贸有限公司",
        address="四川省成都市武侯区武科西五路360号",
        use_character="货运",
        model="福田牌BJ5045XXY9JBA",
        vin=make_vin("LVB", "V4JB4", "M", "N", "591027"),
        engine_number="4F20TC12806391",
        register_date="2021-01-12",
        issue_date="2021-01-12",
        document_id="510107452290",
        approved_passengers_capacity="3人",
        total_mass="4495kg",
        curb_weight="2660kg",
        ratified_load_capacity="1640kg",
        gabarite="5995×2140×3060mm",
        inspection_record="检验有效期至2025年01月川A",
    ),
    V(
        plate_number="沪AF03162",
        vehicle_type="小型轿车",
        owner="杨帆",
        address="上海市浦东新区锦绣路1500号",
        use_character="非营运",
        model="特斯拉牌TSL7000BEVAR3",
        vin=make_vin("LRW", "3E7FA", "M", "C", "318847"),
        engine_number="3D7223061105QA",
        register_date="2021-12-03",
        issue_date="2021-12-03",
        document_id="310093378251",
        approved_passengers_capacity="5人",
        total_mass="2255kg",
        curb_weight="1760kg",
        gabarite="4694×1850×1443mm",
        inspection_record="检验有效期至2027年12月沪A",
    ),
    V(
        plate_number="鄂AQ2D81",
        vehicle_type="小型轿车",
        owner="赵军",
        address="湖北省武汉市洪山区珞喻路1037号",
        use_character="预约出租客运",
        model="吉利牌MR7153A03",
        vin=make_vin("L6T", "7824S", "L", "N", "027715"),
        engine_number="JLC4G15B0L8204",
        register_date="2020-08-18",
        issue_date="2020-08-18",
        document_id="420111663904",
        approved_passengers_capacity="5人",
        total_mass="1750kg",
        curb_weight="1325kg",
        gabarite="4680×1785×1495mm",
        remarks="营转非时间2024-03-01",
        inspection_record="检验有效期至2024年08月鄂A",
    ),
    V(
        plate_number="冀A51662",
        vehicle_type="重型仓栅式货车",
        owner="石家庄恒通运输有限公司",
        address="河北省石家庄市长安区和平东路219号",
        use_character="货运",
        model="东风牌DFH5250CCYAX",
        vin=make_vin("LGA", "G4DG7", "G", "1", "104582"),
        engine_number="DDi75S340-50",
        register_date="2016-04-07",
        issue_date="2016-04-07",
        document_id="130102114387",
        approved_passengers_capacity="2人",
        total_mass="25000kg",
        curb_weight="11870kg",
        ratified_load_capacity="13000kg",
        gabarite="9980×2550×3990mm",
        inspection_record="检验有效期至2024年10月冀A",
    ),
    V(
        plate_number="湘A9X8T2",
        vehicle_type="小型轿车",
        owner="周婷",
        address="湖南省长沙市岳麓区麓山南路932号",
        use_character="非营运",
        model="日产牌DFL7162VCLD1",
        vin=make_vin("LGB", "H52E2", "F", "Y", "558310"),
        engine_number="HR16832907B",
        register_date="2015-10-21",
        issue_date="2023-02-09",
        document_id="430104298816",
        approved_passengers_capacity="5人",
        total_mass="1640kg",
        curb_weight="1245kg",
        gabarite="4631×1760×1503mm",
        remarks="补领",
        inspection_record="检验有效期至2025年10月湘A",
    ),
    V(
        plate_number="陕AD52871",
        vehicle_type="小型普通客车",
        owner="孙浩",
        address="陕西省西安市雁塔区科技路33号",
        use_character="租赁",
        model="理想牌LXA6500SHEVM1",
        vin=make_vin("LW4", "33B16", "R", "1", "092476"),
        engine_number="L2E15M2406315",
        register_date="2024-02-29",
        issue_date="2024-02-29",
        document_id="610113907735",
        approved_passengers_capacity="6人",
        total_mass="3050kg",
        curb_weight="2515kg",
        gabarite="5218×1998×1800mm",
        inspection_record="检验有效期至2030年02月陕A",
    ),
    V(
        plate_number="粤A5R3G学",
        vehicle_type="小型轿车",
        owner="广州安驰驾驶员培训有限公司",
        address="广东省广州市白云区同泰路143号",
        use_character="非营运",
        model="捷达牌FV7152FCDWG",
        vin=make_vin("LFV", "2A11G", "K", "3", "276104"),
        engine_number="DMB128804",
        register_date="2019-03-15",
        issue_date="2019-03-15",
        document_id="440111035628",
        approved_passengers_capacity="5人",
        total_mass="1640kg",
        curb_weight="1240kg",
        gabarite="4501×1704×1469mm",
        remarks="教练车",
        inspection_record="检验有效期至2025年03月粤A",
    ),
]


def _security_background(rng: np.random.Generator, page: str) -> Image.Image:
    """Pale green/grey paper with a guilloche pattern and a faint rosette, as on the real card."""
    s = CARD_PX_PER_MM
    W, H = CARD_W_MM * s, CARD_H_MM * s
    base = (226, 236, 222) if page == "front" else (230, 234, 226)
    array = np.empty((H, W, 3), dtype=np.float32)
    array[:] = base
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    # Guilloche: interfering sine line families, thin and light.
    for k, (period, amp, phase, colour) in enumerate(
        [(9.0, 6.0, 0.0, (160, 196, 168)), (7.0, 9.0, 1.3, (170, 190, 200)), (11.0, 4.0, 2.1, (176, 200, 170))]
    ):
        wave = ys + amp * s * np.sin(xs / (period * s) * 2 * math.pi + phase + k)
        lines = np.abs(((wave / (1.6 * s)) % 1.0) - 0.5) < 0.06
        array[lines] = array[lines] * 0.55 + np.array(colour, dtype=np.float32) * 0.45
    # Rosette in the middle.
    cx, cy = W * 0.52, H * 0.55
    r = np.hypot(xs - cx, ys - cy)
    theta = np.arctan2(ys - cy, xs - cx)
    rose = (np.abs(np.sin(r / (0.9 * s) + 6 * np.sin(theta * 12) * 0.25)) < 0.12) & (r < 22 * s)
    array[rose] = array[rose] * 0.7 + np.array((190, 210, 196), dtype=np.float32) * 0.3
    array += smooth_noise(rng, (W, H), 30)[:, :, None] * 3
    image = from_array(array)
    draw = ImageDraw.Draw(image)
    draw.rectangle((1.2 * s, 1.2 * s, W - 1.2 * s, H - 1.2 * s), outline=(150, 180, 160), width=2)
    return image


def _draw_seal(authority: str, rng: np.random.Generator) -> Image.Image:
    """A round red seal: ring, star, and the authority's name along the upper arc (RGBA)."""
    s = CARD_PX_PER_MM
    size = 26 * s
    seal = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(seal)
    c = size / 2
    ring = 11.6 * s
    d.ellipse((c - ring, c - ring, c + ring, c + ring), outline=(*SEAL_COLOUR, 255), width=round(0.55 * s))
    # Five-pointed star.
    star = []
    for k in range(10):
        r = 3.0 * s if k % 2 == 0 else 1.2 * s
        a = -math.pi / 2 + k * math.pi / 5
        star.append((c + r * math.cos(a), c + r * math.sin(a)))
    d.polygon(star, fill=(*SEAL_COLOUR, 255))
    # Arc text, centred on the top.
    n = len(authority)
    span = min(280.0, 21.0 * n)
    char_mm = 3.3 if n <= 12 else 2.9
    f = font("song", round(char_mm * s * 1.15))
    text_r = ring - 0.8 * s - char_mm * s / 2
    for i, char in enumerate(authority):
        a_deg = -90 - span / 2 + span * (i + 0.5) / n
        a = math.radians(a_deg)
        tile = Image.new("RGBA", (round(char_mm * s * 1.6),) * 2, (0, 0, 0, 0))
        ImageDraw.Draw(tile).text(
            (tile.width / 2, tile.height / 2),
            char,
            font=f,
            fill=(*SEAL_COLOUR, 255),
            anchor="mm",
            stroke_width=1,
            stroke_fill=(*SEAL_COLOUR, 255),
        )
        tile = tile.rotate(-(a_deg + 90), resample=Image.Resampling.BICUBIC, expand=True)
        x = c + text_r * math.cos(a) - tile.width / 2
        y = c + text_r * math.sin(a) - tile.height / 2
        seal.alpha_composite(tile, (round(x), round(y)))
    # Uneven ink.
    alpha = to_array(seal.getchannel("A"))
    alpha *= np.clip(0.82 + 0.2 * smooth_noise(rng, seal.size, 18) + rng.normal(0, 0.08, alpha.shape), 0.45, 1.0)
    seal.putalpha(Image.fromarray(np.clip(alpha, 0, 255).astype(np.uint8), "L"))
    return seal.rotate(uniform(rng, -25, 25), resample=Image.Resampling.BICUBIC)


def _fit_font(name: str, text: str, height_mm: float, max_w_mm: float) -> ImageFont.FreeTypeFont:
    s = CARD_PX_PER_MM
    size = round(height_mm * s * 1.12)
    f = font(name, size)
    while f.getlength(text) > max_w_mm * s and size > 10:
        size -= 1
        f = font(name, size)
    return f


def render_card(vehicle: Vehicle, page: str, rng: np.random.Generator) -> Image.Image:
    """One page of the licence, flat, RGB, at CARD_PX_PER_MM."""
    s = CARD_PX_PER_MM
    card = _security_background(rng, page)
    draw = ImageDraw.Draw(card)
    layout = FRONT_LAYOUT if page == "front" else BACK_LAYOUT
    if page == "front":
        title = "中华人民共和国机动车行驶证"
        f = font("song", round(4.2 * s))
        draw.text(
            (CARD_W_MM * s / 2, 4.2 * s),
            title,
            font=f,
            fill=(30, 34, 32),
            anchor="mt",
            stroke_width=1,
            stroke_fill=(30, 34, 32),
        )
        f = font("serif", round(1.5 * s))
        draw.text(
            (CARD_W_MM * s / 2, 9.4 * s),
            "Vehicle License of the People's Republic of China",
            font=f,
            fill=CAPTION_COLOUR,
            anchor="mt",
        )
    else:
        pass  # the 副页 has no title: its first row is 号牌号码 / 档案编号
    label_font = font("song", round(LABEL_MM * s * 1.12))
    caption_font = font("serif", round(CAPTION_MM * s * 1.25))
    for _fld, label, caption, lx, ly, _vx, _vw in layout:
        draw.text((lx * s, ly * s), label, font=label_font, fill=LABEL_COLOUR)
        draw.text((lx * s, (ly + LABEL_MM + 0.5) * s), caption, font=caption_font, fill=CAPTION_COLOUR)
    if page == "back":
        # Inspection-record box and the vehicle photo.
        draw.rectangle((2.2 * s, 37.2 * s, 58 * s, 58 * s), outline=(130, 160, 140), width=2)
        px0, py0, px1, py1 = 60 * s, 38 * s, round(85.5 * s), round(57.5 * s)
        photo = vertical_gradient((px1 - px0, py1 - py0), (200, 210, 222), (120, 122, 118))
        car = from_array(photo)
        cd = ImageDraw.Draw(car)
        cw, ch = car.size
        body = tuple(int(v) for v in rng.integers(30, 200, 3))
        cd.rounded_rectangle((cw * 0.1, ch * 0.45, cw * 0.9, ch * 0.78), radius=ch // 12, fill=body)
        cd.polygon(
            [(cw * 0.25, ch * 0.47), (cw * 0.35, ch * 0.25), (cw * 0.68, ch * 0.25), (cw * 0.8, ch * 0.47)], fill=body
        )
        cd.polygon(
            [(cw * 0.3, ch * 0.45), (cw * 0.38, ch * 0.29), (cw * 0.65, ch * 0.29), (cw * 0.74, ch * 0.45)],
            fill=(60, 70, 84),
        )
        for wx in (0.26, 0.74):
            cd.ellipse((cw * wx - ch * 0.11, ch * 0.68, cw * wx + ch * 0.11, ch * 0.9), fill=(25, 25, 25))
        card.paste(car, (px0, py0))
        draw.rectangle((px0, py0, px1, py1), outline=(90, 100, 95), width=2)

    # Printed values: one printer pass, so one common misregistration for the whole page.
    off_x, off_y = uniform(rng, -0.8, 0.8) * s, uniform(rng, -0.6, 0.6) * s
    for fld, _label, _caption, _lx, ly, vx, vw in layout:
        value = getattr(vehicle, fld)
        if not value:
            continue
        vy = ly + 0.1
        if fld == "inspection_record":
            vy = ly + 6.5
        f = _fit_font("hei", value, VALUE_MM, vw)
        draw.text((vx * s + off_x, vy * s + off_y), value, font=f, fill=VALUE_COLOUR)
    if page == "front":
        seal = _draw_seal(vehicle.license_issuing_authority, rng)
        seal_layer = Image.new("RGBA", card.size, (0, 0, 0, 0))
        seal_layer.alpha_composite(seal, (round(-0.5 * s), round(33.5 * s)))
        # Ink multiplies with the paper.
        tinted = ImageChops.multiply(card, Image.new("RGB", card.size, SEAL_COLOUR))
        card = Image.composite(tinted, card, seal_layer.getchannel("A"))
        # Seal colour is lighter than pure multiply.
        card = Image.composite(
            Image.blend(card, Image.new("RGB", card.size, SEAL_COLOUR), 0.25), card, seal_layer.getchannel("A")
        )
    return card


def paint_surface(rng: np.random.Generator, size: tuple[int, int], style: str) -> Image.Image:
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if style == "wood":
        # Long streaks along the grain plus slowly wandering growth rings.
        streak_grid = rng.uniform(-1, 1, (h // 3 + 2, w // 160 + 2)).astype(np.float32)
        streaks = (
            np.asarray(
                Image.fromarray(((streak_grid + 1) * 127.5).astype(np.uint8), "L").resize(
                    (w, h), Image.Resampling.BICUBIC
                ),
                dtype=np.float32,
            )
            / 127.5
            - 1
        )
        rings = np.sin(2 * math.pi * (ys / 23 + smooth_noise(rng, size, 260) * 1.6)) * 0.5 + 0.5
        array = np.empty((h, w, 3), dtype=np.float32)
        array[:] = (156, 108, 68)
        array *= (0.8 + 0.1 * rings + 0.1 * streaks)[:, :, None]
        array += smooth_noise(rng, size, 120)[:, :, None] * 10
    elif style == "desk":
        array = vertical_gradient(size, (70, 72, 76), (48, 50, 54)) + rng.normal(0, 2, (h, w, 1)).astype(np.float32)
    elif style == "fabric":
        weave = (np.sin(xs * 1.9) * np.sin(ys * 1.9)) * 6
        array = vertical_gradient(size, (120, 120, 124), (96, 96, 100)) + weave[:, :, None]
    else:  # holder: dark leather of the licence wallet
        array = vertical_gradient(size, (58, 40, 30), (38, 26, 20)) + smooth_noise(rng, size, 6)[:, :, None] * 6
    return from_array(array)


@dataclass
class LicenseShot:
    name: str
    vehicle: int
    page: str  # front, back, both
    seed: int
    size: tuple[int, int] = (800, 600)
    surface: str = "wood"
    card_width: float = 0.84  # share of the photo width (per card)
    angle: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    blur: float = 0.0
    glare: float = 0.0
    light: tuple[float, float] = (0.82, 1.06)
    noise: float = 3.0
    quality: int = 80


def _card_with_sleeve(card: Image.Image, glare: float, rng: np.random.Generator) -> Image.Image:
    """The card inside its clear plastic sleeve, as RGBA with a soft edge."""
    s = CARD_PX_PER_MM
    margin = round(1.5 * s)
    w, h = card.width + 2 * margin, card.height + 2 * margin
    sleeve = Image.new("RGBA", (w, h), (236, 240, 238, 120))
    sleeve.paste(card, (margin, margin))
    if glare > 0:
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = uniform(rng, 0.2, 0.8) * w, uniform(rng, 0.2, 0.8) * h
        spot = np.exp(-(((xs - cx) / (w * 0.25)) ** 2 + ((ys - cy) / (h * 0.18)) ** 2)) * glare * 255
        array = to_array(sleeve)
        array[:, :, :3] = array[:, :, :3] * (1 - spot[:, :, None] / 255 * 0.8) + spot[:, :, None] * 0.8
        sleeve = from_array(array, "RGBA")
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, w - 1, h - 1), radius=round(2.5 * s), fill=255)
    alpha = ImageChops.multiply(mask, sleeve.getchannel("A").point(lambda v: 255 if v > 0 else 0))
    # Outer band of the sleeve is translucent.
    inner = Image.new("L", (w, h), 0)
    ImageDraw.Draw(inner).rectangle((margin, margin, w - margin, h - margin), fill=255)
    alpha = ImageChops.lighter(ImageChops.multiply(alpha, inner), alpha.point(lambda v: v * 170 // 255))
    sleeve.putalpha(alpha)
    return sleeve


def render_license_shot(shot: LicenseShot) -> Image.Image:
    rng = rng_for(1000 + shot.seed)
    vehicle = VEHICLES[shot.vehicle]
    w, h = shot.size
    scene = paint_surface(rng, shot.size, shot.surface).convert("RGBA")
    pages = ["front", "back"] if shot.page == "both" else [shot.page]
    n = len(pages)
    for i, page in enumerate(pages):
        card = _card_with_sleeve(render_card(vehicle, page, rng), shot.glare, rng)
        cw = shot.card_width * w
        chh = cw * card.height / card.width
        if n == 1:
            cx = w / 2 + uniform(rng, -0.03, 0.03) * w
            cy = h / 2 + uniform(rng, -0.03, 0.03) * h
        else:
            cx = w * (0.25 if i == 0 else 0.75) + uniform(rng, -0.005, 0.005) * w
            cy = h / 2 + uniform(rng, -0.02, 0.02) * h
        angle = shot.angle + uniform(rng, -1.0, 1.0)
        quad = quad_for(cx, cy, cw, chh, angle, shot.yaw, shot.pitch)
        # Drop shadow.
        shadow = Image.new("RGBA", scene.size, (0, 0, 0, 0))
        ImageDraw.Draw(shadow).polygon([(x + 6, y + 9) for x, y in quad], fill=(0, 0, 0, 110))
        scene.alpha_composite(shadow.filter(ImageFilter.GaussianBlur(8)))
        warp_onto(scene, card, quad)
    photo = scene.convert("RGB")
    photo = lighting(photo, rng, shot.light[0], shot.light[1], 0.3)
    photo = color_cast(photo, rng, 0.04)
    photo = photo.filter(ImageFilter.GaussianBlur(0.45 + shot.blur))
    photo = add_noise(photo, rng, shot.noise)
    return photo


LICENSE_SHOTS: list[LicenseShot] = [
    LicenseShot("001-front", 0, "front", 1, angle=-2, quality=82),
    LicenseShot("002-front", 1, "front", 2, surface="desk", angle=3, yaw=0.04, quality=78),
    LicenseShot("003-front-new-energy", 2, "front", 3, surface="fabric", angle=-4, pitch=0.05, quality=75),
    LicenseShot("004-front-truck", 3, "front", 4, angle=1.5, glare=0.35, quality=76),
    LicenseShot("005-front", 4, "front", 5, surface="desk", angle=4, yaw=-0.05, blur=0.3, quality=70),
    LicenseShot(
        "006-front-bus-hard",
        5,
        "front",
        6,
        surface="wood",
        angle=-4,
        yaw=0.07,
        pitch=0.04,
        blur=0.5,
        light=(0.6, 1.0),
        noise=5,
        quality=62,
    ),
    LicenseShot("007-back", 6, "back", 7, angle=2, quality=80),
    LicenseShot("008-back-light-truck", 7, "back", 8, surface="desk", angle=-3, pitch=0.04, quality=76),
    LicenseShot("009-back-new-energy", 8, "back", 9, surface="fabric", angle=4, glare=0.3, quality=74),
    LicenseShot("010-back", 9, "back", 10, angle=-1, yaw=0.05, blur=0.3, quality=72),
    LicenseShot("011-back-truck", 10, "back", 11, surface="desk", angle=-4, light=(0.7, 1.05), noise=4, quality=66),
    LicenseShot("012-both", 11, "both", 12, size=(1000, 420), surface="holder", card_width=0.46, angle=0.5, quality=80),
    LicenseShot(
        "013-both-new-energy",
        12,
        "both",
        13,
        size=(1000, 420),
        surface="holder",
        card_width=0.46,
        angle=-1.5,
        pitch=0.03,
        quality=78,
    ),
    LicenseShot(
        "014-both-coach",
        13,
        "both",
        14,
        size=(1000, 420),
        surface="wood",
        card_width=0.46,
        angle=1.5,
        yaw=0.03,
        quality=76,
    ),
]


# --------------------------------------------------------------------------- main


def main() -> None:
    _check_fonts()
    PLATES_DIR.mkdir(exist_ok=True)
    LICENSES_DIR.mkdir(exist_ok=True)
    for old in [*PLATES_DIR.glob("*.jpg"), *LICENSES_DIR.glob("*.jpg")]:
        old.unlink()
    truth: dict[str, dict[str, object]] = {}
    used: dict[str, int] = {}

    for shot in PLATE_SHOTS:
        for spec in shot.plates:
            check_plate_spec(spec)
        image = render_plate_shot(shot)
        require(max(image.size) <= 800, "max(image.size) <= 800")
        name = f"{shot.name}.jpg"
        used[name] = save_jpeg(image, PLATES_DIR / name, shot.quality)
        truth[f"plates/{name}"] = {
            "kind": "plate",
            "plates": [{"number": p.number, "color": p.color, "kind": p.kind} for p in shot.plates],
        }

    for shot in LICENSE_SHOTS:
        vehicle = VEHICLES[shot.vehicle]
        require(is_valid_plate(vehicle.plate_number), vehicle.plate_number)
        require(vin_check_digit(vehicle.vin) == vehicle.vin[8], vehicle.vin)
        require(vehicle.register_date <= vehicle.issue_date, "vehicle.register_date <= vehicle.issue_date")
        image = render_license_shot(shot)
        name = f"{shot.name}.jpg"
        used[name] = save_jpeg(image, LICENSES_DIR / name, shot.quality)
        truth[f"vehicle-licenses/{name}"] = {
            "kind": "vehicle_license",
            "page": shot.page,
            "fields": vehicle.fields(shot.page),
        }

    GROUND_TRUTH.write_text(json.dumps(truth, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    lowered = {name: q for name, q in used.items() if q < 50}
    require(not lowered, f"JPEG quality below 50 to fit 80 000 bytes: {lowered}")
    print(f"{len(PLATE_SHOTS)} plate photos, {len(LICENSE_SHOTS)} licence photos, samples/ is {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()

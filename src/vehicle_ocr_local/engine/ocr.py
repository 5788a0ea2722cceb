"""The OCR step: decode once, downscale huge photos, run rapidocr once, return text lines with boxes.

The rapidocr engine (three ONNX models, ~30 MB, about a second to load) is created lazily
on the first recognition and then shared by every recogniser in the process; creation is
guarded by a lock so concurrent first calls still load it once.  rapidocr logs at INFO on
every model load and at WARNING for every image without text; both are silenced here so
a Lambda log stays one line per upload.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from vehicle_ocr.errors import PipelineError

PROVIDER = "local"

# rapidocr itself caps the longest side at 2000 px before detection (Global.max_side_len), so
# anything larger is wasted decode time: JPEGs are decoded at a reduced DCT scale instead.
MAX_SIDE = 2000
# Photos this large (pixels) are refused as corrupt rather than decoded (decompression bombs).
MAX_PIXELS = 80_000_000

_RAPIDOCR_LOGGER = "RapidOCR"
ENGINE_THREADS_VARIABLE = "VEHICLE_OCR_ENGINE_THREADS"

_lock = threading.Lock()
_engine: Any = None
_loads = 0


@dataclass(frozen=True)
class OcrLine:
    """One detected text line: its text, rapidocr's confidence and its quadrilateral (x, y) corners."""

    text: str
    score: float
    box: tuple[tuple[float, float], ...]

    @property
    def x0(self) -> float:
        return min(x for x, _ in self.box)

    @property
    def x1(self) -> float:
        return max(x for x, _ in self.box)

    @property
    def y0(self) -> float:
        return min(y for _, y in self.box)

    @property
    def y1(self) -> float:
        return max(y for _, y in self.box)

    @property
    def height(self) -> float:
        """Height of the text line itself (mean of the two vertical edges, robust to a slight tilt)."""
        (ax, ay), (bx, by), (cx, cy), (dx, dy) = self.box[:4]
        left = float(np.hypot(dx - ax, dy - ay))
        right = float(np.hypot(cx - bx, cy - by))
        return max((left + right) / 2, 1.0)

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


@dataclass(frozen=True)
class Page:
    """A decoded image (RGB, possibly downscaled) and the text lines found on it, in its coordinates.

    ``scale`` is the size of the photo as uploaded (EXIF-rotated) over the size of ``rgb``: a box
    on the page times ``scale`` is in the photo's own pixels.
    """

    rgb: np.ndarray
    lines: tuple[OcrLine, ...]
    scale: float = 1.0


def _silence_rapidocr() -> None:
    logging.getLogger(_RAPIDOCR_LOGGER).setLevel(logging.ERROR)


def _thread_params() -> dict[str, int]:
    """onnxruntime's intra-op threads from VEHICLE_OCR_ENGINE_THREADS; unset: its default, one per core.

    Where several processes share the cores (parallel test workers, a batch beside other work), one
    thread each does the same work in less CPU time: the threads of one process only contend.
    """
    value = os.environ.get(ENGINE_THREADS_VARIABLE, "").strip()
    if not value:
        return {}
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"{ENGINE_THREADS_VARIABLE} must be a whole number of threads >= 1, got {value!r}")
    return {"EngineConfig.onnxruntime.intra_op_num_threads": threads}


def _create_engine() -> Any:
    """A RapidOCR instance with its three models loaded (rapidocr would otherwise load them on first use)."""
    _silence_rapidocr()
    from rapidocr import RapidOCR  # heavy import (onnxruntime, cv2): only when the engine is really needed

    _silence_rapidocr()  # the logger is (re)configured when rapidocr is imported
    engine = RapidOCR(params={"Global.log_level": "error", **_thread_params()})
    for loader in ("_load_det_model", "_load_cls_model", "_load_rec_model"):
        load = getattr(engine, loader, None)
        if callable(load):
            load()
    return engine


def ocr_engine() -> Any:
    """The process-wide RapidOCR engine, created on first use (thread-safe, once)."""
    global _engine, _loads
    engine = _engine
    if engine is None:
        with _lock:
            if _engine is None:
                _engine = _create_engine()
                _loads += 1
            engine = _engine
    return engine


def load_count() -> int:
    """How many times this process has created the OCR engine (1 after the first recognition)."""
    return _loads


def decode_image(image: bytes) -> np.ndarray:
    """RGB pixels (H x W x 3, uint8), EXIF-rotated, longest side at most MAX_SIDE; IMAGE_CORRUPT otherwise."""
    return _decode(image)[0]


def _decode(image: bytes) -> tuple[np.ndarray, float]:
    """decode_image's pixels, and the photo's longest side (EXIF-rotated) over theirs."""
    if not isinstance(image, bytes | bytearray | memoryview) or not image:
        raise PipelineError(PROVIDER, "IMAGE_CORRUPT", "no image data")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture: Image.Image = Image.open(io.BytesIO(bytes(image)))
            if picture.width * picture.height > MAX_PIXELS:
                raise PipelineError(
                    PROVIDER, "IMAGE_CORRUPT", f"image is {picture.width}x{picture.height} pixels; too large to decode"
                )
            longest = max(picture.size)
            original = longest
            if picture.format == "JPEG" and longest > 2 * MAX_SIDE:
                # Decode at 1/2, 1/4 or 1/8 scale straight from the DCT: much faster than a full decode.
                scale = longest / MAX_SIDE
                picture.draft("RGB", (int(picture.width / scale), int(picture.height / scale)))
            picture.load()
            picture = ImageOps.exif_transpose(picture)
            if picture.mode != "RGB":
                picture = _to_rgb(picture)
            if max(picture.size) > MAX_SIDE:
                ratio = MAX_SIDE / max(picture.size)
                size = (max(1, round(picture.width * ratio)), max(1, round(picture.height * ratio)))
                picture = picture.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
            rgb = np.asarray(picture, dtype=np.uint8)
    except PipelineError:
        raise
    except Exception as exc:  # PIL raises a zoo of types (OSError, SyntaxError, ValueError, warnings)
        raise PipelineError(PROVIDER, "IMAGE_CORRUPT", f"image cannot be decoded: {type(exc).__name__}") from exc
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 2:
        raise PipelineError(PROVIDER, "IMAGE_CORRUPT", "image has no usable pixels")
    return rgb, original / max(rgb.shape[:2])


def _to_rgb(picture: Image.Image) -> Image.Image:
    """RGB, with transparency flattened onto white (a transparent PNG would otherwise turn black)."""
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return picture.convert("RGB")


def run_ocr(rgb: np.ndarray) -> tuple[OcrLine, ...]:
    """Text lines of an RGB image: one rapidocr call (detection, orientation, recognition)."""
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    result = ocr_engine()(bgr)
    boxes, txts, scores = getattr(result, "boxes", None), getattr(result, "txts", None), getattr(result, "scores", None)
    if boxes is None or txts is None or scores is None:
        return ()
    lines = []
    for box, text, score in zip(boxes, txts, scores, strict=False):
        if not isinstance(text, str) or not text.strip():
            continue
        points = tuple((float(x), float(y)) for x, y in np.asarray(box, dtype=float).reshape(-1, 2)[:4])
        if len(points) == 4:
            lines.append(OcrLine(text=text.strip(), score=float(score), box=points))
    return tuple(lines)


def read_page(image: bytes) -> Page:
    """Decode ``image`` and OCR it once."""
    rgb, scale = _decode(image)
    return Page(rgb=rgb, lines=run_ocr(rgb), scale=scale)


def raw_ocr(image: bytes) -> Any:
    """The plain rapidocr call on the encoded image, same engine: the baseline benchmarks compare against."""
    return ocr_engine()(image)


def recognize_probabilities(crop: np.ndarray) -> tuple[np.ndarray, list[str]] | None:
    """Recognition only (no detection) on one ready-cut single-line BGR image: the per-frame character
    probabilities (T x C, CTC, column 0 the blank) and the character list; None if rapidocr's internals moved.

    Used for text the detector cannot box, such as the curved text of a seal once unwrapped, where the
    caller wants to score candidate readings rather than take the greedy one.
    """
    try:
        recognizer = ocr_engine()._load_rec_model()
        _channels, height, width = recognizer.rec_image_shape[:3]
        ratio = max(crop.shape[1] / crop.shape[0], width / height)
        batch = recognizer.resize_norm_img(crop, ratio)[np.newaxis].astype(np.float32)
        probabilities = np.asarray(recognizer.session(batch), dtype=np.float32)[0]
        characters = list(recognizer.postprocess_op.character)
    except (AttributeError, TypeError, ValueError, IndexError):
        return None
    if probabilities.ndim != 2 or probabilities.shape[1] != len(characters):
        return None
    return probabilities, characters


_index_cache: tuple[list[str], dict[str, int]] | None = None


def character_index(characters: list[str]) -> dict[str, int]:
    """Character -> probability column (built once per process: the list has some 18 000 entries)."""
    global _index_cache
    cached = _index_cache
    if cached is None or cached[0] != characters:
        cached = (list(characters), {char: i for i, char in enumerate(characters)})
        _index_cache = cached
    return cached[1]


def ctc_greedy(
    probabilities: np.ndarray, characters: list[str], index: dict[str, int] | None = None
) -> tuple[str, float]:
    """Best path decoding: (text, log-likelihood of that labelling under the model)."""
    best = probabilities.argmax(axis=1)
    text = []
    previous = -1
    for column in best:
        if column != previous and column != 0:
            text.append(characters[column])
        previous = column
    decoded = "".join(text)
    return decoded, ctc_log_likelihood(probabilities, decoded, index or character_index(characters))


def ctc_log_likelihood(probabilities: np.ndarray, text: str, index: dict[str, int]) -> float:
    """log P(text | image) under CTC (forward algorithm, log space); -inf if a character is unknown."""
    if any(char not in index for char in text):
        return float("-inf")
    labels = [index[char] for char in text]
    extended = np.zeros(2 * len(labels) + 1, dtype=np.int64)  # blank, l1, blank, l2, ..., blank
    extended[1::2] = labels
    log_probs = np.log(np.maximum(probabilities[:, extended], 1e-12))
    skip = np.zeros(len(extended), dtype=bool)  # may jump over the blank between two different labels
    skip[3::2] = extended[3::2] != extended[1:-2:2]
    alpha = np.full(len(extended), -np.inf)
    alpha[0] = log_probs[0, 0]
    if len(extended) > 1:
        alpha[1] = log_probs[0, 1]
    for t in range(1, len(log_probs)):
        stay = alpha
        step = np.concatenate(([-np.inf], alpha[:-1]))
        jump = np.where(skip, np.concatenate(([-np.inf, -np.inf], alpha[:-2])), -np.inf)
        alpha = np.logaddexp(np.logaddexp(stay, step), jump) + log_probs[t]
    return float(np.logaddexp(alpha[-1], alpha[-2])) if len(extended) > 1 else float(alpha[-1])

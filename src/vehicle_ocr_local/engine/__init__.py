"""The offline recognition engine: provider ``local`` for both kinds, no network, no paid API.

``vehicle_ocr.providers.build_recognizers`` imports this module and instantiates
:class:`LocalPlateRecognizer` and :class:`LocalVehicleLicenseRecognizer` (no arguments).
Both run rapidocr (PP-OCR detection + recognition, ONNX models inside the wheel) once per
image on the shared, lazily loaded engine, then read the lines:

* plates: every place with plate-like text (also split across two boxes or two rows) is
  cut out again with a margin, straightened, scaled and re-read by the recogniser alone, and
  its per-frame scores are decoded against the plate grammar (:mod:`.grammar`); colour from
  the plate's pixels after the photo's colour cast is taken off.  Payload
  ``[{"number": str, "color": str, "confidence": float 0..1, "box": [x1, y1, x2, y2]}]``, the
  box in whole pixels of the photo as uploaded (EXIF-rotated), around the plate's characters.
  A plate the engine is unsure of is left out: a wrong plate is worse than none.
* vehicle licences: labelled fields by row geometry, the issuing authority from the red
  seal; payload apizero's 20-field ``data`` object (strings, "" when absent).

Their payloads are normalised by the pipeline exactly like the paid providers' answers.
:func:`raw_ocr` is the plain rapidocr call, kept for benchmarks.
"""

from vehicle_ocr_local.engine.license import LocalVehicleLicenseRecognizer, parse_license
from vehicle_ocr_local.engine.ocr import OcrLine, Page, decode_image, load_count, ocr_engine, raw_ocr, read_page
from vehicle_ocr_local.engine.plates import LocalPlateRecognizer, PlateReading, find_plates

__all__ = [
    "LocalPlateRecognizer",
    "LocalVehicleLicenseRecognizer",
    "OcrLine",
    "Page",
    "PlateReading",
    "decode_image",
    "find_plates",
    "load_count",
    "ocr_engine",
    "parse_license",
    "raw_ocr",
    "read_page",
]

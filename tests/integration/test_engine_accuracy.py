"""The offline engine meets its accuracy targets on the labelled samples (samples/ground_truth.json).

Compared after the pipeline's own normalisation, as scripts/evaluate_engine.py does: plate
numbers exact >= 98%, plate colours right >= 95%, licence fields exact >= 95%, and at most one
wrong plate in 50 returned.  Timing is
left to the script (it needs a quiet machine); this test runs each image once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("rapidocr", reason="the offline engine's extra (rapidocr) is not installed")

from scripts.evaluate_engine import SYNTHETIC_TARGETS, evaluate

SAMPLES = Path(__file__).resolve().parents[2] / "samples"

pytestmark = pytest.mark.skipif(
    not (SAMPLES / "ground_truth.json").is_file(),
    reason=f"no labelled samples: {SAMPLES / 'ground_truth.json'} is missing (samples/generate.py writes it)",
)


@pytest.fixture(scope="module")
def report():
    return evaluate(SAMPLES, runs=0)


def _misses(report, kind: str) -> str:
    shown = [m for m in report.misses if (kind == "plate") == m.get("image", "").startswith("plates/")]
    return "\n".join(str(miss) for miss in shown[:20])


def test_every_labelled_sample_was_read(report):
    missing = [m for m in report.misses if m.get("error") == "file missing"]
    assert not missing, missing
    assert report.images > 0


def test_plate_numbers_are_exact(report):
    if not report.plate_numbers.total:
        pytest.skip("the samples have no plate photos")
    assert report.plate_numbers.pct >= SYNTHETIC_TARGETS["plate_numbers_pct"], _misses(report, "plate")


def test_plate_colours_are_right(report):
    if not report.plate_colors.total:
        pytest.skip("the samples have no plate photos")
    assert report.plate_colors.pct >= SYNTHETIC_TARGETS["plate_colors_pct"], _misses(report, "plate")


def test_a_wrong_plate_is_rarer_than_one_in_fifty_returned(report):
    # A wrong plate is worse than none: the engine leaves out a plate it is unsure of
    if not report.returned_plates:
        pytest.skip("the engine returned no plate")
    assert report.wrong_per_50_returned <= SYNTHETIC_TARGETS["wrong_plates_per_50_returned"], _misses(report, "plate")


def test_licence_fields_are_exact(report):
    if not report.license_fields.total:
        pytest.skip("the samples have no vehicle-licence photos")
    assert report.license_fields.pct >= SYNTHETIC_TARGETS["license_fields_pct"], (
        f"misses per field: {dict(report.field_misses)}\n" + _misses(report, "licence")
    )


def test_images_that_must_fail_fail_with_their_code(report):
    if not report.expected_errors.total:
        pytest.skip("no sample is labelled with an expected error")
    assert report.expected_errors.right == report.expected_errors.total, _misses(report, "plate")

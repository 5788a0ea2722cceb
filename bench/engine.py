"""Offline engine: accuracy on the real photos and ms per image against the raw rapidocr call, then the
synthetic samples as a regression check.

scripts/evaluate_engine.py on samples/real, one timed run per image: the scored engine call,
then the plain rapidocr call on the same bytes (both warm). Accuracy is what the pipeline
would store (after normalisation) against the folder's ground_truth.json. A wrong plate (one
returned that is no plate of the photo) is worse than none, so it has a target of its own.
"""

from __future__ import annotations

from bench.common import SAMPLES, Figure, Section
from scripts.evaluate_engine import REAL_TARGETS, SYNTHETIC_TARGETS, evaluate

REAL = SAMPLES / "real"
TARGET = 1.5  # engine ms / raw rapidocr ms on the same images
RUNS = 1


def run() -> Section:
    section = Section("Offline engine: real photos and synthetic samples, speed against raw rapidocr")
    timed = REAL if (REAL / "ground_truth.json").is_file() else SAMPLES
    real = evaluate(timed, runs=RUNS, kinds=("plate",))
    summary = real.summary()
    timing = real.timing["all"]
    section.figures = [
        Figure(
            "engine_ms_ratio",
            timing["ratio"],
            "<=",
            TARGET,
            detail=f"engine {timing['engine_ms_per_image']} ms/image vs raw rapidocr "
            f"{timing['raw_rapidocr_ms_per_image']} ms/image ({timing['images']} plate photos in {timed.name}/)",
        ),
        Figure(
            "engine_real_plate_numbers_pct",
            summary["plate_numbers_pct"],
            ">=",
            REAL_TARGETS["plate_numbers_pct"],
            unit="%",
            digits=1,
            detail=f"{summary['plate_numbers_exact']}/{summary['plates']} plates read exactly ({timed.name}/)",
        ),
        Figure(
            "engine_real_plate_colors_of_read_pct",
            summary["plate_colors_of_read_pct"],
            ">=",
            REAL_TARGETS["plate_colors_of_read_pct"],
            unit="%",
            digits=1,
            detail="colour right among the plates read exactly",
        ),
        Figure(
            "engine_real_wrong_plates_per_50_returned",
            summary["wrong_plates_per_50_returned"],
            "<=",
            REAL_TARGETS["wrong_plates_per_50_returned"],
            digits=2,
            detail=f"{summary['wrong_plates']} of {summary['returned_plates']} returned are no plate of the photo",
        ),
    ]
    # The synthetic samples: the engine was developed on them, so this is a regression check.
    synthetic = evaluate(SAMPLES, runs=0).summary()
    accuracy = {
        "plate_numbers_pct": ("plate_numbers_exact", "plates", "plates read exactly"),
        "plate_colors_pct": ("plate_colors_right", "plates", "colours right"),
        "license_fields_pct": ("license_fields_exact", "license_fields", "licence fields exact"),
    }
    for name, (right, total, what) in accuracy.items():
        section.figures.append(
            Figure(
                f"engine_{name}",
                synthetic[name],
                ">=",
                SYNTHETIC_TARGETS[name],
                unit="%",
                digits=1,
                detail=f"{synthetic[right]}/{synthetic[total]} {what} (samples/, synthetic)",
            )
        )
    section.data = {"timing": real.timing, "peak_rss_mb": real.peak_rss_mb, "real": summary, "synthetic": synthetic}
    section.notes = [
        f"{summary['images']} plate photos in {timed.name}/, one warm timed run each (engine, then raw rapidocr).",
        f"Peak RSS {real.peak_rss_mb} MB. Plates left unread: {summary['plates'] - summary['plate_numbers_exact']}.",
        "The synthetic samples are what the engine was first developed against: read their accuracy as a "
        "regression check; the real photos are a development set too (samples/real/README.md).",
    ]
    return section

"""Offline engine: ms per image against the raw rapidocr call on the same images, and its accuracy.

scripts/evaluate_engine.py on samples/, one timed run per image: the scored engine call,
then the plain rapidocr call on the same bytes (both warm). Accuracy is what the pipeline
would store (after normalisation) against samples/ground_truth.json.
"""

from __future__ import annotations

from bench.common import SAMPLES, Figure, Section
from scripts.evaluate_engine import TARGETS, evaluate

TARGET = 1.1
RUNS = 1


def run() -> Section:
    section = Section("Offline engine: speed against raw rapidocr, accuracy on the samples")
    report = evaluate(SAMPLES, runs=RUNS)
    summary = report.summary()
    timing = report.timing["all"]
    section.figures = [
        Figure(
            "engine_ms_ratio",
            timing["ratio"],
            "<=",
            TARGET,
            detail=f"engine {timing['engine_ms_per_image']} ms/image vs raw rapidocr "
            f"{timing['raw_rapidocr_ms_per_image']} ms/image ({timing['images']} images)",
        ),
    ]
    # Accuracy against the targets evaluate_engine defines: figure → (right count, total count, what).
    accuracy = {
        "plate_numbers_pct": ("plate_numbers_exact", "plates", "plates read exactly"),
        "plate_colors_pct": ("plate_colors_right", "plates", "colours right"),
        "license_fields_pct": ("license_fields_exact", "license_fields", "licence fields exact"),
    }
    for name, (right, total, what) in accuracy.items():
        section.figures.append(
            Figure(
                f"engine_{name}",
                summary[name],
                ">=",
                TARGETS[name],
                unit="%",
                digits=1,
                detail=f"{summary[right]}/{summary[total]} {what}",
            )
        )
    per_kind = {kind: figures for kind, figures in report.timing.items() if isinstance(figures, dict)}
    section.data = {"timing": report.timing, "peak_rss_mb": report.peak_rss_mb, "summary": summary}
    section.notes = [
        f"{summary['images']} sample images, one warm timed run each (engine first, then raw rapidocr).",
        *(
            f"{kind}: engine {f['engine_ms_per_image']} vs raw {f['raw_rapidocr_ms_per_image']} ms/image "
            f"(x{f['ratio']}, {f['images']} images)"
            for kind, f in per_kind.items()
            if kind != "all"
        ),
        f"Peak RSS {report.peak_rss_mb} MB. Extra plates reported: {summary['extra_plates']}.",
        "The samples are synthetic and the engine was tuned on them: read the accuracy as a regression check, "
        "not as accuracy on real photos (samples/README.md).",
    ]
    return section

"""scripts/evaluate_engine.py --baseline hyperlpr2: another offline recogniser scored beside the engine.

hyperlpr2 runs in its own virtualenv (it needs opencv-python < 5) through scripts/hyperlpr2_worker.py,
one JSON line per image.  Its answers are scored by the script's own scorer after the same plate
normalisation as the engine's; without a package index the option fails in one line and the rest
of the evaluation still runs.  The worker itself runs only where its virtualenv is already cached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.evaluate_engine import (
    BASELINE_MIN_SCORE,
    BaselineScorer,
    BaselineUnavailable,
    BaselineWorker,
    baseline_venv,
    parse_baseline_answer,
)

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "samples" / "real"

TRUTH = {
    "plates/street.jpg": {"kind": "plate", "plates": [{"number": "闽C·D8888", "color": "blue"}]},
    "plates/gate.jpg": {"kind": "plate", "plates": [{"number": "粤B12345", "color": "blue"}], "unreadable": 1},
    "plates/night.jpg": {"kind": "plate", "plates": [{"number": "川A7Q123", "color": "blue"}]},
}
# What the worker prints for those images: a plate read right (spelt loosely), a plate read wrong
# with a low score, a far-off plate the truth calls unreadable, and a file it could not decode.
WORKER_LINES = [
    '{"path": "plates/street.jpg", "plates": [{"number": "闽cd 8888", "score": 0.97, "box": [1, 2, 3, 4]}],'
    ' "ms": 120.0}',
    '{"path": "plates/gate.jpg", "plates": [{"number": "粤B12345", "score": 0.91, "box": [0, 0, 9, 3]},'
    ' {"number": "粤B99999", "score": 0.85, "box": [5, 5, 9, 8]}], "ms": 80.0}',
    '{"path": "plates/night.jpg", "plates": [{"number": "M A7Q123", "score": 0.42, "box": [1, 1, 2, 2]}], "ms": 100.0}',
]


def test_the_baselines_answers_are_scored_as_the_engines_at_every_score_and_above_the_threshold():
    # Given the worker's answers for three labelled images, and raw rapidocr's ms on each
    scorer = BaselineScorer("hyperlpr2 2.0.0")
    for (name, entry), line, raw_ms in zip(TRUTH.items(), WORKER_LINES, (300.0, 200.0, 500.0), strict=True):
        # When each is parsed and scored
        scorer.add(name, entry, parse_baseline_answer(line), raw_ms)
    every, sure = scorer.reports(runs=1).values()

    # Then a loosely spelt right plate counts as exact, the misread one as wrong unless its
    # score is under the threshold, and the unreadable plate's extra answer is not held against it
    assert (every.plate_numbers.right, every.plate_numbers.total) == (2, 3)
    assert (every.wrong_plates, every.returned_plates) == (1, 4)
    assert every.wrong_per_50_returned == 12.5
    assert BASELINE_MIN_SCORE > 0.42
    assert (sure.plate_numbers.right, sure.wrong_plates, sure.returned_plates) == (2, 0, 3)
    # And its time is set against the same images' raw rapidocr time
    assert every.timing["plate"]["baseline_ms_per_image"] == 100.0
    assert every.timing["plate"]["ratio"] == round(100.0 / ((300.0 + 200.0 + 500.0) / 3), 3)


def test_an_image_the_baseline_could_not_read_counts_as_missed_not_as_timed():
    scorer = BaselineScorer("hyperlpr2 2.0.0")
    entry = TRUTH["plates/street.jpg"]
    scorer.add("plates/street.jpg", entry, parse_baseline_answer('{"path": "x", "error": "cannot read"}'), 300.0)
    every, _sure = scorer.reports(runs=1).values()
    assert (every.plate_numbers.right, every.plate_numbers.total, every.returned_plates) == (0, 1, 0)
    assert every.scored_ms == [] and every.timing == {}
    assert {"image": "plates/street.jpg", "baseline_error": "cannot read"} in every.misses


@pytest.mark.parametrize("line", ["Traceback (most recent call last):", '{"path": "a.jpg"}', "[1, 2]"])
def test_a_worker_line_that_is_no_answer_stops_the_baseline_with_one_line(line):
    with pytest.raises(BaselineUnavailable) as raised:
        parse_baseline_answer(line)
    assert "\n" not in str(raised.value)


def test_without_a_package_index_the_option_fails_in_one_line_and_the_evaluation_still_runs(tmp_path):
    # Given an empty cache and no package index to install hyperlpr2 from
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "ground_truth.json").write_text("{}", encoding="utf-8")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}

    # When the user asks for the comparison
    script = ROOT / "scripts" / "evaluate_engine.py"
    command = [sys.executable, str(script), "--samples", str(samples), "--kind", "plate", "--runs", "0"]
    done = subprocess.run(  # noqa: S603 - this interpreter, our script
        [*command, "--baseline", "hyperlpr2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )

    # Then it says in one line why there is no baseline, exits non-zero, and still reports the engine
    failures = [line for line in done.stderr.splitlines() if line.startswith("--baseline hyperlpr2:")]
    assert len(failures) == 1, done.stderr
    assert "could not be installed" in failures[0] and "hyperlpr2==2.0.0" in failures[0]
    assert done.returncode == 2
    assert "plate numbers exact" in done.stdout and "side by side" not in done.stdout
    assert not list((tmp_path / "cache" / "vehicle-ocr").glob("hyperlpr2-*/bin"))  # no half-made venv kept


def test_the_cached_baseline_reads_a_real_photo():
    venv = baseline_venv()
    if not (venv / ".requirements").is_file():
        pytest.skip(f"hyperlpr2's virtualenv is not cached: {venv} (scripts/evaluate_engine.py --baseline creates it)")
    truth = json.loads((REAL / "ground_truth.json").read_text(encoding="utf-8"))
    truth = truth.get("samples", truth)
    name = next(
        name for name, entry in sorted(truth.items()) if isinstance(entry, dict) and entry.get("kind") == "plate"
    )
    worker = BaselineWorker(venv / "bin" / "python")
    try:
        # When the worker is asked for a labelled real photo, and for a file that is not there
        answer = worker.recognise(REAL / name)
        missing = worker.recognise(REAL / "plates" / "no-such-photo.jpg")
    finally:
        worker.close()
    # Then it answers the photo with plates, scores and its time, and the missing file with an error
    assert answer["path"] == str(REAL / name) and answer["ms"] > 0
    assert all(isinstance(p["number"], str) and 0 <= p["score"] <= 1 and len(p["box"]) == 4 for p in answer["plates"])
    assert "cannot read" in missing["error"]

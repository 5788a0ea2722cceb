"""Accuracy and speed of the offline engine (provider ``local``) on the labelled samples.

    .venv/bin/python scripts/evaluate_engine.py [--samples samples] [--runs 3] [--json out.json] [-v]
    .venv/bin/python scripts/evaluate_engine.py --samples samples/real --runs 0 -v   # the real photos

Compares what the pipeline would store, not the engine's raw strings: plate numbers after
``normalize_plate`` against ``canonical_plate_number`` of the truth, colours after
``normalize_color``, licence fields after ``normalize_vehicle_license`` on both sides (only
the fields the truth lists for that page).  Speed: every image through the engine and
through the plain rapidocr call on the same bytes, warm, median of ``--runs`` runs each
(the scored call is the engine's first run), interleaved so both see the same machine state.

``samples/ground_truth.json`` maps a path under the samples folder to
``{"kind": "plate", "plates": [{"number", "color", "kind"}]}`` or
``{"kind": "vehicle_license", "page": "front|back", "fields": {apizero name: printed value}}``;
an entry may instead carry ``"error": "<pipeline code>"`` for an image that must fail.
A plate entry may also carry ``"unreadable": n``: plates in the photo no one could read, so n
plates the engine returns beyond the listed ones are not counted as wrong (real photos).

Besides the exact figures it reports the colour right among the plates whose number was read,
the wrong plates returned (read but matching no plate of the truth) per 50 plate images, and
the mean ms of the scored call per image (measured even with ``--runs 0``).

Each sample set has its own targets (``TARGETS_BY_SET``), chosen by the samples folder's name:
``samples/real`` (real photos, ``REAL_TARGETS``: plates 95%, colour of the plates read 97%) or
any other folder (the synthetic ``samples/``, ``SYNTHETIC_TARGETS``: plates 98%, colours and
licence fields 95%); at most 1 wrong plate per 50 returned in both.  The exit status is 1 when a
target of the set is missed.

``--baseline hyperlpr2`` also reads every plate image, in the same run and interleaved with the
engine's calls, with hyperlpr2 2.0.0 (its models inside its wheel, offline) and scores its answers
with the same scorer after the same ``normalize_plate``; printed side by side with the engine, at
every score and at score >= ``BASELINE_MIN_SCORE``.  hyperlpr2 needs ``opencv-python`` < 5, which
cannot live beside the project's ``opencv-python-headless`` 5, so it runs in its own virtualenv
(``scripts/hyperlpr2_worker.py``, pinned there), created on first use under
``~/.cache/vehicle-ocr/hyperlpr2-<hash of the pins>`` (pip needs a package index once).  Its ms
are measured inside its process, per image, against the same raw rapidocr calls as the engine's.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "layers" / "common", ROOT / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from scripts.hyperlpr2_worker import REQUIREMENTS as HYPERLPR2_REQUIREMENTS  # noqa: E402
from vehicle_ocr.errors import RecognitionError  # noqa: E402
from vehicle_ocr.normalize.plates import canonical_plate_number, normalize_color, normalize_plate  # noqa: E402
from vehicle_ocr.normalize.vehicle_license import normalize_vehicle_license  # noqa: E402

DEFAULT_SAMPLES = ROOT / "samples"

# Targets per sample set, keyed by the summary's figure names. The synthetic photos are drawn to be
# read (the engine was developed on them); the real ones include night and far-off frames.
SYNTHETIC_TARGETS = {
    "plate_numbers_pct": 98.0,
    "plate_colors_pct": 95.0,
    "license_fields_pct": 95.0,
    "wrong_plates_per_50_returned": 1.0,
}
REAL_TARGETS = {"plate_numbers_pct": 95.0, "plate_colors_of_read_pct": 97.0, "wrong_plates_per_50_returned": 1.0}
TARGETS_BY_SET = {"synthetic": SYNTHETIC_TARGETS, "real": REAL_TARGETS}
# A wrong plate is worse than none: its rate is a ceiling, every other target a floor.
CEILINGS = frozenset({"wrong_plates_per_50_returned"})
TARGET_NAMES = {
    "plate_numbers_pct": "plate numbers exact",
    "plate_colors_pct": "plate colours right",
    "plate_colors_of_read_pct": "plate colours right of plates read",
    "license_fields_pct": "licence fields exact",
    "wrong_plates_per_50_returned": "wrong plates per 50 returned",
}


def sample_set(samples: str | Path) -> str:
    """Which targets a samples folder is held to: ``real`` for samples/real, else ``synthetic``."""
    return "real" if Path(samples).name == "real" else "synthetic"


def meets(name: str, value: float | None, target: float) -> bool:
    """A figure against its target; a figure not measured in this run (no licences asked for) is not missed."""
    return value is None or (value <= target if name in CEILINGS else value >= target)


def describe_target(name: str, target: float) -> str:
    unit = "%" if name.endswith("_pct") else ""
    return f"{'<=' if name in CEILINGS else '>='} {target:g}{unit}"


# apizero field -> the key(s) normalize_vehicle_license writes for it.
NORMALIZED_KEYS: dict[str, tuple[str, ...]] = {
    "plate_number": ("plate_number",),
    "vehicle_type": ("vehicle_type",),
    "owner": ("owner",),
    "address": ("address",),
    "use_character": ("use_character",),
    "model": ("model",),
    "vin": ("vin",),
    "engine_number": ("engine_number",),
    "register_date": ("register_date",),
    "issue_date": ("issue_date",),
    "license_issuing_authority": ("license_issuing_authority",),
    "document_id": ("document_id",),
    "approved_passengers_capacity": ("approved_passengers",),
    "total_mass": ("total_mass_kg",),
    "curb_weight": ("curb_weight_kg",),
    "ratified_load_capacity": ("ratified_load_kg",),
    "gabarite": ("dimensions_mm",),
    "traction_mass": ("traction_mass_kg",),
    "remarks": ("remarks",),
    "inspection_record": ("inspection_record",),
}


@dataclass
class Tally:
    right: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.total += 1
        self.right += int(ok)

    @property
    def pct(self) -> float | None:
        return round(100.0 * self.right / self.total, 2) if self.total else None


@dataclass
class Report:
    samples: str
    images: int = 0
    plate_images: int = 0
    license_images: int = 0
    plate_numbers: Tally = field(default_factory=Tally)
    plate_colors: Tally = field(default_factory=Tally)
    license_fields: Tally = field(default_factory=Tally)
    expected_errors: Tally = field(default_factory=Tally)
    extra_plates: int = 0
    returned_plates: int = 0
    wrong_plates: int = 0
    unreadable_plates: int = 0
    plate_colors_of_read: Tally = field(default_factory=Tally)
    scored_ms: list[float] = field(default_factory=list)
    plate_scored_ms: list[float] = field(default_factory=list)
    field_misses: Counter = field(default_factory=Counter)
    color_confusions: Counter = field(default_factory=Counter)
    misses: list[dict[str, Any]] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    # --baseline: one Report per way of reading its answers (every score, score >= the threshold).
    baselines: dict[str, Report] = field(default_factory=dict)
    baseline_error: str | None = None

    @property
    def wrong_per_50_returned(self) -> float | None:
        return round(50.0 * self.wrong_plates / self.returned_plates, 2) if self.returned_plates else None

    @property
    def sample_set(self) -> str:
        return sample_set(self.samples)

    @property
    def targets(self) -> dict[str, float]:
        return TARGETS_BY_SET[self.sample_set]

    @property
    def wrong_plates_per_50(self) -> float | None:
        return round(50.0 * self.extra_plates / self.plate_images, 2) if self.plate_images else None

    def missed_targets(self) -> dict[str, float | None]:
        """The figures of this set's targets that missed them, with their values."""
        figures = {
            "plate_numbers_pct": self.plate_numbers.pct,
            "plate_colors_pct": self.plate_colors.pct,
            "plate_colors_of_read_pct": self.plate_colors_of_read.pct,
            "license_fields_pct": self.license_fields.pct,
            "wrong_plates_per_50_returned": self.wrong_per_50_returned,
        }
        return {name: figures[name] for name, target in self.targets.items() if not meets(name, figures[name], target)}

    def summary(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "sample_set": self.sample_set,
            "images": self.images,
            "plate_images": self.plate_images,
            "license_images": self.license_images,
            "plates": self.plate_numbers.total,
            "plate_numbers_exact": self.plate_numbers.right,
            "plate_colors_right": self.plate_colors.right,
            "extra_plates": self.extra_plates,
            "unreadable_plates": self.unreadable_plates,
            "plate_colors_of_read_pct": self.plate_colors_of_read.pct,
            "wrong_plates_per_50_images": self.wrong_plates_per_50,
            "returned_plates": self.returned_plates,
            "wrong_plates": self.wrong_plates,
            "wrong_plates_per_50_returned": self.wrong_per_50_returned,
            "scored_ms_per_image": round(statistics.fmean(self.scored_ms), 1) if self.scored_ms else None,
            "license_fields": self.license_fields.total,
            "license_fields_exact": self.license_fields.right,
            "expected_errors_right": f"{self.expected_errors.right}/{self.expected_errors.total}",
            "plate_numbers_pct": self.plate_numbers.pct,
            "plate_colors_pct": self.plate_colors.pct,
            "license_fields_pct": self.license_fields.pct,
            "targets": self.targets,
            "targets_met": not self.missed_targets(),
            "field_misses": dict(self.field_misses.most_common()),
            "color_confusions": {f"{t}->{p}": n for (t, p), n in self.color_confusions.most_common()},
            "timing": self.timing,
            "peak_rss_mb": self.peak_rss_mb,
            "misses": self.misses,
            **(
                {"baselines": {label: r.side_figures() for label, r in self.baselines.items()}}
                if self.baselines
                else {}
            ),
            **({"baseline_error": self.baseline_error} if self.baseline_error else {}),
        }

    def side_figures(self) -> dict[str, Any]:
        """The figures the side-by-side table compares."""
        return {
            "plates": self.plate_numbers.total,
            "plate_numbers_exact": self.plate_numbers.right,
            "plate_numbers_pct": self.plate_numbers.pct,
            "returned_plates": self.returned_plates,
            "wrong_plates": self.wrong_plates,
            "wrong_plates_per_50_returned": self.wrong_per_50_returned,
            "scored_ms_per_image": round(statistics.fmean(self.scored_ms), 1) if self.scored_ms else None,
            "timing": self.timing,
        }


def load_truth(samples: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((samples / "ground_truth.json").read_text(encoding="utf-8"))
    if isinstance(data, Mapping) and isinstance(data.get("samples"), Mapping):
        data = data["samples"]
    return {name: entry for name, entry in data.items() if isinstance(entry, Mapping) and entry.get("kind")}


def _norm_license(fields: Mapping[str, Any]) -> dict[str, Any]:
    return normalize_vehicle_license({name: value for name, value in fields.items() if value is not None})


def score_plates(
    report: Report,
    name: str,
    truth: list[Mapping[str, Any]],
    payload: list[Mapping[str, Any]],
    unreadable: int = 0,
) -> None:
    predicted = [normalize_plate(raw) for raw in payload]
    unmatched = list(predicted)
    wanted = []
    for plate in truth:
        number = canonical_plate_number(plate.get("number"))
        hit = next((p for p in unmatched if p["number"] == number), None)
        if hit is not None:
            unmatched.remove(hit)
        wanted.append((plate, number, hit))
    not_in_truth = len(unmatched)
    # A plate read wrongly is still paired with its truth (in order) to judge its colour.
    for plate, number, hit in wanted:
        report.plate_numbers.add(hit is not None)
        paired = hit if hit is not None else (unmatched.pop(0) if unmatched else None)
        color = normalize_color(plate.get("color")).value
        got_color = paired["color"] if paired else None
        report.plate_colors.add(got_color == color)
        if hit is not None:
            report.plate_colors_of_read.add(got_color == color)
        if got_color != color:
            report.color_confusions[(color, got_color)] += 1
        if hit is None or got_color != color:
            report.misses.append(
                {
                    "image": name,
                    "want": {"number": number, "color": color},
                    "got": [{"number": p["number"], "color": p["color"]} for p in predicted],
                }
            )
    # What the engine returned beyond the truth is wrong, except up to ``unreadable`` plates.
    report.unreadable_plates += unreadable
    report.extra_plates += max(0, len(unmatched) - unreadable)
    # Every returned plate that is no plate of the truth is wrong (read wrongly, or not there at all).
    report.returned_plates += len(predicted)
    report.wrong_plates += max(0, not_in_truth - unreadable)


def score_license(report: Report, name: str, truth_fields: Mapping[str, Any], payload: Mapping[str, Any]) -> None:
    want = _norm_license(truth_fields)
    got = _norm_license(payload if isinstance(payload, Mapping) else {})
    for raw_name in truth_fields:
        for key in NORMALIZED_KEYS.get(raw_name, ()):
            ok = want.get(key) == got.get(key)
            report.license_fields.add(ok)
            if not ok:
                report.field_misses[raw_name] += 1
                report.misses.append({"image": name, "field": raw_name, "want": want.get(key), "got": got.get(key)})


def evaluate(
    samples: Path = DEFAULT_SAMPLES,
    runs: int = 3,
    log: Callable[[str], None] | None = None,
    kinds: tuple[str, ...] = ("plate", "vehicle_license"),
    baseline: BaselineWorker | None = None,
) -> Report:
    """Run the engine over every labelled sample; ``runs`` > 0 also times engine vs raw rapidocr.

    The scored call is the first timed run of each image (after one warm-up call of each kind),
    so ``runs=1`` costs one engine call and one raw rapidocr call per image; ``runs=0`` still
    warms up and times the scored call, without the raw rapidocr comparison.  A ``baseline``
    reads each plate image right after the engine and raw rapidocr did (``max(runs, 1)`` calls).
    """
    from vehicle_ocr_local.engine import LocalPlateRecognizer, LocalVehicleLicenseRecognizer, raw_ocr

    truth = {name: entry for name, entry in load_truth(samples).items() if entry["kind"] in kinds}
    recognizers = {"plate": LocalPlateRecognizer(), "vehicle_license": LocalVehicleLicenseRecognizer()}
    report = Report(samples=str(samples))
    images: list[tuple[str, bytes, str, Mapping[str, Any]]] = []
    for name, entry in sorted(truth.items()):
        path = samples / name
        if not path.is_file():
            report.misses.append({"image": name, "error": "file missing"})
            continue
        images.append((name, path.read_bytes(), str(entry["kind"]), entry))
    # Model loading is not per-image cost: warm up even with runs=0, so the scored ms mean something.
    _warm_up(images, recognizers, raw_ocr)
    scorer = BaselineScorer(baseline.name) if baseline is not None else None
    if baseline is not None:
        first_plate = next((name for name, _image, kind, _entry in images if kind == "plate"), None)
        report.baseline_error = baseline.warm_up(samples / first_plate) if first_plate else None
    timings = Timings()
    for name, image, kind, entry in images:
        report.images += 1
        start = time.perf_counter()
        try:
            payload = recognizers[kind].recognize(image).payload
            error = None
        except RecognitionError as exc:
            payload, error = None, exc.code
        scored_ms = (time.perf_counter() - start) * 1000
        report.scored_ms.append(scored_ms)
        if runs > 0:
            timings.add(kind, scored_ms, image, recognizers[kind], raw_ocr, runs)
        if entry.get("error"):
            report.expected_errors.add(error == entry["error"])
            if error != entry["error"]:
                report.misses.append({"image": name, "want_error": entry["error"], "got_error": error})
            continue
        if kind == "plate":
            report.plate_images += 1
            report.plate_scored_ms.append(scored_ms)
            score_plates(
                report, name, list(entry.get("plates") or []), payload or [], int(entry.get("unreadable") or 0)
            )
            if baseline is not None and scorer is not None and report.baseline_error is None:
                raw_ms = timings.per_kind["plate"]["raw"][-1] if runs > 0 else None
                try:
                    answer = baseline.recognise(samples / name, max(runs, 1))
                except BaselineUnavailable as exc:
                    report.baseline_error = str(exc)
                else:
                    scorer.add(name, entry, answer, raw_ms)
        else:
            report.license_images += 1
            score_license(report, name, dict(entry.get("fields") or {}), payload or {})
        if error and log:
            log(f"  {name}: {error}")
    if runs > 0 and images:
        report.timing = timings.summary(runs)
    if scorer is not None and report.baseline_error is None:
        report.baselines = scorer.reports(runs)
    report.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return report


def _warm_up(images: list[tuple[str, bytes, str, Any]], recognizers: Mapping[str, Any], raw_ocr: Any) -> None:
    """One untimed call of each recogniser and of raw rapidocr: model loading is not per-image cost."""
    for kind in {kind for _name, _image, kind, _entry in images}:
        image = next(image for _name, image, image_kind, _entry in images if image_kind == kind)
        with contextlib.suppress(RecognitionError):
            recognizers[kind].recognize(image)
        with contextlib.suppress(Exception):
            raw_ocr(image)


@dataclass
class Timings:
    """Per image: the median over runs of the engine and of raw rapidocr on the same bytes, in ms."""

    per_kind: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(
        self,
        kind: str,
        first_engine_ms: float,
        image: bytes,
        recognizer: Any,
        raw_ocr: Callable[[bytes], Any],
        runs: int,
    ) -> None:
        engine_ms, raw_ms = [first_engine_ms], []
        for run in range(runs):
            if run:  # the first engine run is the scored call, already timed
                start = time.perf_counter()
                with contextlib.suppress(RecognitionError):
                    recognizer.recognize(image)
                engine_ms.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            with contextlib.suppress(Exception):  # a corrupt sample makes rapidocr raise; its time still counts
                raw_ocr(image)
            raw_ms.append((time.perf_counter() - start) * 1000)
        bucket = self.per_kind.setdefault(kind, {"engine": [], "raw": []})
        bucket["engine"].append(statistics.median(engine_ms))
        bucket["raw"].append(statistics.median(raw_ms))

    def summary(self, runs: int) -> dict[str, Any]:
        """Means of the per-image medians, overall and per kind."""

        def figures(engine: list[float], raw: list[float]) -> dict[str, Any]:
            engine_mean, raw_mean = statistics.fmean(engine), statistics.fmean(raw)
            return {
                "images": len(engine),
                "engine_ms_per_image": round(engine_mean, 1),
                "raw_rapidocr_ms_per_image": round(raw_mean, 1),
                "ratio": round(engine_mean / raw_mean, 3) if raw_mean else None,
            }

        every_engine = [ms for bucket in self.per_kind.values() for ms in bucket["engine"]]
        every_raw = [ms for bucket in self.per_kind.values() for ms in bucket["raw"]]
        result: dict[str, Any] = {"runs": runs, "all": figures(every_engine, every_raw)}
        for kind, bucket in sorted(self.per_kind.items()):
            result[kind] = figures(bucket["engine"], bucket["raw"])
        return result


# --baseline: another offline recogniser, in its own virtualenv and process.
BASELINES = ("hyperlpr2",)
BASELINE_MIN_SCORE = 0.8
BASELINE_INSTALL_TIMEOUT_S = 900
BASELINE_WORKER = ROOT / "scripts" / "hyperlpr2_worker.py"


class BaselineUnavailable(Exception):
    """The baseline cannot run here; the message is one line saying why."""


def baseline_venv(requirements: tuple[str, ...] = HYPERLPR2_REQUIREMENTS) -> Path:
    """Where hyperlpr2's virtualenv lives: shared by every clone, one per set of pins."""
    digest = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:16]
    cache = os.environ.get("XDG_CACHE_HOME") or (str(Path.home() / ".cache") if os.environ.get("HOME") else "")
    base = Path(cache) if cache else ROOT / ".cache"  # no HOME (some CI users): the repository's own
    return base / "vehicle-ocr" / f"hyperlpr2-{digest}"


def _venv_ready(venv: Path, requirements: tuple[str, ...]) -> bool:
    python = venv / "bin" / "python"
    stamp = venv / ".requirements"
    if not python.exists() or not stamp.is_file() or stamp.read_text(encoding="utf-8") != "\n".join(requirements):
        return False
    # Kept across upgrades of the machine: its interpreter must still run.
    check = subprocess.run([str(python), "-c", ""], capture_output=True, check=False)  # noqa: S603 - our venv
    return check.returncode == 0


def ensure_baseline_venv(requirements: tuple[str, ...] = HYPERLPR2_REQUIREMENTS, venv: Path | None = None) -> Path:
    """hyperlpr2's interpreter, installing its virtualenv first if it is not there (one installer at a time)."""
    venv = venv or baseline_venv(requirements)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs (or clones) may install at once
        if _venv_ready(venv, requirements):
            return venv / "bin" / "python"
        print(f"installing {', '.join(requirements)} into {venv} (one time)", file=sys.stderr)
        shutil.rmtree(venv, ignore_errors=True)
        log = Path(f"{venv}.install.log")
        with log.open("w", encoding="utf-8") as out:
            # No pip of its own: this interpreter's pip installs into it (--python), which spares the
            # bootstrap of a second pip (5 s of CPU).
            pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "--disable-pip-version-check"]
            steps = ([sys.executable, "-m", "venv", "--without-pip", str(venv)], [*pip, "install", *requirements])
            for step in steps:
                try:
                    done = subprocess.run(  # noqa: S603 - fixed commands, pinned requirements
                        step, stdout=out, stderr=subprocess.STDOUT, timeout=BASELINE_INSTALL_TIMEOUT_S, check=False
                    )
                    failed = done.returncode != 0
                except subprocess.TimeoutExpired:
                    failed = True
                    print(f"timed out after {BASELINE_INSTALL_TIMEOUT_S} s", file=out)
                if failed:
                    out.flush()
                    lines = [line.strip() for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
                    why = next(
                        (line for line in reversed(lines) if line.startswith("ERROR")), lines[-1] if lines else ""
                    )
                    shutil.rmtree(venv, ignore_errors=True)
                    raise BaselineUnavailable(
                        f"hyperlpr2's virtualenv could not be installed ({why or 'no output'}; "
                        f"no network or no package index?); log: {log}"
                    )
        (venv / ".requirements").write_text("\n".join(requirements), encoding="utf-8")
    return venv / "bin" / "python"


def parse_baseline_answer(line: str) -> dict[str, Any]:
    """One line of the worker: ``{"path", "plates": [{"number", "score", ...}], "ms"}`` or ``{"path", "error"}``."""
    try:
        answer = json.loads(line)
    except ValueError:
        raise BaselineUnavailable(
            f"the baseline's worker answered something that is not JSON: {line[:200]!r}"
        ) from None
    if not isinstance(answer, dict) or not (
        isinstance(answer.get("error"), str) or isinstance(answer.get("plates"), list)
    ):
        raise BaselineUnavailable(f"the baseline's worker answered neither plates nor an error: {line[:200]!r}")
    return answer


def baseline_payload(answer: Mapping[str, Any], min_score: float = 0.0) -> list[Mapping[str, Any]]:
    """The worker's plates as an upstream payload for ``normalize_plate``; hyperlpr2 reports no colour."""
    return [
        {"number": plate.get("number"), "confidence": plate.get("score")}
        for plate in answer.get("plates") or []
        if isinstance(plate, Mapping) and float(plate.get("score") or 0.0) >= min_score
    ]


class BaselineWorker:
    """hyperlpr2's worker process, asked one image path at a time (so its calls interleave with the engine's)."""

    name = "hyperlpr2 2.0.0"

    def __init__(self, python: Path, worker: Path = BASELINE_WORKER) -> None:
        self._python, self._worker = python, worker
        self._process: subprocess.Popen[str] | None = None
        self._runs = 0

    def _start(self, runs: int) -> subprocess.Popen[str]:
        if self._process is None or self._runs != runs:
            self.close()
            self._process = subprocess.Popen(  # noqa: S603 - the baseline's venv, our worker
                [str(self._python), str(self._worker), "--runs", str(runs)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
            )
            self._runs = runs
        return self._process

    def recognise(self, path: Path, runs: int = 1) -> dict[str, Any]:
        process = self._start(runs)
        if process.stdin is None or process.stdout is None:  # for the type checker: both are pipes
            raise BaselineUnavailable("the baseline's worker has no pipes")
        try:
            process.stdin.write(f"{path}\n")
            process.stdin.flush()
        except BrokenPipeError:
            raise BaselineUnavailable(f"the baseline's worker exited (code {process.poll()})") from None
        line = process.stdout.readline()
        if not line:
            raise BaselineUnavailable(f"the baseline's worker exited (code {process.wait()})")
        return parse_baseline_answer(line)

    def warm_up(self, path: Path) -> str | None:
        """Load its models (not per-image cost); the reason it cannot run, if it cannot."""
        try:
            self.recognise(path)
        except BaselineUnavailable as exc:
            return str(exc)
        return None

    def close(self) -> None:
        if self._process is not None:
            if self._process.stdin:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


@dataclass
class BaselineScorer:
    """The baseline's answers scored as the engine's are: at every score, and at score >= BASELINE_MIN_SCORE."""

    name: str
    min_score: float = BASELINE_MIN_SCORE
    all_scores: Report = field(default_factory=lambda: Report(samples=""))
    sure: Report = field(default_factory=lambda: Report(samples=""))
    ms: list[float] = field(default_factory=list)
    raw_ms: list[float] = field(default_factory=list)

    def add(self, name: str, entry: Mapping[str, Any], answer: Mapping[str, Any], raw_ms: float | None) -> None:
        truth, unreadable = list(entry.get("plates") or []), int(entry.get("unreadable") or 0)
        for report, min_score in ((self.all_scores, 0.0), (self.sure, self.min_score)):
            report.images += 1
            report.plate_images += 1
            score_plates(report, name, truth, baseline_payload(answer, min_score), unreadable)
        if answer.get("error"):
            for report in (self.all_scores, self.sure):
                report.misses.append({"image": name, "baseline_error": answer["error"]})
            return
        ms = float(answer.get("ms") or 0.0)
        for report in (self.all_scores, self.sure):
            report.scored_ms.append(ms)
        if raw_ms is not None:
            self.ms.append(ms)
            self.raw_ms.append(raw_ms)

    def reports(self, runs: int) -> dict[str, Report]:
        if self.ms:
            mean, raw_mean = statistics.fmean(self.ms), statistics.fmean(self.raw_ms)
            timing = {
                "runs": runs,
                "plate": {
                    "images": len(self.ms),
                    "baseline_ms_per_image": round(mean, 1),
                    "raw_rapidocr_ms_per_image": round(raw_mean, 1),
                    "ratio": round(mean / raw_mean, 3) if raw_mean else None,
                },
            }
            self.all_scores.timing = self.sure.timing = timing
        return {self.name: self.all_scores, f"{self.name}, score >= {self.min_score}": self.sure}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}%"


def print_report(report: Report, verbose: bool = False) -> None:
    summary = report.summary()
    targets = report.targets

    def target(name: str) -> str:
        return f"; target {describe_target(name, targets[name])}" if name in targets else ""

    print(
        f"samples: {report.samples}: {report.images} images "
        f"({report.plate_images} plate, {report.license_images} licence)"
    )
    print(
        f"targets ({report.sample_set} set): "
        + ", ".join(f"{TARGET_NAMES[name]} {describe_target(name, value)}" for name, value in targets.items())
    )
    print(
        f"plate numbers exact: {_pct(summary['plate_numbers_pct'])} "
        f"({report.plate_numbers.right}/{report.plate_numbers.total}{target('plate_numbers_pct')})"
    )
    print(
        f"plate colours right: {_pct(summary['plate_colors_pct'])} "
        f"({report.plate_colors.right}/{report.plate_colors.total}{target('plate_colors_pct')})"
    )
    print(
        f"plate colours right of plates read: {_pct(summary['plate_colors_of_read_pct'])} "
        f"({report.plate_colors_of_read.right}/{report.plate_colors_of_read.total}"
        f"{target('plate_colors_of_read_pct')})"
    )
    print(
        f"wrong plates returned: {report.wrong_plates} of {report.returned_plates} "
        f"({summary['wrong_plates_per_50_returned']} per 50 returned{target('wrong_plates_per_50_returned')})"
    )
    print(
        f"extra plates reported: {report.extra_plates} "
        f"({summary['wrong_plates_per_50_images']} wrong plates per 50 plate images"
        + (f"; {report.unreadable_plates} unreadable plates not counted)" if report.unreadable_plates else ")")
    )
    if report.scored_ms:
        print(f"ms/image (scored call, first run each): {summary['scored_ms_per_image']}")
    print(
        f"licence fields exact: {_pct(summary['license_fields_pct'])} "
        f"({report.license_fields.right}/{report.license_fields.total}{target('license_fields_pct')})"
    )
    if report.expected_errors.total:
        print(f"expected errors raised: {summary['expected_errors_right']}")
    if report.field_misses:
        print("licence field misses: " + ", ".join(f"{k} {v}" for k, v in report.field_misses.most_common()))
    if report.color_confusions:
        print("colour confusions (truth->got): " + ", ".join(summary["color_confusions"]))
    for kind, figures in report.timing.items():
        if isinstance(figures, dict):
            print(
                f"ms/image [{kind}] ({figures['images']} images, median of {report.timing['runs']} warm runs): "
                f"engine {figures['engine_ms_per_image']} vs raw rapidocr {figures['raw_rapidocr_ms_per_image']} "
                f"(x{figures['ratio']})"
            )
    print(f"peak RSS: {report.peak_rss_mb} MB")
    if verbose:
        for miss in report.misses:
            print("  miss:", json.dumps(miss, ensure_ascii=False))
    if report.baselines:
        print_side_by_side(report)
    missed = report.missed_targets()
    print(
        f"targets of the {report.sample_set} set met"
        if not missed
        else f"TARGETS NOT MET ({report.sample_set} set): "
        + ", ".join(
            f"{TARGET_NAMES[name]} {value:g}{'%' if name.endswith('_pct') else ''} "
            f"not {describe_target(name, targets[name])}"
            for name, value in missed.items()
        )
    )


def print_side_by_side(report: Report) -> None:
    """The engine and each baseline on the same plate images, one column each."""

    def ratio(r: Report) -> str:
        plate = r.timing.get("plate") if isinstance(r.timing, dict) else None
        return f"x{plate['ratio']}" if isinstance(plate, dict) and plate.get("ratio") is not None else "n/a"

    def ms(r: Report) -> str:
        plate_ms = r.plate_scored_ms if r is report else r.scored_ms
        return f"{statistics.fmean(plate_ms):.1f}" if plate_ms else "n/a"

    columns = [("engine", report), *report.baselines.items()]
    rows = [
        (
            "plates exact",
            [f"{r.plate_numbers.right}/{r.plate_numbers.total} ({_pct(r.plate_numbers.pct)})" for _, r in columns],
        ),
        (
            "colour right, of plates read",
            [f"{report.plate_colors_of_read.right}/{report.plate_colors_of_read.total}"]
            + ["- (no colour)"] * len(report.baselines),
        ),
        (
            "wrong plates per 50 returned",
            [f"{r.wrong_per_50_returned} ({r.wrong_plates} of {r.returned_plates})" for _, r in columns],
        ),
        ("ms/image (scored call)", [ms(r) for _, r in columns]),
        ("ms/image vs raw rapidocr", [ratio(r) for _, r in columns]),
    ]
    print(f"side by side on the same {report.plate_images} plate images, this run:")
    widths = [max(len(label), *(len(row[1][i]) for row in rows)) for i, (label, _r) in enumerate(columns)]
    head = max(len(name) for name, _values in rows)
    print("  " + " " * head + "  " + "  ".join(label.ljust(w) for (label, _r), w in zip(columns, widths, strict=True)))
    for name, values in rows:
        print("  " + name.ljust(head) + "  " + "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES, help="folder with ground_truth.json")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per image and engine (0: no timing)")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every miss")
    parser.add_argument(
        "--kind", choices=("plate", "vehicle_license"), action="append", help="only these kinds (default: both)"
    )
    parser.add_argument(
        "--baseline",
        choices=BASELINES,
        help="also read the plate images with this offline recogniser, side by side "
        "(its own virtualenv under ~/.cache/vehicle-ocr, installed on first use)",
    )
    args = parser.parse_args(argv)
    if not (args.samples / "ground_truth.json").is_file():
        print(f"no ground truth: {args.samples / 'ground_truth.json'}", file=sys.stderr)
        return 2
    kinds = tuple(args.kind) if args.kind else ("plate", "vehicle_license")
    baseline, baseline_error = None, None
    if args.baseline:
        try:
            baseline = BaselineWorker(ensure_baseline_venv())
        except (BaselineUnavailable, OSError) as exc:
            baseline_error = str(exc)
            print(f"--baseline {args.baseline}: {baseline_error}", file=sys.stderr)
    try:
        report = evaluate(args.samples, runs=args.runs, log=print, kinds=kinds, baseline=baseline)
    finally:
        if baseline is not None:
            baseline.close()
    report.baseline_error = report.baseline_error or baseline_error
    if report.baseline_error and not baseline_error:
        print(f"--baseline {args.baseline}: {report.baseline_error}", file=sys.stderr)
    print_report(report, verbose=args.verbose)
    if args.json:
        args.json.write_text(json.dumps(report.summary(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if report.baseline_error:
        return 2  # the comparison asked for did not happen
    return 0 if report.summary()["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

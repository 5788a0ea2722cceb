"""samples/real (real photos from public repositories) is consistent: every labelled image exists,
every plate number is a published layout, every image is labelled, and SOURCES.md names each
image's repository, path, commit and a licence that allows committing it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vehicle_ocr.normalize.plates import PlateColor, PlateKind, is_valid_plate

REAL = Path(__file__).resolve().parents[2] / "samples" / "real"
PERMISSIVE = {"MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "CC-BY-4.0", "CC-BY-3.0"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
MAX_BYTES = 25 * 1024 * 1024

pytestmark = pytest.mark.skipif(not (REAL / "ground_truth.json").is_file(), reason="no samples/real")


def _truth() -> dict:
    return json.loads((REAL / "ground_truth.json").read_text(encoding="utf-8"))


def _sources() -> dict[str, dict[str, str]]:
    """The SOURCES.md table: file -> {repository, path, commit, licence}; '(same)' repeats the row above."""
    rows: dict[str, dict[str, str]] = {}
    previous: dict[str, str] = {}
    for line in (REAL / "SOURCES.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 5 or not re.search(r"\.(jpe?g|png|bmp|webp)$", cells[0], re.IGNORECASE):
            continue
        row = dict(zip(("repository", "path", "commit", "licence"), cells[1:5], strict=True))
        row = {key: previous.get(key, "") if value == "(same)" else value for key, value in row.items()}
        rows[cells[0]] = previous = row
    return rows


def test_every_labelled_image_exists_and_every_image_is_labelled():
    truth = _truth()
    missing = [name for name in truth if not (REAL / name).is_file()]
    assert not missing, missing
    on_disk = {path.relative_to(REAL).as_posix() for path in REAL.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES}
    assert on_disk == set(truth), {"unlabelled": sorted(on_disk - set(truth)), "missing": sorted(set(truth) - on_disk)}


def test_every_plate_is_valid_and_well_formed():
    bad = []
    for name, entry in _truth().items():
        assert entry.get("kind") == "plate", name
        assert isinstance(entry.get("unreadable", 0), int) and entry.get("unreadable", 0) >= 0, name
        assert entry.get("plates") or entry.get("unreadable"), f"{name}: neither plates nor unreadable ones"
        for plate in entry.get("plates") or []:
            if not is_valid_plate(plate.get("number")):
                bad.append((name, plate.get("number")))
            assert plate.get("color") in {color.value for color in PlateColor}, (name, plate)
            assert plate.get("kind") in {kind.value for kind in PlateKind}, (name, plate)
    assert not bad, bad


def test_sources_name_every_image_with_a_permissive_licence():
    sources = _sources()
    unlisted = [name for name in _truth() if Path(name).name not in sources]
    assert not unlisted, f"not in SOURCES.md: {unlisted}"
    for name, row in sources.items():
        assert (REAL / "plates" / name).is_file(), f"SOURCES.md lists {name}, which is not in samples/real/plates"
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", row["repository"]), (name, row)
        assert row["path"], (name, row)
        assert re.fullmatch(r"[0-9a-f]{40}", row["commit"]), (name, row)
        assert row["licence"] in PERMISSIVE, (name, row)


def test_the_set_stays_small():
    total = sum(path.stat().st_size for path in REAL.rglob("*") if path.is_file())
    assert total < MAX_BYTES, total

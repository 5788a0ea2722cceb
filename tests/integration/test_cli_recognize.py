"""`vehicle-ocr recognize PATH...`: files recognised on this machine with the Lambda's layer, no stack.

Each test runs the command in a subprocess, as a user would. The offline engine takes a few
seconds to load, so the tests that read pixels keep to one or two sample photos.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from tests.fakes.fixtures import TIANAPI_TEST_KEY
from tests.fakes.upstream import Reply
from tests.integration.test_cli import assert_one_line_error
from vehicle_ocr.images import prepare_for_upstream

PLATES = ROOT / "samples" / "plates"
COACH = PLATES / "016-yellow-coach.jpg"  # 沪A0762学
BLUE = PLATES / "001-blue-regular.jpg"  # 沪A3H57K
LINE_KEYS = ["file", "kind", "provider", "status", "plates", "vehicle_license", "error", "ms"]
VEHICLE_OCR = str(Path(sys.executable).parent / "vehicle-ocr")
# What would choose or reach a provider from the developer's shell: each test says what it wants.
PROVIDER_VARIABLES = {
    "TIANAPI_KEY",
    "APIZERO_KEY",
    "TIANAPI_URL",
    "APIZERO_URL",
    "TIANAPI_KEY_PARAMETER",
    "APIZERO_KEY_PARAMETER",
    "PLATE_PROVIDER",
    "PLATE_PROVIDERS",
    "LICENSE_PROVIDER",
    "LICENSE_PROVIDERS",
    "PLATE_PREFIX",
    "LICENSE_PREFIX",
}


def recognize(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if name not in PROVIDER_VARIABLES}
    environment.update(env or {})
    return subprocess.run(  # noqa: S603 - our own console script
        [VEHICLE_OCR, "recognize", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=180,
    )


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    for line in lines:
        assert list(line)[: len(LINE_KEYS)] == LINE_KEYS, line
        assert isinstance(line["ms"], int) and line["ms"] >= 0, line
    return lines


def test_a_sample_plate_photo_is_recognised_by_the_offline_engine():
    # Given the sample photo of a coach plate, and the offline engine asked for
    # When it is recognised with --json
    lines = json_lines(recognize(COACH, "--provider", "local", "--json"))
    # Then one line says SUCCEEDED by local, with the plate as a record holds it
    assert len(lines) == 1
    line = lines[0]
    assert line["file"] == str(COACH)
    assert (line["kind"], line["provider"], line["status"], line["error"]) == ("plate", "local", "SUCCEEDED", None)
    assert [plate["number"] for plate in line["plates"]] == ["沪A0762学"]
    assert line["plates"][0]["kind"] == "coach" and line["plates"][0]["color"] == "yellow"
    assert line["vehicle_license"] is None


def test_json_lines_keep_the_input_order():
    # Given two sample photos named out of their sorted order
    # When both are recognised with --json
    lines = json_lines(recognize(COACH, BLUE, "--provider", "local", "--json"))
    # Then there is one line per file, in the order given, each with its own plate
    assert [line["file"] for line in lines] == [str(COACH), str(BLUE)]
    assert [[plate["number"] for plate in line["plates"]] for line in lines] == [["沪A0762学"], ["沪A3H57K"]]


def test_the_kind_is_inferred_from_a_plates_folder_whose_images_are_found_recursively(tmp_path):
    # Given a folder "plates" holding a text file named a.jpg, a note, and the coach photo one folder down
    plates = tmp_path / "gate 1" / "plates"
    (plates / "cam").mkdir(parents=True)
    (plates / "a.jpg").write_text("not an image")
    (plates / "notes.txt").write_text("not looked at")
    shutil.copy(COACH, plates / "cam" / "b.JPG")
    # When the folder is recognised without --kind
    lines = json_lines(recognize(tmp_path / "gate 1", "--provider", "local", "--json"))
    # Then its images, by extension, sorted, are recognised as plates
    assert [Path(line["file"]).relative_to(tmp_path).as_posix() for line in lines] == [
        "gate 1/plates/a.jpg",
        "gate 1/plates/cam/b.JPG",
    ]
    assert [(line["kind"], line["status"]) for line in lines] == [("plate", "FAILED"), ("plate", "SUCCEEDED")]
    assert [plate["number"] for plate in lines[1]["plates"]] == ["沪A0762学"]


def test_bad_images_are_failed_lines_with_the_pipeline_codes_and_exit_0(tmp_path):
    # Given a text file named x.jpg, an empty file and a truncated JPEG
    text, empty, truncated = tmp_path / "x.jpg", tmp_path / "empty.jpg", tmp_path / "cut.jpg"
    text.write_text("hello, not a photo")
    empty.write_bytes(b"")
    truncated.write_bytes(COACH.read_bytes()[:5000])
    # When they are recognised as plates
    result = recognize(text, empty, truncated, "--kind", "plate", "--provider", "local", "--json")
    # Then each is a FAILED line with the pipeline's code in the record's error shape, and the command succeeds
    lines = json_lines(result)
    assert [line["status"] for line in lines] == ["FAILED"] * 3
    assert [line["error"]["code"] for line in lines] == ["IMAGE_UNSUPPORTED", "IMAGE_EMPTY", "IMAGE_CORRUPT"]
    assert lines[0]["error"] == {
        "code": "IMAGE_UNSUPPORTED",
        "source": "pipeline",
        "provider": "pipeline",
        "message": "object is not an image (unrecognised file signature)",
        "retryable": False,
    }
    assert all(line["plates"] is None and line["provider"] == "local" for line in lines)


def test_without_json_a_table_and_a_total(tmp_path):
    # Given a text file named x.jpg under a vehicle-licenses folder
    folder = tmp_path / "vehicle-licenses"
    folder.mkdir()
    (folder / "x.jpg").write_text("hello")
    # When it is recognised without --json, the output piped
    result = recognize(folder / "x.jpg", "--provider", "local")
    # Then a plain table: a header, its row with the code and message, and the total
    assert result.returncode == 0, result.stderr
    header, row, total = result.stdout.splitlines()
    assert header.split() == ["file", "kind", "provider", "status", "ms", "result"]
    assert row.split()[1:4] == ["vehicle_license", "local", "FAILED"]
    assert "IMAGE_UNSUPPORTED: object is not an image" in row
    assert total == "1 file: 0 SUCCEEDED, 1 FAILED"


def test_a_missing_path_is_bad_usage_in_one_line(tmp_path):
    # Given a path that does not exist, after one that does
    missing = tmp_path / "nowhere.jpg"
    # When it is recognised
    result = recognize(COACH, missing, "--json")
    # Then exit 2 with one line naming it, no traceback, and nothing recognised
    assert_one_line_error(result, 2, str(missing))
    assert result.stdout == ""


def test_a_folder_without_images_is_bad_usage_in_one_line(tmp_path):
    # Given a folder holding no image
    (tmp_path / "readme.txt").write_text("no images here")
    # When it is recognised
    result = recognize(tmp_path, "--kind", "plate")
    # Then exit 2 with one line naming the folder
    assert_one_line_error(result, 2, str(tmp_path), "no images")


def test_a_file_of_no_known_kind_is_bad_usage_in_one_line(tmp_path):
    # Given an image outside any plates/ or vehicle-licenses/ folder
    image = tmp_path / "car.jpg"
    shutil.copy(COACH, image)
    # When it is recognised without --kind
    result = recognize(image, "--provider", "local")
    # Then exit 2 with one line saying to pass --kind
    assert_one_line_error(result, 2, str(image), "--kind")


def test_tianapi_answers_through_the_fake_upstream_and_bills_once(fake_upstream):
    # Given the fake tianapi with its key, answering the coach plate for the bytes the image guard sends
    sent = prepare_for_upstream(COACH.read_bytes(), limit_bytes=3 * 1024 * 1024).data
    fake_upstream.set_answer(sent, {"color": "yellow", "number": "沪A0762学"})
    env = {"TIANAPI_KEY": TIANAPI_TEST_KEY, "TIANAPI_URL": fake_upstream.tianapi_url}
    # When the sample photo is recognised with --provider tianapi, its kind from the plates/ folder
    lines = json_lines(recognize(COACH, "--provider", "tianapi", "--json", env=env))
    # Then tianapi's answer, normalised, and exactly one billed call
    assert [(line["provider"], line["status"]) for line in lines] == [("tianapi", "SUCCEEDED")]
    assert [plate["number"] for plate in lines[0]["plates"]] == ["沪A0762学"]
    assert fake_upstream.billed() == 1


def test_the_provider_defaults_to_the_upstream_whose_key_is_set(fake_upstream):
    # Given TIANAPI_KEY set (pointing at the fake tianapi) and no --provider
    env = {"TIANAPI_KEY": TIANAPI_TEST_KEY, "TIANAPI_URL": fake_upstream.tianapi_url}
    # When a sample photo is recognised
    lines = json_lines(recognize(BLUE, "--json", env=env))
    # Then tianapi answered it, as the local stack would have chosen, and it was billed once
    assert [(line["provider"], line["status"]) for line in lines] == [("tianapi", "SUCCEEDED")]
    assert fake_upstream.billed("tianapi") == 1


def test_a_chain_falls_back_like_the_pipeline_and_says_so(fake_upstream):
    # Given the fake tianapi out of quota (code 150) and the chain tianapi,local
    fake_upstream.script("tianapi", [Reply(code=150)])
    env = {"TIANAPI_KEY": TIANAPI_TEST_KEY, "TIANAPI_URL": fake_upstream.tianapi_url}
    # When the coach photo is recognised
    lines = json_lines(recognize(COACH, "--provider", "tianapi,local", "--json", env=env))
    # Then the offline engine answered, the line records the fallback as a record would, and nothing was billed
    line = lines[0]
    assert (line["provider"], line["status"]) == ("local", "SUCCEEDED")
    assert line["fallback"] == [{"provider": "tianapi", "code": "150"}]
    assert [plate["number"] for plate in line["plates"]] == ["沪A0762学"]
    assert fake_upstream.billed() == 0

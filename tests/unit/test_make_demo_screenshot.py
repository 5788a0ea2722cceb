"""`make demo` leaves a fresh clone clean: its console picture goes to a path git ignores.

docs/console.png (the picture README shows) is tracked and only refreshed on purpose,
with `make demo SCREENSHOT=docs/console.png`.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (shutil.which("make") and shutil.which("git") and (ROOT / ".git").exists()),
    reason="needs make, git and the repository's checkout",
)


def demo_screenshot_path(*make_args: str) -> str:
    """The --screenshot argument `make demo` would pass, read from its dry run."""
    dry_run = subprocess.run(  # noqa: S603 - our own arguments
        ["make", "--no-print-directory", "-n", "demo", *make_args],  # noqa: S607 - make from PATH
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in dry_run.splitlines() if "vehicle-ocr demo" in line)
    words = shlex.split(line)
    return words[words.index("--screenshot") + 1]


def git_ignores(path: str) -> bool:
    check = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)  # noqa: S603, S607
    return check.returncode == 0


def test_make_demo_pictures_the_console_where_git_does_not_look():
    # Given the repository's Makefile, when `make demo` runs as a user types it
    path = demo_screenshot_path()

    # Then its picture goes to an ignored path, not over the tracked docs/console.png
    assert path != "docs/console.png"
    assert git_ignores(path), f"{path} is not ignored: make demo would leave the clone dirty"


def test_the_readme_picture_is_refreshed_only_when_asked_for():
    # Given a maintainer refreshing README's picture on purpose
    path = demo_screenshot_path("SCREENSHOT=docs/console.png")

    # Then the demo writes the tracked picture, which git does not ignore
    assert path == "docs/console.png"
    assert not git_ignores(path)
    assert (ROOT / path).is_file()

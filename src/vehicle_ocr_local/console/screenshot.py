"""A picture of the console's main page (`make demo` writes build/console.png), taken by headless Chromium.

Debian's ``chromium`` takes it from the command line (``--screenshot``): no driver, nothing downloaded.
Where chromium is not installed there is no picture, and the caller says so.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser")
INSTALL_HINT = "apt-get install -y chromium (and a CJK font such as fonts-wqy-microhei for the plate numbers)"


def chromium() -> str | None:
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def screenshot(url: str, path: Path, *, width: int = 1280, height: int = 1500, timeout_s: float = 120) -> bool:
    """Write ``url`` as rendered to ``path`` (PNG); False when chromium is not installed."""
    binary = chromium()
    if binary is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vehicle-ocr-chromium-") as profile:
        subprocess.run(  # noqa: S603 - the system's chromium, our own arguments
            [
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                # Let the page fetch its records and photos before the picture is taken.
                "--virtual-time-budget=15000",
                f"--screenshot={path.resolve()}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=timeout_s,
        )
    return path.is_file()

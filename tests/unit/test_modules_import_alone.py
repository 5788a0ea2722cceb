"""Any module of the layer package imports on its own, as the first of the package a program imports.

A handler, a script or a newcomer's REPL may start with any of them (`from vehicle_ocr.settings
import Settings`); an import cycle shows only when the cycle's other end was not imported first.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

from tests.conftest import ROOT

LAYER = ROOT / "layers" / "common"

# One interpreter: each module is imported with none of the package loaded (the third-party
# libraries stay loaded, which does not change the package's own import order).
IMPORT_EACH_ALONE = """
import importlib, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "vehicle_ocr" or m.startswith("vehicle_ocr.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""


def test_every_layer_module_imports_first():
    # Given every module of the layer package
    modules = sorted(info.name for info in pkgutil.walk_packages([str(LAYER / "vehicle_ocr")], prefix="vehicle_ocr."))
    assert "vehicle_ocr.settings" in modules

    # When each is imported with nothing of the package imported before it
    result = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", IMPORT_EACH_ALONE, json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=LAYER,
    )

    # Then each imports
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == {}

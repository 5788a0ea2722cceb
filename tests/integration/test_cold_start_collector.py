"""The handlers pause Python's cyclic collector for their cold start only (bench: cold start).

What a cold start makes lives as long as the process, so the collector is off while it runs and
what it made is frozen afterwards. After it, the collector must run again, in Lambda and in any
process that loads a handler and goes on (the local stack, the tests).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, load_function_module
from vehicle_ocr.errors import ConfigurationError

_FRESH_PROCESS = """
import gc, json, sys
import app
print(json.dumps({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count(), "handler": callable(app.lambda_handler)}))
"""


@pytest.mark.parametrize("function", ["recognize", "query"])
def test_a_fresh_process_collects_again_after_the_cold_start(function, recognize_env):
    # Given a fresh interpreter with the function's environment, as Lambda starts one
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), str(ROOT / "layers" / "common")]),
    }

    # When it imports the handler (the cold start)
    started = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", _FRESH_PROCESS], capture_output=True, text=True, timeout=120, env=environment, cwd=ROOT
    )

    # Then the handler is ready, the collector is on again, and what the cold start made is frozen
    assert started.returncode == 0, started.stderr[-2000:]
    state = json.loads(started.stdout.splitlines()[-1])
    assert state["handler"] and state["enabled"]
    assert state["frozen"] > 10_000  # modules, clients and API models: left out of later collections


def test_a_failed_cold_start_leaves_the_loading_process_collecting(recognize_env, monkeypatch):
    # Given a process that loads the function and goes on (the local stack, the tests), and a setting missing
    monkeypatch.delenv("RESULTS_TABLE")

    # When the function's cold start fails
    with pytest.raises(ConfigurationError, match="RESULTS_TABLE"):
        load_function_module("recognize", "recognize_app_without_table")

    # Then this process's collector runs as before, over every object
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_loaded_function_leaves_the_loading_process_collecting(recognize_env):
    # Given a process that loads the function and goes on
    # When the function's cold start succeeds
    app = load_function_module("recognize", "recognize_app_collector")

    # Then the handler is ready and this process's collector still runs over every object
    assert callable(app.lambda_handler)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0

"""Cold start: importing the recognize handler in a fresh interpreter, against `import boto3`.

Both run on what `sam build` produces (python3.12, the Lambda runtime, with the built layer
and function folders as the only packages), with the environment Lambda gives the function
(LAMBDA_TASK_ROOT and friends: the X-Ray SDK, for one, behaves differently inside Lambda)
and the function's variables from template.yaml. Each child times only its import; the
two kinds of child alternate. Also: the layer's zipped size and its largest parts, a
`python -X importtime` profile of the handler's import, the same import without the layer's
bytecode, and the cold start to a first result (import, then one upload handled against moto
and the local upstream, then a second one, warm).

Without python3.12 (no pyenv) the unbuilt sources run with this interpreter instead, and
the report says so.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

from bench.common import (
    RESULTS,
    ROOT,
    Figure,
    SampleImage,
    Section,
    distinct_copy,
    emulated_stack,
    median,
    sample_images,
    upload,
)
from vehicle_ocr_local.template import SSM_KEY_PARAMETERS, load_template, parameter_defaults

TARGET = 1.3
RUNS = 15
# No site-packages at all (-S): a module missing from the built layer must fail here, not be found in the
# interpreter's own. No bytecode written (-B, as on Lambda's read-only file system), no PYTHON* variables (-E).
CHILD_FLAGS = ("-S", "-B", "-E")
BUILD_DIR = RESULTS / "sam-build"

_CHILD = """
import sys, time
sys.path[:0] = {paths!r}
start = time.perf_counter()
if sys.argv[1] == "boto3":
    import boto3
else:
    import app
print(f"{{(time.perf_counter() - start) * 1000:.2f}}")
"""


def _build() -> tuple[str, list[str], str]:
    """sam build into bench/results; returns (interpreter, sys.path entries, description)."""
    script = ROOT / "scripts" / "sam-build.sh"
    found = subprocess.run([script, "--python"], check=False, capture_output=True, text=True)  # noqa: S603
    if found.returncode == 0:
        subprocess.run(  # noqa: S603
            [ROOT / "scripts" / "sam-build.sh", str(BUILD_DIR)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        paths = [str(BUILD_DIR / "RecognizeFunction"), str(BUILD_DIR / "CommonLayer" / "python")]
        return found.stdout.strip(), paths, "the `sam build` output with python3.12"
    paths = [str(ROOT / "functions" / "recognize"), str(ROOT / "layers" / "common")]
    return sys.executable, paths, f"the unbuilt sources with Python {sys.version.split()[0]} (no python3.12 found)"


def _lambda_environment(task_root: str) -> dict[str, str]:
    """What the function sees in Lambda: the runtime's variables and its own from template.yaml."""
    template = load_template()
    variables = template["Globals"]["Function"]["Environment"]["Variables"].copy()
    variables.update(template["Resources"]["RecognizeFunction"]["Properties"]["Environment"]["Variables"])
    defaults = parameter_defaults(template)

    def value_of(name: str, value: object) -> str:
        if isinstance(value, dict) and value.get("Ref") in defaults:
            return defaults[value["Ref"]]
        # Resource names (set below): nothing is contacted during the import.
        return str(value) if isinstance(value, str | int | float) else f"placeholder-{name.lower()}"

    function_env = {name: value_of(name, value) for name, value in variables.items()}
    # The stack's own resources have no default to read: names as a deploy would give them.
    function_env.update(
        RESULTS_TABLE="vehicle-ocr-results",
        IDEMPOTENCY_TABLE="vehicle-ocr-idempotency",
        EVENT_BUS_NAME="vehicle-ocr-events",
        FAILURE_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/vehicle-ocr-failures",
    )
    runtime = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 - as in Lambda
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": "vehicle-ocr-RecognizeFunction",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/vehicle-ocr-RecognizeFunction",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_HANDLER": "app.lambda_handler",
        "PYTHONDONTWRITEBYTECODE": "1",  # Lambda's code is read-only: no bytecode written at run time
    }
    return {**function_env, **runtime}


def _time_import(python: str, code: str, what: str, env: dict[str, str]) -> float:
    out = subprocess.run(  # noqa: S603
        [python, *CHILD_FLAGS, "-c", code, what], check=False, capture_output=True, text=True, env=env, cwd="/"
    )
    if out.returncode != 0:
        raise RuntimeError(f"importing {what} failed:\n{out.stderr[-3000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def _without_bytecode(python: str, paths: list[str], env: dict[str, str], runs: int = 5) -> list[float]:
    """The handler's import from a copy of the build with every __pycache__ removed."""
    copy = RESULTS / "sam-build-without-bytecode"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(BUILD_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    copied_paths = [path.replace(str(BUILD_DIR), str(copy)) for path in paths]
    code = _CHILD.format(paths=copied_paths)
    try:
        return [_time_import(python, code, "app", {**env, "LAMBDA_TASK_ROOT": copied_paths[0]}) for _ in range(runs)]
    finally:
        shutil.rmtree(copy, ignore_errors=True)


_FIRST_RESULT_CHILD = """
import json, sys, time, uuid
sys.path[:0] = {paths!r}
events = json.loads(sys.stdin.read())
start = time.perf_counter()
import app
imported = time.perf_counter()

class Context:  # what the runtime passes: the fields Powertools reads
    function_name = "vehicle-ocr-RecognizeFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:vehicle-ocr-RecognizeFunction"
    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())
    def get_remaining_time_in_millis(self):
        return 60_000

times, statuses = [], []
for event in events:
    begin = time.perf_counter()
    result = app.lambda_handler(event, Context())
    times.append((time.perf_counter() - begin) * 1000)
    statuses += [entry["status"] for entry in result["processed"]]
print("BENCH_RESULT " + json.dumps({{
    "import_ms": (imported - start) * 1000, "first_ms": times[0], "warm_ms": times[1], "statuses": statuses,
}}))
"""


def _first_result(python: str, paths: list[str], env: dict[str, str], runs: int = 3) -> list[dict[str, float]]:
    """Fresh interpreters that import the handler, then handle one upload (cold) and another (warm).

    Against moto's server and the local upstream, as the overhead benchmark; tracing on, as in Lambda
    (segments go to a local UDP port nobody reads).
    """
    plate = next(image for image in sample_images() if image.kind == "plate")
    results = []
    with emulated_stack() as bench:
        aws = bench.aws
        child_env = {
            **env,
            **bench.environment,
            "AWS_ENDPOINT_URL": aws.endpoint,
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "_X_AMZN_TRACE_ID": "Root=1-6740a2b0-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1",
        }
        for name in (*SSM_KEY_PARAMETERS, "POWERTOOLS_TRACE_DISABLED"):
            child_env.pop(name, None)
        s3 = aws.client("s3")
        for run in range(runs):
            events = [
                upload(s3, SampleImage(f"plates/cold/{run}-{n}.jpg", distinct_copy(plate.body, f"{run}-{n}")), 1 + n)
                for n in range(2)
            ]
            out = subprocess.run(  # noqa: S603
                [python, *CHILD_FLAGS, "-c", _FIRST_RESULT_CHILD.format(paths=paths)],
                input=json.dumps(events),
                check=False,
                capture_output=True,
                text=True,
                env=child_env,
                cwd="/",
            )
            lines = [line for line in out.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
            if out.returncode != 0 or not lines:
                # The function's own log lines (stdout) say why an object was not recorded.
                raise RuntimeError(f"the cold invocation failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
            result = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
            if result["statuses"] != ["SUCCEEDED", "SUCCEEDED"]:
                raise RuntimeError(f"the cold invocation did not succeed: {result['statuses']}")
            results.append(result)
    return results


def _importtime(python: str, code: str, env: dict[str, str]) -> list[tuple[str, float]]:
    """Where the handler's import goes (python -X importtime), slowest first, in ms.

    The handler's direct imports, cumulative (a package imported first by one of them counts
    there), and the handler module's own body: settings, clients, the pipeline.
    """
    out = subprocess.run(  # noqa: S603
        [python, *CHILD_FLAGS, "-X", "importtime", "-c", code, "app"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    parts: dict[str, float] = defaultdict(float)
    for line in out.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)", line)
        if not match:
            continue
        self_us, cumulative_us, indent, name = match.groups()
        if len(indent) == 1 and name == "app":
            parts["app module body (settings, clients, pipeline)"] += int(self_us) / 1000
        elif len(indent) == 3:  # imported by app itself
            parts[name] += int(cumulative_us) / 1000
    return sorted(parts.items(), key=lambda item: -item[1])


def _layer_zip(layer: Path) -> tuple[int, int, list[tuple[str, int]]]:
    """(zipped bytes, unzipped bytes, [(top-level part, unzipped bytes)] largest first) of the layer folder."""
    buffer = io.BytesIO()
    parts: dict[str, int] = defaultdict(int)
    total = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in layer.rglob("*") if p.is_file()):
            relative = path.relative_to(layer)
            archive.write(path, relative.as_posix())
            size = path.stat().st_size
            total += size
            top = relative.parts[1] if len(relative.parts) > 2 else relative.parts[-1]  # python/<part>/...
            parts[re.sub(r"-[\d.]+(\.dist-info)$", r"\1", top)] += size
    return buffer.tell(), total, sorted(parts.items(), key=lambda item: -item[1])


def run() -> Section:
    section = Section("Cold start: importing the handler, against importing boto3")
    python, paths, built = _build()
    code = _CHILD.format(paths=paths)
    env = _lambda_environment(paths[0])
    _time_import(python, code, "app", env)  # a first import warms the OS file cache for both
    handler_ms, boto3_ms = [], []
    for _ in range(RUNS):
        boto3_ms.append(_time_import(python, code, "boto3", env))
        handler_ms.append(_time_import(python, code, "app", env))
    ratio = median(handler_ms) / median(boto3_ms)
    section.figures.append(
        Figure(
            "cold_start_import_ratio",
            ratio,
            "<=",
            TARGET,
            detail=f"import app {median(handler_ms):.0f} ms vs import boto3 {median(boto3_ms):.0f} ms",
        )
    )
    without_bytecode_ms = _without_bytecode(python, paths, env) if python != sys.executable else []
    first = _first_result(python, paths, env)
    profile = _importtime(python, code, env)
    section.data = {
        "built": built,
        "runs": RUNS,
        "handler_import_ms": [round(ms, 1) for ms in handler_ms],
        "boto3_import_ms": [round(ms, 1) for ms in boto3_ms],
        "importtime_top_level_ms": {name: round(ms, 1) for name, ms in profile[:12]},
    }
    section.notes = [
        f"Measured on {built}; median of {RUNS} alternating fresh interpreters, each timing its import only.",
        f"import app (the handler, which also builds its clients and pipeline): {median(handler_ms):.0f} ms; "
        f"import boto3: {median(boto3_ms):.0f} ms.",
        "Where the handler's import goes (`python -X importtime`, cumulative, one run): "
        + ", ".join(f"{name} {ms:.0f} ms" for name, ms in profile[:8])
        + ".",
    ]
    cold = {name: median([run[name] for run in first]) for name in ("import_ms", "first_ms", "warm_ms")}
    section.data["first_result_ms"] = first
    section.notes.append(
        f"Cold start to first result (fresh interpreter, one plate photo, moto and the local upstream, tracing on; "
        f"median of {len(first)}): import {cold['import_ms']:.0f} ms + first invocation {cold['first_ms']:.0f} ms "
        f"= {cold['import_ms'] + cold['first_ms']:.0f} ms; the next invocation takes {cold['warm_ms']:.0f} ms. "
        "The first invocation's extra time is first use: Pillow's import, connections, credentials."
    )
    if without_bytecode_ms:
        section.data["handler_import_without_bytecode_ms"] = [round(ms, 1) for ms in without_bytecode_ms]
        section.notes.append(
            f"The same layer without its precompiled bytecode (as `BuildMethod: python3.12` built it before "
            f"layers/common/Makefile): import app {median(without_bytecode_ms):.0f} ms, median of "
            f"{len(without_bytecode_ms)}. Lambda's file system is read-only, so without bytecode in the layer "
            "every cold start compiles every module again."
        )
    layer = BUILD_DIR / "CommonLayer"
    if python != sys.executable and layer.is_dir():
        zipped, unzipped, parts = _layer_zip(layer)
        section.figures.append(
            Figure(
                "layer_unzipped_mib",
                unzipped / 2**20,
                "<=",
                250.0,
                unit=" MiB",
                digits=1,
                detail=f"{zipped / 2**20:.1f} MiB zipped; Lambda allows 250 MiB unzipped for a function and its layers",
            )
        )
        section.data["layer"] = {
            "zipped_bytes": zipped,
            "unzipped_bytes": unzipped,
            "largest_parts_bytes": dict(parts[:10]),
        }
        section.notes.append(
            f"Layer: {zipped / 2**20:.1f} MiB zipped, {unzipped / 2**20:.1f} MiB unzipped (limit 250 MiB with the "
            "function). Largest parts: " + ", ".join(f"{name} {size / 2**20:.1f} MiB" for name, size in parts[:6]) + "."
        )
    return section

"""`make bench`: every benchmark, one line per figure, a Markdown report (bench/REPORT.md) and raw JSON.

.venv/bin/python -m bench [--only overhead,paid_calls,...] [--no-report] [--strict]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime

from bench.common import REPORT, RESULTS, ROOT, Section

SECTIONS = ("overhead", "throughput", "local_burst", "cold_start", "paid_calls", "engine")


# Concurrent deliveries share Powertools' process-wide metric store: one invocation's flush can leave
# another's empty, which Powertools warns about. Lambda runs one invocation per process.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def _run(name: str) -> Section:
    module = importlib.import_module(f"bench.{name}")
    start = time.perf_counter()
    # Whatever the functions print (metrics, logs) would bury the figures: keep it out of the terminal.
    with contextlib.redirect_stdout(io.StringIO()):
        section = module.run()
    section.seconds = time.perf_counter() - start
    return section


def _machine() -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH, as make has it
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607 - as above
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"commit {commit or 'unknown'}{' with uncommitted changes' if dirty else ''}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def write_report(sections: list[Section], total_s: float) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); numbers from one run on the machine below. Ratios compare",
        "against a baseline measured in the same run, so they travel between machines better than times do.",
        "",
        f"Machine: {_machine()}; {total_s / 60:.1f} min in all.",
        "",
        "| figure | value | target | |",
        "|---|---:|---|---|",
    ]
    for section in sections:
        for figure in section.figures:
            lines.append(
                f"| {figure.name} | {figure.formatted(figure.value)} | {figure.op} {figure.formatted(figure.target)} "
                f"| {'ok' if figure.ok else '**MISS**'} |"
            )
    for section in sections:
        lines += ["", f"## {section.title}", "", f"({section.seconds:.0f} s)", ""]
        lines += [f"- {figure.line()}: {figure.detail}" for figure in section.figures]
        for note in section.notes:
            # A note is a paragraph; consecutive table rows stay together.
            if not (note.startswith("|") and lines[-1].startswith("|")):
                lines.append("")
            lines.append(note)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vehicle-ocr benchmarks")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite bench/REPORT.md")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a figure misses its target")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(SECTIONS)
    unknown = set(names) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    start = time.perf_counter()
    sections = []
    for name in names:
        print(f"# {name} ...", flush=True)
        section = _run(name)
        sections.append(section)
        for figure in section.figures:
            print(figure.line(), flush=True)
    total_s = time.perf_counter() - start

    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = {
        section.title: {
            "figures": {
                f.name: {"value": f.value, "op": f.op, "target": f.target, "ok": f.ok} for f in section.figures
            },
            "data": section.data,
            "seconds": round(section.seconds, 1),
        }
        for section in sections
    }
    (RESULTS / "latest.json").write_text(json.dumps(raw, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if not args.no_report and names == list(SECTIONS):
        REPORT.write_text(write_report(sections, total_s), encoding="utf-8")
        print(f"report: {REPORT.relative_to(ROOT)}; raw figures: {(RESULTS / 'latest.json').relative_to(ROOT)}")
    missed = [f.name for s in sections for f in s.figures if not f.ok]
    print(f"{total_s / 60:.1f} min; " + (f"MISSED: {', '.join(missed)}" if missed else "every target met"))
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())

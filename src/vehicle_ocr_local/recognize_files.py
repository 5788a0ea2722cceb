"""`vehicle-ocr recognize PATH...`: image files (or every image in a folder) recognised on this machine.

No stack, no AWS emulator: each file goes through the Lambda's own layer, in the pipeline's
order: the size check and the image guard (``check_size``, ``check_image``), the bytes the
upstream is sent (``prepare_for_upstream``), the provider chain (the registry's recognisers,
paced, retried and falling back as the pipeline does: ``vehicle_ocr.recognition``), then the
kind's normaliser. What is printed per file holds ``plates`` / ``vehicle_license`` and ``error``
exactly as a record would.

The kind comes from ``--kind``, or from a folder the file lies under whose name is a kind's
key prefix (``plates/``, ``vehicle-licenses/``; ``PLATE_PREFIX`` and the like move them as
they move the stack's). The providers come from ``--provider``, or are chosen as the local
stack chooses them (``stack.choose_chain``: the upstream when its key is set, else ``local``).

Files are recognised one at a time, in input order. Nothing is stored, so nothing paid for is
reused: running a paid provider twice on a file pays twice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vehicle_ocr_local.cli_errors import UsageError

if TYPE_CHECKING:
    from vehicle_ocr.recognition import Recognition
    from vehicle_ocr.settings import Settings

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
# Settings insists on where records and messages go; nothing is written here, so these name nothing.
UNUSED_DESTINATIONS = {
    "RESULTS_TABLE": "unused-by-vehicle-ocr-recognize",
    "FAILURE_QUEUE_URL": "unused-by-vehicle-ocr-recognize",
    "EVENT_BUS_NAME": "unused-by-vehicle-ocr-recognize",
}
PROGRESS_PAST = 3  # files: a progress bar (on a terminal, without --json) past this many
TABLE_COLUMNS = ("file", "kind", "provider", "status", "ms", "result")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``recognize`` to the ``vehicle-ocr`` subcommands (``argparse``'s subparsers object)."""
    from vehicle_ocr.kinds import all_kinds

    recognize = commands.add_parser(
        "recognize",
        help="recognise image files or folders on this machine, without a stack",
        description=(
            "Recognise image files (or every image in a folder, recursively) with the Lambda's provider code, image "
            "guard and normalisation, without any AWS emulator. Prints a table, or with --json one JSON object per "
            "file in input order. Exit 0 when every file was processed (FAILED ones included), 2 on bad usage."
        ),
    )
    recognize.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    recognize.add_argument(
        "--kind",
        choices=[kind.name for kind in all_kinds()],
        help="what the images show (default: from a plates/ or vehicle-licenses/ folder the file lies under)",
    )
    recognize.add_argument(
        "--provider",
        help=(
            "the provider, e.g. local or tianapi, or a chain such as tianapi,local (default: as the local stack "
            "chooses: PLATE_PROVIDERS / LICENSE_PROVIDERS, else the upstream when its key is set, else local)"
        ),
    )
    recognize.add_argument("--json", action="store_true", help="one JSON object per file, one per line, in input order")
    recognize.set_defaults(command="recognize")
    return recognize


def run_recognize(args: argparse.Namespace) -> int:
    """Recognise every file named by ``args.paths``; 0 once all are processed. Raises UsageError (status 2)."""
    from vehicle_ocr.errors import ConfigurationError
    from vehicle_ocr.providers import build_recognizers

    files = image_files(args.paths)
    try:
        provisional = _settings(os.environ, {})  # only its prefixes: every chain "local" needs no key
        kinds = [args.kind or kind_of(path, provisional.prefixes) for path in files]
        chains = _chains(os.environ, set(kinds), args.provider)
        settings = _settings(os.environ, chains)
        # The Lambda's cold start: a missing key or engine stops here.
        recognizers = build_recognizers(settings, kinds=chains)
    except ConfigurationError as error:
        raise UsageError(str(error)) from None
    from vehicle_ocr.recognition import Recognition

    recognition = Recognition(settings, recognizers)  # the pipeline's pacing, retries and fallback
    results = (recognize_file(path, kind, settings, recognition) for path, kind in zip(files, kinds, strict=True))
    if args.json:
        for line in results:
            print(json.dumps(line, ensure_ascii=False, default=str), flush=True)
        return 0
    _print_table(list(_with_progress(results, len(files))))
    return 0


# ------------------------------------------------------------------------------------------------ files and kinds
def image_files(paths: Sequence[Path]) -> list[Path]:
    """Each file as given; each folder's images (by extension), recursively, sorted. UsageError otherwise."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            images = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not images:
                raise UsageError(f"no images in the folder {path} (looked for {' '.join(IMAGE_SUFFIXES)})")
            found.extend(images)
        elif path.exists():
            found.append(path)  # any file: the image guard tells what it holds, as in the pipeline
        elif any(character in str(path) for character in "*?["):
            raise UsageError(f"no file matches {str(path)!r} (the shell passes a pattern that matches nothing as is)")
        else:
            raise UsageError(f"no such file or folder: {path}")
    return found


def kind_of(path: Path, prefixes: Mapping[str, str]) -> str:
    """The kind whose key prefix names a folder the file lies under; the innermost one wins."""
    folders = path.absolute().parent.as_posix().rstrip("/") + "/"
    found = [
        (at + len(prefix), kind)
        for kind, prefix in prefixes.items()
        if (at := folders.rfind("/" + prefix.lstrip("/"))) >= 0
    ]
    if not found:
        named = " or ".join(f"{prefix!r}" for prefix in prefixes.values())
        raise UsageError(f"cannot tell what {path} shows: pass --kind, or put it under a {named} folder")
    return max(found)[1]


# ------------------------------------------------------------------------------------------------ providers
def _settings(env: Mapping[str, str], chains: Mapping[str, tuple[str, ...]]) -> Settings:
    """The Lambda's settings from the environment, each kind's chain as given ("local" for the others)."""
    import vehicle_ocr.providers  # noqa: F401 - registers the providers; imported before settings, as the Lambda does
    from vehicle_ocr.kinds import all_kinds
    from vehicle_ocr.settings import Settings

    forced = {f"{kind.settings_name}_PROVIDERS": ",".join(chains.get(kind.name, ("local",))) for kind in all_kinds()}
    return Settings.from_env({**env, **UNUSED_DESTINATIONS, **forced})


def _chains(env: Mapping[str, str], kinds: set[str], provider: str | None) -> dict[str, tuple[str, ...]]:
    """Each kind's providers, in the order they are tried: --provider, else as the local stack chooses."""
    from vehicle_ocr.errors import ConfigurationError
    from vehicle_ocr.kinds import kind_spec
    from vehicle_ocr.providers.registry import provider_spec

    chains: dict[str, tuple[str, ...]] = {}
    for kind in sorted(kinds):
        if provider is None:
            from vehicle_ocr_local.stack import choose_chain  # the stack's own rule (it brings moto: only here)

            chosen = choose_chain(env, kind_spec(kind))
        else:
            chosen = provider
        chains[kind] = tuple(name.strip().lower() for name in chosen.split(",") if name.strip())
        if not chains[kind]:
            raise UsageError("--provider names no provider")
        for name in chains[kind]:
            try:
                provider_spec(kind, name)
            except ConfigurationError as error:
                raise UsageError(f"--provider: {error}" if provider else str(error)) from None
    return chains


# ------------------------------------------------------------------------------------------------ one file
def recognize_file(path: Path, kind: str, settings: Settings, recognition: Recognition) -> dict[str, Any]:
    """One file, as the pipeline would record it.

    {"file", "kind", "provider", "status", each kind's record field ("plates", "vehicle_license"), "error",
    "ms"}, plus "truncated" and "fallback" when the record would have them.
    """
    from vehicle_ocr.errors import RecognitionError
    from vehicle_ocr.kinds import all_kinds, kind_spec
    from vehicle_ocr.recognition import CallLog

    started = time.monotonic()
    log = CallLog(provider=recognition.recognizers[kind][0].name)
    line: dict[str, Any] = {"file": str(path), "kind": kind, "provider": log.provider, "status": "SUCCEEDED"}
    line.update(dict.fromkeys(spec.record_field for spec in all_kinds()))
    line["error"] = None
    truncated: dict[str, int] | None = None
    try:
        image = _prepared_image(path, settings)
        paid = recognition.answer(kind, image, log)
        result, truncated = kind_spec(kind).normalize(paid.answer)
        line[kind_spec(kind).record_field] = result
    except RecognitionError as error:  # the image guard, or the chain's last word
        line.update(status="FAILED", error=error.as_error())
    line["provider"] = log.provider  # the one that answered, or the last one asked
    line["ms"] = round((time.monotonic() - started) * 1000)
    if truncated:  # only when the record would have them: after the fields every line has
        line["truncated"] = truncated
    if log.fallback:
        line["fallback"] = log.fallback
    return line


def _prepared_image(path: Path, settings: Settings) -> bytes:
    """The bytes the upstream gets, after the pipeline's checks (PipelineError: the code that says why not)."""
    from vehicle_ocr.errors import PipelineError
    from vehicle_ocr.images import check_image, check_size, prepare_for_upstream

    try:
        check_size(path.stat().st_size, settings.max_image_bytes)
        with path.open("rb") as file:
            image = file.read(settings.max_image_bytes + 1)  # never more, as the pipeline reads an object
    except OSError as error:  # gone since it was listed, or unreadable
        raise PipelineError("pipeline", "OBJECT_NOT_FOUND", f"cannot read the file ({error.strerror})") from None
    check_image(image, settings.max_image_bytes)
    return prepare_for_upstream(image, limit_bytes=settings.upstream_max_image_bytes).data


# ------------------------------------------------------------------------------------------------ the table
def _with_progress(lines: Any, total: int) -> Any:
    """The lines as they come, with a progress bar on a terminal's stderr past a few files."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if total <= PROGRESS_PAST or not console.is_terminal:
        yield from lines
        return
    columns = (TextColumn("recognising"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("recognising", total=total)
        for line in lines:
            yield line
            progress.advance(task)


def _row(line: dict[str, Any]) -> tuple[str, ...]:
    from vehicle_ocr_local.cli import summary  # never an owner or an address

    return (line["file"], line["kind"], line["provider"], line["status"], str(line["ms"]), summary(line))


def _print_table(lines: list[dict[str, Any]]) -> None:
    from rich.cells import cell_len  # a Chinese character takes two columns
    from rich.console import Console

    succeeded = sum(line["status"] == "SUCCEEDED" for line in lines)
    total = f"{len(lines)} file{'' if len(lines) == 1 else 's'}: {succeeded} SUCCEEDED, {len(lines) - succeeded} FAILED"
    if sys.stdout.isatty():
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="vehicle-ocr recognize")
        for column in TABLE_COLUMNS:
            table.add_column(column, justify="right" if column == "ms" else "left")
        for row in map(_row, lines):
            colour = "green" if row[3] == "SUCCEEDED" else "red"
            table.add_row(*map(escape, row[:3]), f"[{colour}]{row[3]}[/{colour}]", row[4], escape(row[5]))
        Console().print(table)
        print(total)
        return
    rows = [TABLE_COLUMNS, *(tuple(" ".join(cell.split()) or "-" for cell in _row(line)) for line in lines)]
    widths = [max(cell_len(row[index]) for row in rows) for index in range(len(TABLE_COLUMNS) - 1)]
    for row in rows:
        padded = (cell + " " * (width - cell_len(cell)) for cell, width in zip(row[:-1], widths, strict=True))
        print("  ".join(padded), row[-1], sep="  ")
    print(total)

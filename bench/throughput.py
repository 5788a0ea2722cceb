"""Rate-limited throughput: a fleet at the template's defaults against each provider's limit, at three latencies.

RecognizeReservedConcurrency instances of the real RecognizeFunction (each its own process, as
Lambda runs them, with the real rate budget in the emulated IdempotencyTable) against a local
upstream that enforces the provider's limit over any 1-second window (tianapi answers code 130
beyond it, apizero HTTP 429) and answers after 0, 0.5 or 1.5 s. Limits, concurrency and the rest
of the function's environment are the template's defaults. For each provider and latency, new
photos are uploaded and their events handed to the instances as Lambda would; the upstream
records when each request arrived.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from typing import Any

from bench.common import (
    APIZERO_KEY,
    BUCKET,
    TIANAPI_KEY,
    Figure,
    SampleImage,
    Section,
    aws_environment,
    distinct_copy,
    patched_environ,
    recognize_environment,
    sample_images,
    upload,
)
from bench.fleet import Emulator, Fleet
from tests.fakes.upstream import APIZERO, SUCCESS_CODE, TIANAPI, FakeUpstream
from vehicle_ocr_local.template import create_resources

LATENCIES_S = (0.0, 0.5, 1.5)
TARGET_RATIO = 0.9
SECONDS_PER_RUN = 12  # at the limit: enough answers for a steady rate, little time


@dataclass(frozen=True)
class Provider:
    name: str
    kind: str  # the sample images' kind it recognises
    rate_parameter: str  # the template parameter holding its limit


PROVIDERS = (
    Provider(TIANAPI, "plate", "TianapiRequestsPerSecond"),
    Provider(APIZERO, "vehicle_license", "ApizeroRequestsPerSecond"),
)


@dataclass
class Run:
    provider: str
    latency_s: float
    limit: float
    images: int
    succeeded: int
    requests: int
    refusals: int
    achieved: float
    min_gap_s: float
    elapsed_s: float
    budget_requests: int
    budget_draws: int

    @property
    def ratio(self) -> float:
        return self.achieved / self.limit


def _images(provider: Provider, count: int, tag: str) -> list[SampleImage]:
    samples = [image for image in sample_images() if image.kind == provider.kind]
    folder = samples[0].key.split("/", 1)[0]
    return [
        SampleImage(f"{folder}/bench-{tag}/{n:03d}.jpg", distinct_copy(samples[n % len(samples)].body, f"{tag}-{n}"))
        for n in range(count)
    ]


def _run(fleet: Fleet, upstream: FakeUpstream, s3: Any, provider: Provider, limit: float, latency_s: float) -> Run:
    tag = f"{provider.name}-{latency_s:g}s"
    images = _images(provider, int(limit * SECONDS_PER_RUN), tag)
    events = [upload(s3, image, sequencer) for sequencer, image in enumerate(images, start=1)]
    upstream.rate_limit(provider.name, limit)
    upstream.latency(provider.name, latency_s)
    mark, before = len(upstream.calls), fleet.counters()
    start = time.monotonic()
    replies = fleet.handle(events)
    elapsed = time.monotonic() - start
    after = fleet.counters()
    calls = [call for call in upstream.calls[mark:] if call.provider == provider.name]
    answered = sorted(call.at for call in calls if call.outcome == str(SUCCESS_CODE[provider.name]))
    refused = [call for call in calls if call.outcome in ("130", "http_429")]
    succeeded = sum(1 for reply in replies for outcome in reply["outcomes"] if outcome.get("status") == "SUCCEEDED")
    if succeeded != len(images) or len(answered) < 2:
        # A run that stalls part-way would still show a fine rate between its first and last answers.
        others = [(o.get("status"), (o.get("error") or {}).get("code")) for r in replies for o in r["outcomes"]]
        errors = [reply["error"] for reply in replies if reply["error"]]
        raise RuntimeError(
            f"{tag}: {succeeded} of {len(images)} SUCCEEDED, {len(answered)} answers; "
            f"not succeeded: {[o for o in others if o[0] != 'SUCCEEDED']}, invocation errors: {errors}"
        )
    return Run(
        provider=provider.name,
        latency_s=latency_s,
        limit=limit,
        images=len(images),
        succeeded=succeeded,
        requests=len(calls),
        refusals=len(refused),
        achieved=(len(answered) - 1) / (answered[-1] - answered[0]),
        min_gap_s=min(b - a for a, b in itertools.pairwise(answered)),
        elapsed_s=elapsed,
        budget_requests=after.budget_requests - before.budget_requests,
        budget_draws=after.budget_draws - before.budget_draws,
    )


def run() -> Section:
    section = Section("Rate-limited throughput: a fleet at the template's defaults, each provider, three latencies")
    runs: list[Run] = []
    with (
        FakeUpstream(tianapi_key=TIANAPI_KEY, apizero_key=APIZERO_KEY) as upstream,
        Emulator() as aws,
        patched_environ(aws_environment(aws.endpoint), remove=("AWS_PROFILE", "AWS_SESSION_TOKEN")),
    ):
        resources = create_resources(aws.session(), bucket_name=BUCKET)
        instances = int(resources.parameters["RecognizeReservedConcurrency"])
        environment = {
            **os.environ,
            **recognize_environment(resources, upstream),  # the template's limits: no override
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
        s3 = aws.client("s3")
        with Fleet(instances, environment) as fleet:
            for provider in PROVIDERS:
                limit = float(resources.parameters[provider.rate_parameter])
                for latency_s in LATENCIES_S:
                    runs.append(_run(fleet, upstream, s3, provider, limit, latency_s))

    refusals = sum(r.refusals for r in runs)
    calls = sum(r.requests for r in runs)
    budget_per_call = sum(r.budget_requests for r in runs) / calls
    section.figures = [
        Figure(
            f"throughput_ratio_{r.provider}_{r.latency_s:g}s",
            r.ratio,
            ">=",
            TARGET_RATIO,
            detail=f"{r.achieved:.3f} answers/s against {r.limit:g}/s, upstream answering after {r.latency_s:g} s",
        )
        for r in runs
    ]
    section.figures += [
        Figure("rate_limit_refusals", refusals, "==", 0, digits=0, detail=f"of {calls} upstream requests in all runs"),
        Figure(
            "budget_requests_per_call",
            budget_per_call,
            "<=",
            1.5,
            detail="DynamoDB UpdateItems the rate budget sent per upstream request (its added AWS requests per image)",
        ),
    ]
    section.data = {"instances": instances, "runs": [vars(r) | {"ratio": round(r.ratio, 4)} for r in runs]}
    section.notes = [
        f"{instances} instances (RecognizeReservedConcurrency's default), each a process running the real handler "
        "and drawing from the rate budget in the emulated IdempotencyTable; the emulator in a process of its own; "
        "limits from the template's defaults. Rate: answers after the first, over the time since the first, as "
        "the upstream's clock saw them.",
        "| provider | latency | limit | answers/s | ÷ limit | refused | closest two | budget requests / call | run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r.provider} | {r.latency_s:g} s | {r.limit:g}/s | {r.achieved:.3f} | {r.ratio:.3f} | {r.refusals} "
            f"of {r.requests} | {r.min_gap_s * 1000:.0f} ms | {r.budget_requests / max(r.requests, 1):.2f} "
            f"| {r.elapsed_s:.1f} s |"
            for r in runs
        ),
        "A budget request is one conditional UpdateItem on the provider's item; more than one per call means an "
        "instance guessed the item's state wrong (one more request) or woke over 25 ms after its slot and drew "
        "another rather than go late (`vehicle_ocr.rate_budget.LATE_S`).",
    ]
    return section

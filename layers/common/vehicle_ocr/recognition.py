"""Asking a kind's chain of providers for an answer: pacing, retries, the possibly-billed allowance, fallback.

Shared by the pipeline (which adds the paid-answer store through ``answer_key``) and by
``vehicle-ocr recognize`` (files on disk, nothing stored), so both ask the providers the same way:

* each provider's calls are paced to its rate limit: across the fleet through the rate budget
  (``vehicle_ocr.rate_budget``) when the settings name its table, else within this process;
* a transient failure is retried with full-jitter exponential backoff, at most ``max_attempts``
  calls, and only while the invocation has time for another call plus recording the outcome;
* a call that got no answer after the request went out (it may have been billed) is tried
  again at most ``timeout_retries`` times over the whole upload, earlier invocations included;
* a provider that fails for reasons not the image's (quota, key, withdrawn, unusable answer,
  down past its retries) hands the image to the next of the chain; an image a provider could
  not read is never sent on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from vehicle_ocr.answers import PaidAnswer, PaidAnswers
from vehicle_ocr.codes import Action
from vehicle_ocr.errors import PipelineError, RecognitionError
from vehicle_ocr.pacing import Pacer
from vehicle_ocr.providers.base import PreparedCall, ProviderAnswer, Recognizer, prepared_call
from vehicle_ocr.providers.registry import all_providers
from vehicle_ocr.rate_budget import RateBudget
from vehicle_ocr.settings import Settings
from vehicle_ocr.shapes import FallbackStep, iso_seconds, utc_now
from vehicle_ocr.storage import AttemptHistory
from vehicle_ocr.usage import UsageTally

logger = Logger(child=True)

# Leave this much of the invocation for recording and publishing after the last upstream call.
RESERVE_S = 5.0
FALLBACK_ACTIONS = frozenset({Action.TOP_UP, Action.FIX_CONFIG, Action.CONTACT_PROVIDER, Action.WAIT})


@dataclass
class CallLog:
    """Upstream calls for one upload: what earlier invocations made, this one, and who was asked."""

    history: AttemptHistory = field(default_factory=AttemptHistory)
    calls: int = 0
    possibly_billed: int = 0
    provider: str | None = None  # the provider asked last (the one that answered, on success)
    fallback: list[FallbackStep] = field(default_factory=list)  # those that could not answer, in order
    usage: UsageTally = field(default_factory=UsageTally)  # this invocation's calls per provider (vehicle_ocr.usage)

    @property
    def total_calls(self) -> int:
        return self.history.calls + self.calls

    @property
    def total_possibly_billed(self) -> int:
        return self.history.possibly_billed + self.possibly_billed


class UnusableAnswerError(PipelineError):
    """The provider billed an answer that holds nothing we can use: FAILED, and never asked again."""

    def __init__(self, answer: ProviderAnswer):
        super().__init__(
            answer.provider,
            "UPSTREAM_BAD_RESPONSE",
            f"{answer.unusable}; the answer was kept and will not be paid for again",
        )
        self.answer = answer


def falls_back(error: RecognitionError) -> bool:
    """Whether the next provider of a chain may be asked after ``error``."""
    return error.action in FALLBACK_ACTIONS


class Recognition:
    def __init__(
        self,
        settings: Settings,
        recognizers: Mapping[str, Sequence[Recognizer]],
        *,
        answers: PaidAnswers | None = None,
        dynamodb_client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.recognizers = recognizers
        self._answers = answers
        self._sleep = sleep
        self._paid = frozenset(spec.name for spec in all_providers() if spec.paid)  # the offline engine bills nothing
        self.pacers = {
            recognizer.name: _pacer(settings, recognizer.name, rate, dynamodb_client)
            for chain in recognizers.values()
            for recognizer in chain
            if (rate := settings.requests_per_second(recognizer.name))
        }

    def answer(
        self,
        kind: str,
        image: bytes,
        log: CallLog,
        *,
        remaining_s: Callable[[], float] = lambda: float("inf"),
        answer_key: Callable[[Recognizer], str] | None = None,
    ) -> PaidAnswer:
        """The first usable answer along the kind's chain (``log`` says who was asked and who fell back).

        With ``answer_key`` and a paid-answer store, each provider's answer is stored under its key the
        moment it arrives, and one stored before is reused instead of paying again.
        """
        chain = self.recognizers[kind]
        for recognizer in chain:
            log.provider = recognizer.name
            try:
                paid = self._paid_answer(recognizer, image, log, remaining_s, answer_key)
                if paid.reused:
                    log.usage.add(recognizer.name, "reused")
                if paid.answer.unusable is not None:
                    raise UnusableAnswerError(paid.answer)
                return paid
            except RecognitionError as error:
                if recognizer is chain[-1] or not falls_back(error):
                    raise
                log.fallback.append({"provider": recognizer.name, "code": error.code})
                log.usage.add(recognizer.name, "fallbacks")
                logger.warning(
                    "provider cannot answer; trying the next of the chain",
                    extra={"provider": recognizer.name, "error_code": error.code},
                )
        raise AssertionError("a chain names at least one provider")  # Settings.check guarantees it

    def _paid_answer(
        self,
        recognizer: Recognizer,
        image: bytes,
        log: CallLog,
        remaining_s: Callable[[], float],
        answer_key: Callable[[Recognizer], str] | None,
    ) -> PaidAnswer:
        def call() -> ProviderAnswer:
            return self._call(recognizer, image, log, remaining_s)

        if self._answers is None or answer_key is None:
            return PaidAnswer(call(), False, iso_seconds(utc_now()))
        return self._answers.get(answer_key(recognizer), call, remaining_s=remaining_s)

    def _call(
        self, recognizer: Recognizer, image: bytes, log: CallLog, remaining_s: Callable[[], float]
    ) -> ProviderAnswer:
        pacer = self.pacers.get(recognizer.name)
        send: PreparedCall | None = None
        attempt = 0
        while True:
            attempt += 1
            try:
                # The key and the body before the slot: after it, only the sending. Built once, sent again
                # on a retry; a key that cannot be read yet (SSM throttled) is retried like a failed call,
                # though it is no call and nothing was billed.
                send = send or prepared_call(recognizer, image)
            except RecognitionError as error:
                self._back_off_or_raise(error, attempt, remaining_s)
                continue
            if pacer is not None:
                self._wait_for_slot(pacer, recognizer, remaining_s)
            log.calls += 1
            log.usage.add(recognizer.name, "calls")
            try:
                answer = send()
            except RecognitionError as error:
                if error.possibly_billed:
                    log.possibly_billed += 1
                    log.usage.add(recognizer.name, "possibly_billed")
                    if log.total_possibly_billed > self.settings.timeout_retries:
                        _stop_retrying(error, self.settings.timeout_retries)
                self._back_off_or_raise(error, attempt, remaining_s)
            else:
                if recognizer.name in self._paid:
                    log.usage.add(recognizer.name, "billed")  # every answer is billed, a usable one or not
                return answer

    def _back_off_or_raise(self, error: RecognitionError, attempt: int, remaining_s: Callable[[], float]) -> None:
        """Sleep before the next attempt; raise ``error`` when it is not retryable or attempts or time run out."""
        if not error.retryable or attempt >= self.settings.max_attempts:
            raise error
        delay = random.uniform(0, self.settings.retry_base_delay_s * 2 ** (attempt - 1))  # noqa: S311
        if remaining_s() < delay + self.settings.call_deadline_s + RESERVE_S:
            raise error
        logger.info("retrying upstream", extra={"error_code": error.code, "attempt": attempt})
        self._sleep(delay)

    def _wait_for_slot(
        self, pacer: Pacer | RateBudget, recognizer: Recognizer, remaining_s: Callable[[], float]
    ) -> None:
        """Wait for the provider's next slot, or fail retryably (the upload then ends FAILED, never unrecorded).

        The budget's table unreachable, or no slot before the invocation would have to end: Lambda's retry
        comes back later, and its last attempt records FAILED with this code.
        """
        try:
            pacer.wait(max_wait_s=remaining_s() - self.settings.call_deadline_s - RESERVE_S)
        except Exception as exc:
            raise PipelineError(recognizer.name, "RATE_BUDGET_UNAVAILABLE", str(exc)[:200]) from exc


def _pacer(settings: Settings, provider: str, rate: float, dynamodb_client: Any) -> Pacer | RateBudget:
    if settings.rate_budget_table:
        # On the caller's DynamoDB client when it has one (the function's): a client of its own would
        # start a second AWS session at the first paced call.
        return RateBudget(settings.rate_budget_table, provider, rate, client=dynamodb_client)
    return Pacer(rate)


def _stop_retrying(error: RecognitionError, timeout_retries: int) -> None:
    """The upload has had its share of calls that may have been billed: it ends FAILED now."""
    error.retryable = False
    error.message = f"{error.message}; not tried again: each try may have been billed ({timeout_retries} retry allowed)"

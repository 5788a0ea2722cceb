"""One uploaded object → exactly one record, then one event (success) or one message (failure)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from vehicle_ocr import shapes
from vehicle_ocr.answers import AnswerInProgress, PaidAnswers
from vehicle_ocr.bounded import within_budget
from vehicle_ocr.erasure import SubjectErased
from vehicle_ocr.errors import PipelineError, RecognitionError
from vehicle_ocr.images import check_image, check_size, prepare_for_upstream
from vehicle_ocr.kinds import kind_spec
from vehicle_ocr.providers.base import Recognizer
from vehicle_ocr.publishing import Publisher
from vehicle_ocr.recognition import CallLog, Recognition, UnusableAnswerError
from vehicle_ocr.routing import route
from vehicle_ocr.s3_events import ParsedEvent
from vehicle_ocr.settings import Settings
from vehicle_ocr.storage import ResultsStore, StoredRecord
from vehicle_ocr.usage import UsageCounters, UsageTally

logger = Logger(child=True)

# S3 answers these when the object named by the event is gone or was overwritten since.
_OBJECT_GONE = {"NoSuchKey", "NoSuchVersion", "PreconditionFailed", "412", "404"}
# What a FAILED record keeps of an unusable answer, for the operator.
RAW_BUDGET_BYTES = 32_768


@dataclass(frozen=True)
class Outcome:
    """What handling one upload came to: its record, status and what it cost."""

    record_id: str
    key: str
    status: str | None  # SUCCEEDED / FAILED, or None when nothing was done
    detail: str  # "recognised", "failed", "duplicate", "folder marker", "erased"
    kind: str | None = None
    provider: str | None = None
    error_code: str | None = None
    upstream_calls: int = 0  # made by this invocation
    possibly_billed: int = 0  # of those, calls that got no answer and may have been billed
    fallbacks: tuple[tuple[str, str], ...] = ()  # (provider, code) of each provider that could not answer


class TransientFailure(RuntimeError):
    """A transient upstream failure outlasted this invocation's retries: Lambda retries the invocation later."""


class OutcomeNotRecorded(RuntimeError):
    """Some object's outcome could not be recorded or announced: fail the invocation so Lambda retries.

    Objects already done are found on the retry and are neither recognised nor announced again.
    """


class Pipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        s3_client: Any,
        store: ResultsStore,
        publisher: Publisher,
        recognizers: Mapping[str, Sequence[Recognizer]],
        answers: PaidAnswers | None = None,
        usage: UsageCounters | None = None,
        dynamodb_client: Any = None,  # for the rate budget; None: it makes its own when first needed
        clock: Callable[[], datetime] = shapes.utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self._s3 = s3_client
        self._store = store
        self._publisher = publisher
        self._recognizers = recognizers
        self._answers = answers
        self._usage = usage
        self._clock = clock
        self._recognition = Recognition(
            settings, recognizers, answers=answers, dynamodb_client=dynamodb_client, sleep=sleep
        )

    def register_lambda_context(self, context: Any) -> None:
        if self._answers is not None:
            self._answers.register_lambda_context(context)

    def process_event(
        self,
        parsed: ParsedEvent,
        *,
        remaining_s: Callable[[], float] | None = None,
        usage: UsageTally | None = None,
        request_id: str | None = None,
    ) -> list[Outcome]:
        """Process every object of one S3 event; one failing object does not stop the others.

        The upstream calls it made, per provider, are added to ``usage`` and to the day's usage counters.
        """
        tally = UsageTally() if usage is None else usage
        try:
            return self._process_objects(parsed, remaining_s, tally, request_id)
        finally:
            self._count_usage(tally)

    def _count_usage(self, tally: UsageTally) -> None:
        """One UpdateItem per provider asked; the calls are paid already, so a failure here is only logged."""
        if self._usage is None or not tally:
            return
        try:
            self._usage.add(self._clock().date(), tally)
        except Exception:
            logger.exception("usage counters not updated", extra={"usage": tally.counts})

    def _process_objects(
        self,
        parsed: ParsedEvent,
        remaining_s: Callable[[], float] | None,
        tally: UsageTally,
        request_id: str | None,
    ) -> list[Outcome]:
        for malformed in parsed.malformed:
            logger.error("malformed S3 event record", extra={"reason": malformed.reason})
            self._publisher.report_failure(
                shapes.malformed_event_message(malformed.record, malformed.reason, failed_at=self._clock())
            )
        if parsed.ignored:
            logger.info("ignored S3 events", extra={"event_names": parsed.ignored})
        outcomes: list[Outcome] = []
        unrecorded: list[str] = []
        for obj in parsed.objects:
            # Thread-safe keys: the local stack runs several invocations in one process.
            logger.thread_safe_append_keys(object_key=obj.key, record_id=obj.record_id)
            try:
                outcome = self.process(
                    obj,
                    remaining_s=remaining_s,
                    redrive=parsed.redrive,
                    redrive_id=parsed.redrive_id,
                    usage=tally,
                    request_id=request_id,
                )
            except (TransientFailure, AnswerInProgress) as exc:
                logger.warning("transient failure; Lambda will retry the invocation", extra={"reason": str(exc)})
                unrecorded.append(obj.record_id)
                continue
            except Exception:
                logger.exception("outcome not recorded; the invocation will be retried")
                unrecorded.append(obj.record_id)
                continue
            finally:
                logger.thread_safe_remove_keys(["object_key", "record_id"])
            logger.info(
                "object processed",
                extra={
                    "object_key": obj.key,
                    "record_id": obj.record_id,
                    "outcome": outcome.detail,
                    "status": outcome.status,
                    "error_code": outcome.error_code,
                },
            )
            outcomes.append(outcome)
        if unrecorded:
            raise OutcomeNotRecorded(f"{len(unrecorded)} of {len(parsed.objects)} objects not recorded: {unrecorded}")
        return outcomes

    def process(
        self,
        obj: shapes.UploadedObject,
        *,
        remaining_s: Callable[[], float] | None = None,
        redrive: bool = False,
        redrive_id: str | None = None,
        usage: UsageTally | None = None,
        request_id: str | None = None,
    ) -> Outcome:
        """Drive one object to its terminal outcome.

        Failures of the upload itself (bad image, terminal upstream codes) end as a FAILED
        record. Transient upstream failures fail the invocation so that Lambda retries it later,
        until its last attempt, which records FAILED (retryable). Failures of AWS (DynamoDB,
        EventBridge, SQS) fail the invocation too; the retry finds what was already paid for
        or recorded and does not pay again.
        """
        if obj.is_folder_marker:
            return Outcome(obj.record_id, obj.key, None, "folder marker")
        if self.settings.images_bucket and obj.bucket != self.settings.images_bucket:
            # Only the stack's own bucket may make us read and pay; another bucket's event is reported, not run.
            self._publisher.report_failure(shapes.unexpected_bucket_message(obj, failed_at=self._clock()))
            return Outcome(obj.record_id, obj.key, None, "unexpected bucket", error_code="UNEXPECTED_BUCKET")

        stored, history = self._store.load_with_history(obj.record_id)
        replacing = False
        if stored is not None:
            if redrive and stored.record["status"] == shapes.FAILED and stored.notified:
                replacing = True  # `vehicle-ocr redrive`: run the FAILED upload again
                # Attempts start afresh once per redrive; Lambda's retries of the same redrive keep counting.
                history = self._store.start_redrive(obj.record_id, redrive_id or uuid.uuid4().hex, history)
            else:
                # A duplicate delivery or a retry after a crash: never call the upstream again.
                if not stored.notified and not self._left_to_its_writer(stored, request_id):
                    self._store.put_sightings(stored)  # a crash may have left some unwritten
                    self._announce(stored.record, stored.attempts)
                return Outcome(obj.record_id, obj.key, stored.record["status"], "duplicate", stored.record["kind"])

        log = CallLog(history)
        try:
            record, attempts = self._recognize(obj, log, remaining_s or (lambda: float("inf")))
        finally:
            if usage is not None:
                usage.merge(log.usage)  # paid for even when the outcome is not recorded yet
        try:
            created = self._store.create(
                record,
                attempts=attempts,
                created_sort_at=self._clock(),
                sequencer=obj.sequencer,
                replace_failed=replacing,
                event_time=obj.event_time,
                announcer=request_id,
            )
        except SubjectErased:
            # `vehicle-ocr erase` ran while this upload was recognised: record nothing, keep no paid answer.
            self._forget_answers(obj, record)
            return Outcome(obj.record_id, obj.key, None, "erased", record["kind"])
        if not created:
            # A concurrent delivery recorded first; it announces its own outcome.
            return Outcome(obj.record_id, obj.key, None, "duplicate", record["kind"])
        try:
            self._announce(record, attempts)
        except Exception:
            # This invocation could not announce: any later delivery may (a resend from the dead-letter
            # queue, a duplicate), not only this invocation's own retry.
            self._release_announcement(obj.record_id)
            raise
        error = record.get("error")
        return Outcome(
            obj.record_id,
            obj.key,
            record["status"],
            "recognised" if record["status"] == shapes.SUCCEEDED else "failed",
            record["kind"],
            record["provider"],
            error["code"] if error else None,
            upstream_calls=log.calls,
            possibly_billed=log.possibly_billed,
            fallbacks=tuple((step["provider"], step["code"]) for step in log.fallback),
        )

    def _recognize(
        self, obj: shapes.UploadedObject, log: CallLog, remaining_s: Callable[[], float]
    ) -> tuple[shapes.Record, int]:
        """The record for one object, and the upstream calls it took over every attempt."""
        kind: str | None = None
        source = shapes.source_of(obj)
        try:
            kind = route(obj.key, self.settings)
            chain = self._recognizers[kind]
            log.provider = chain[0].name
            check_size(obj.size, self.settings.max_image_bytes)
            image = self._download(obj)
            sha256 = hashlib.sha256(image).hexdigest()
            source = shapes.source_of(obj, size=len(image), sha256=sha256)
            check_image(image, self.settings.max_image_bytes)
            prepared = prepare_for_upstream(image, limit_bytes=self.settings.upstream_max_image_bytes)
            if prepared.changes:
                logger.info("image prepared for upstream", extra={"changes": list(prepared.changes)})
            paid = self._recognition.answer(
                kind,
                prepared.data,
                log,
                remaining_s=remaining_s,
                answer_key=lambda recognizer: self._answer_key(kind, recognizer, obj, sha256),
            )
            result, truncated = kind_spec(kind).normalize(paid.answer)
        except RecognitionError as error:
            calls, possibly_billed = log.total_calls, log.total_possibly_billed
            if error.retryable:
                calls, possibly_billed = self._count_transient_failure(obj, error, log)
            logger.info(
                "recognition failed",
                extra={"error_code": error.code, "error_source": error.source, "retryable": error.retryable},
            )
            record = shapes.failed_record(
                obj, kind=kind, provider=log.provider, created_at=self._clock(), source=source, error=error
            )
            if isinstance(error, UnusableAnswerError):
                record["raw_answer"] = within_budget(error.answer.payload, RAW_BUDGET_BYTES)
            record["upstream_attempts"], record["possibly_billed"] = calls, possibly_billed
            if log.fallback:
                record["fallback"] = log.fallback
            return record, max(calls, 1)
        record = shapes.succeeded_record(
            obj,
            kind=kind,
            provider=log.provider,
            created_at=self._clock(),
            source=source,
            result=result,
            reused=paid.reused,
        )
        if truncated:
            record["truncated"] = truncated
        record["upstream_attempts"], record["possibly_billed"] = log.total_calls, log.total_possibly_billed
        if log.fallback:
            record["fallback"] = log.fallback
        return record, max(log.total_calls, 1)

    def _answer_key(self, kind: str, recognizer: Recognizer, obj: shapes.UploadedObject, sha256: str) -> str:
        """Where this image's answer from this provider is stored as paid (by content, or by object version)."""
        if self._answers is None:
            return ""
        return self._answers.key(kind=kind, provider=recognizer.name, sha256=sha256, record_id=obj.record_id)

    def _release_announcement(self, record_id: str) -> None:
        try:
            self._store.release_announcement(record_id)
        except Exception:  # the same trouble may be why announcing failed: the lease still ends on its own
            logger.exception("announcement lease not released; it ends by itself")

    def _left_to_its_writer(self, stored: StoredRecord, request_id: str | None) -> bool:
        """Whether an unannounced record found by another delivery is for its writer to announce.

        A concurrent duplicate delivery finds the record between its writer's write and announcement:
        announcing there too would send the failure message or success event twice. The writer announces
        it, or, if it crashed, Lambda's retry of the writer's invocation does: retries keep the request
        id, so that retry announces here. Past ANNOUNCE_LEASE_S the writer is presumed gone for good
        (out of retries) and any delivery announces.
        """
        if stored.announcer is None or stored.announcer == request_id:
            return False
        return stored.being_announced(self._clock())

    def _forget_answers(self, obj: shapes.UploadedObject, record: shapes.Record) -> None:
        kind, sha256 = record["kind"], record["source"]["sha256"]
        if self._answers is None or not kind or not sha256:
            return  # the image was never read, so never paid for
        for recognizer in self._recognizers[kind]:
            self._answers.forget(self._answer_key(kind, recognizer, obj, sha256))

    def _count_transient_failure(
        self, obj: shapes.UploadedObject, error: RecognitionError, log: CallLog
    ) -> tuple[int, int]:
        """Hand a transient failure back to Lambda unless this was its last asynchronous attempt.

        Returns the upstream calls, and those possibly billed, over all attempts, for the FAILED record.
        """
        totals = self._store.count_transient_failure(
            obj.record_id, calls=log.calls, possibly_billed=log.possibly_billed, at=self._clock()
        )
        if totals.invocations < self.settings.async_attempts:
            raise TransientFailure(
                f"{error.provider} {error.code} after {log.calls} calls; "
                f"Lambda attempt {totals.invocations} of {self.settings.async_attempts}"
            ) from error
        return totals.calls, totals.possibly_billed

    def _download(self, obj: shapes.UploadedObject) -> bytes:
        request: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
        if obj.version_id:
            request["VersionId"] = obj.version_id
        elif obj.etag:
            # Unversioned bucket: make sure we read the bytes the event announced, not a later overwrite.
            request["IfMatch"] = obj.etag
        try:
            response = self._s3.get_object(**request)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in _OBJECT_GONE:
                raise PipelineError("pipeline", "OBJECT_NOT_FOUND", f"S3 answered {code}") from exc
            raise
        with response["Body"] as body:
            # Never read more than the maximum plus one byte, whatever the event claimed.
            return body.read(self.settings.max_image_bytes + 1)

    def _announce(self, record: Mapping[str, Any], attempts: int) -> None:
        if record["status"] == shapes.SUCCEEDED:
            self._publisher.announce_success(record)
        else:
            self._publisher.report_failure(shapes.failure_message(record, attempts=attempts, failed_at=self._clock()))
        self._store.mark_notified(record["id"], self._clock())

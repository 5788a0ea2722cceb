"""Every upstream answer is paid for once.

The call to a provider runs under Powertools idempotency, keyed by what was recognised:
the kind, the provider and the image's SHA-256 (or the record id when content dedupe is
off). Powertools stores the answer the moment the call returns, before normalising,
recording or publishing, so:

* a duplicate delivery, a Lambda retry after a crash, or the same bytes uploaded under
  another key get the stored answer, and the record says it was reused;
* two concurrent calls for the same image: the second waits for the first's answer
  instead of paying again (Powertools' in-progress state, expiring with the invocation);
* an answer the provider billed but we cannot use is stored like any other (marked
  ``unusable``): the upload ends FAILED and the image is not paid for again;
* a failed call (an error code, a timeout) stores nothing (Powertools deletes the
  in-progress item), so a later attempt may call again, within the pipeline's retry rules.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from vehicle_ocr.providers.base import ProviderAnswer

logger = Logger(child=True)

# Powertools stores an answer under ``id = <this prefix>#md5(JSON of the answer key)``.
ANSWER_KEY_PREFIX = "vehicle-ocr#answer"
# How often a caller that found the answer in progress looks again.
_POLL_S = 0.5


@dataclass(frozen=True)
class PaidAnswer:
    """An upstream answer, and whether it was reused from the paid-answer store instead of paid for."""

    answer: ProviderAnswer
    reused: bool
    answered_at: str


class AnswerInProgress(RuntimeError):
    """Another invocation is paying for this image right now; fail so Lambda retries after it is done."""


class PaidAnswers:
    def __init__(self, *, table_name: str, client: Any, ttl_s: int, by_content: bool):
        self.by_content = by_content
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            expires_after_seconds=ttl_s,
            raise_on_no_idempotency_key=True,
            response_hook=_mark_reused,
        )
        self._table_name, self._client = table_name, client
        persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)
        self._call_once = idempotent_function(
            _paid_call,
            data_keyword_argument="request",
            persistence_store=persistence,
            config=self.config,
            key_prefix=ANSWER_KEY_PREFIX,
        )

    def register_lambda_context(self, context: Any) -> None:
        """In-progress items expire with the invocation, so a crashed call can be retried."""
        self.config.register_lambda_context(context)

    def key(self, *, kind: str, provider: str, sha256: str, record_id: str) -> str:
        scope = f"sha256:{sha256}" if self.by_content else f"record:{record_id}"
        return f"{kind}#{provider}#{scope}"

    def forget(self, key: str) -> None:
        """Delete the answer stored for ``key`` (an erased image's): the same bytes are paid for again."""
        self._client.delete_item(TableName=self._table_name, Key={"id": {"S": stored_answer_id(key)}})

    def get(self, key: str, call: Callable[[], ProviderAnswer], *, remaining_s: Callable[[], float]) -> PaidAnswer:
        """The stored answer for ``key``, or the answer of ``call()`` stored under it."""
        while True:
            try:
                result = self._call_once(request={"key": key}, call=call)
            except IdempotencyAlreadyInProgressError as exc:
                if remaining_s() < 10:
                    raise AnswerInProgress(f"another invocation is recognising this image ({key})") from exc
                time.sleep(_POLL_S)
                continue
            answer = ProviderAnswer(
                provider=result["provider"],
                payload=result["payload"],
                request_id=result.get("request_id"),
                unusable=result.get("unusable"),
            )
            return PaidAnswer(answer, bool(result.get("reused")), result["answered_at"])


def stored_answer_id(key: str) -> str:
    """The idempotency table's ``id`` of the answer stored for ``key``, derived as Powertools derives it."""
    digest = hashlib.md5(json.dumps(key, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
    return f"{ANSWER_KEY_PREFIX}#{digest}"


def _paid_call(*, request: dict[str, Any], call: Callable[[], ProviderAnswer]) -> dict[str, Any]:
    # An unusable answer is stored too: it was billed, and asking again would be billed again.
    answer = call()
    return {
        "provider": answer.provider,
        "payload": answer.payload,
        "request_id": answer.request_id,
        "unusable": answer.unusable,
        "answered_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _mark_reused(response: dict[str, Any], idempotent_data: Any) -> dict[str, Any]:
    """Powertools calls this only when it returns a stored answer instead of calling."""
    return {**response, "reused": True}

"""What every function needs of AWS before anything else: quiet SDK loggers and one client config.

Light on purpose (boto3 only): the query function imports it without pulling in the
pipeline, its providers or Powertools idempotency.
"""

from __future__ import annotations

import logging

from botocore.config import Config

# The AWS SDK and its HTTP stack. At DEBUG they log every request's parameters and body, and
# the results table's PutItem carries a licence's owner and address: personal data that must
# never reach a log (docs/contract.md), whatever level the root logger or LOG_LEVEL asks for.
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
_SDK_CHILD_PREFIXES = tuple(f"{parent}." for parent in SDK_LOGGERS)


def quiet_sdk_loggers() -> None:
    """Raise the AWS SDK's loggers, and any of their children given a lower level, to WARNING.

    Children left at NOTSET inherit WARNING from their parent; a level above WARNING is kept.
    Idempotent: the local stack calls it again for every function it loads.
    """
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    for name, known in list(logging.root.manager.loggerDict.items()):
        if (
            isinstance(known, logging.Logger)
            and name.startswith(_SDK_CHILD_PREFIXES)
            and logging.NOTSET < known.level < logging.WARNING
        ):
            known.setLevel(logging.WARNING)


quiet_sdk_loggers()

# Throttling and transient AWS errors are retried by botocore (standard mode: backoff with jitter).
AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)

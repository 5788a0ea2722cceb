"""The suite-wide log audit finds what it must (so a clean audit means something)."""

from __future__ import annotations

import base64
import logging

from tests.conftest import make_jpeg
from tests.fakes import log_audit


def test_a_planted_secret_in_a_log_line_is_found(monkeypatch):
    # Given the audit's collected lines are this test's alone
    monkeypatch.setattr(log_audit, "_lines", [])
    log_audit.register_secret("王小明测试", "owner name (planted)")
    try:
        logger = logging.getLogger("log-audit-probe")
        # Other tests may change the root level or disable loggers: this probe must log regardless.
        monkeypatch.setattr(logger, "disabled", False)
        logger.setLevel(logging.INFO)  # setLevel, not the attribute: it clears the level cache
        # When a record carries the owner in an extra field, and another one an image in base64
        logger.warning("processed", extra={"licence": {"owner": "王小明测试"}})
        logger.warning("upstream request %s", base64.b64encode(make_jpeg(1)).decode()[:60])
        logger.warning("clean line")
        # Then both are reported, the clean line is not
        found = log_audit.violations()
        assert len(found) == 2
        assert found[0].startswith("owner name (planted)")
        assert found[1].startswith("base64 image data")
    finally:
        log_audit._secrets.pop("王小明测试", None)
        logging.getLogger("log-audit-probe").setLevel(logging.NOTSET)

"""VEHICLE_OCR_ENGINE_THREADS: the offline engine's onnxruntime threads, for machines whose cores are shared."""

from __future__ import annotations

import pytest

pytest.importorskip("rapidocr", reason="the offline engine's extra (rapidocr) is not installed")

from vehicle_ocr_local.engine import ocr


def _intra_op_threads(engine) -> set[int]:
    sessions = (engine.text_det.session, engine.text_cls.session, engine.text_rec.session)
    return {s.session.get_session_options().intra_op_num_threads for s in sessions}


def test_the_engine_runs_its_models_on_the_threads_asked_for(monkeypatch):
    # Given one thread asked for
    monkeypatch.setenv(ocr.ENGINE_THREADS_VARIABLE, "1")

    # When the engine is created
    engine = ocr._create_engine()

    # Then its three models run on one intra-op thread each
    assert _intra_op_threads(engine) == {1}


def test_unset_leaves_onnxruntime_its_own_default(monkeypatch):
    # Given no thread count
    monkeypatch.delenv(ocr.ENGINE_THREADS_VARIABLE, raising=False)

    # When the engine is created, then onnxruntime chooses (0: one thread per core)
    assert _intra_op_threads(ocr._create_engine()) == {0}


@pytest.mark.parametrize("value", ["two", "0", "-3", "1.5"])
def test_a_wrong_thread_count_is_refused_naming_the_variable(monkeypatch, value):
    # Given a value that is not a thread count
    monkeypatch.setenv(ocr.ENGINE_THREADS_VARIABLE, value)

    # When the engine is created, then it fails saying which variable and what it must be
    with pytest.raises(ValueError, match=f"VEHICLE_OCR_ENGINE_THREADS must be a whole number.*{value!r}"):
        ocr._create_engine()

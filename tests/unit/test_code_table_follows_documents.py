"""The project's upstream code table against the providers' documents.

The fake upstream holds its own transcription of each provider's document (``TIANAPI_CODES``,
``APIZERO_CODES``); the project's table (``vehicle_ocr.codes``) must list the same codes with the
same messages, so a code missing, invented or mistyped in the project fails here.
"""

from __future__ import annotations

import pytest

from tests.fakes.upstream import APIZERO_CODES, TIANAPI_CODES
from vehicle_ocr.codes import documented

DOCUMENTS = {
    "tianapi": {str(code): message for code, message in TIANAPI_CODES.items()},
    "apizero": {str(code): message for code, (_status, message) in APIZERO_CODES.items()},
}


@pytest.mark.parametrize("provider", sorted(DOCUMENTS))
def test_project_table_has_exactly_the_documented_codes_and_messages(provider):
    # Given the provider's document, as the fake upstream transcribes it
    expected = DOCUMENTS[provider]

    # When the project's table is read for that provider
    infos = documented(provider)
    project = {info.code: info.message for info in infos}

    # Then it lists each code once, all of them tagged with the provider ...
    assert len(project) == len(infos), f"{provider}: a code is listed twice"
    assert {info.provider for info in infos} == {provider}
    # ... the same codes as the document (none missing, none invented) ...
    missing, invented = sorted(expected.keys() - project.keys()), sorted(project.keys() - expected.keys())
    assert (missing, invented) == ([], []), f"{provider}: missing {missing}, not in the document {invented}"
    # ... with the document's messages, character for character.
    wrong = {code: (project[code], expected[code]) for code in expected if project[code] != expected[code]}
    assert wrong == {}, f"{provider}: (project, document) messages differ: {wrong}"


def test_transcriptions_cover_the_documents_tables():
    # Given the documents' tables: tianapi 17 codes from 100 to 290, apizero 4000 .. 5030
    # When the fake's transcriptions are read
    # Then they hold exactly those codes (so the comparison above is against whole tables)
    assert sorted(TIANAPI_CODES) == [
        100,
        110,
        120,
        130,
        140,
        150,
        160,
        170,
        180,
        190,
        230,
        240,
        250,
        260,
        270,
        280,
        290,
    ]
    assert sorted(APIZERO_CODES) == [4000, 4015, 5020, 5021, 5030]

"""Fixtures for the integration tests: records of both kinds written by the pipeline's own storage code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes.upstream import DEFAULT_VEHICLE_LICENSE
from vehicle_ocr import shapes
from vehicle_ocr.errors import UpstreamError
from vehicle_ocr.normalize.plates import normalize_plate
from vehicle_ocr.normalize.vehicle_license import normalize_vehicle_license
from vehicle_ocr.storage import ResultsStore
from vehicle_ocr_local.stack import LocalStack, StackConfig, free_port

PLATE = "沪A0762学"
OTHER_PLATE = "京B12345"
VIN = "LSVAU218XN2183294"
OWNER = "张三"
START = datetime(2026, 11, 1, 8, 0, 0, tzinfo=UTC)


class Seeded:
    """Records written through ResultsStore, remembered newest first per query."""

    def __init__(self, stack):
        self.store = ResultsStore(stack.table, stack.client("dynamodb"))
        self.bucket = stack.bucket
        self.all: list[dict] = []  # in creation order
        self.clock = START

    def _obj(self, key: str, etag: str) -> shapes.UploadedObject:
        return shapes.UploadedObject(bucket=self.bucket, key=key, size=1000, etag=etag)

    def _save(self, record: dict) -> dict:
        self.clock += timedelta(seconds=1)
        assert self.store.create(record, attempts=1, created_sort_at=self.clock)
        self.all.append(record)
        return record

    def plate(self, key: str, *numbers: str, etag: str = "e1") -> dict:
        obj = self._obj(key, etag)
        plates = [normalize_plate({"number": number, "color": "blue"}) for number in numbers]
        return self._save(
            shapes.succeeded_record(
                obj,
                kind="plate",
                provider="tianapi",
                created_at=self.clock,
                source=shapes.source_of(obj),
                result=plates,
            )
        )

    def licence(self, key: str, vin: str = VIN, plate: str = PLATE) -> dict:
        obj = self._obj(key, "e1")
        data = dict(DEFAULT_VEHICLE_LICENSE, vin=vin, plate_number=plate)
        licence = normalize_vehicle_license(data) | {"raw": data}
        return self._save(
            shapes.succeeded_record(
                obj,
                kind="vehicle_license",
                provider="apizero",
                created_at=self.clock,
                source=shapes.source_of(obj),
                result=licence,
            )
        )

    def failed(self, key: str, kind: str | None = "plate") -> dict:
        obj = self._obj(key, "e1")
        error = UpstreamError("tianapi", 150)
        return self._save(
            shapes.failed_record(
                obj, kind=kind, provider="tianapi", created_at=self.clock, source=shapes.source_of(obj), error=error
            )
        )

    def newest_first(self, keep=lambda record: True) -> list[str]:
        return [record["id"] for record in reversed(self.all) if keep(record)]


@pytest.fixture
def seeded(stack) -> Seeded:
    return seed_records(stack)


def seed_records(stack) -> Seeded:
    """Plates, licences and failures of both kinds, two versions of one object, written newest last."""
    seeded = Seeded(stack)
    for index in range(7):
        seeded.plate(f"plates/gate/{index}.jpg", PLATE)
    seeded.plate("plates/gate/two.jpg", PLATE, OTHER_PLATE)
    seeded.plate("plates/gate/other.jpg", OTHER_PLATE)
    for index in range(3):
        seeded.licence(f"vehicle-licenses/{index}.jpg")
    seeded.licence("vehicle-licenses/other.jpg", vin="LFV2A21K6C4000001", plate="粤B99999")
    for index in range(4):
        seeded.failed(f"plates/bad/{index}.jpg")
    seeded.failed("receipts/x.jpg", kind=None)
    seeded.plate("plates/cam1/沪A 1.jpg", PLATE, etag="old")
    seeded.plate("plates/cam1/沪A 1.jpg", OTHER_PLATE, etag="new")  # a newer version of the same object
    return seeded


@pytest.fixture
def running_stack(upstream_env, monkeypatch):
    """The local stack in this process on free ports, its paid providers pointed at the fake upstream."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    env = {**upstream_env, "UPSTREAM_RETRY_BASE_DELAY": "0.01"}
    config = StackConfig(aws_port=free_port(), api_port=0, environment=env, retry_delays_s=(0.1, 0.1), quiet=True)
    with LocalStack(config) as stack:
        yield stack

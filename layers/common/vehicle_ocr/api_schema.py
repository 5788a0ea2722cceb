"""The query API's OpenAPI document, from the record's own types.

The record is typed once, in ``vehicle_ocr.shapes`` (the TypedDicts the normalisers and the
writer build, checked by mypy); pydantic reads those same types here, so the document cannot
drift from what the pipeline writes and the API sends. A test validates real records against
them as well. Only what the API alone adds (a page of records, an error body) is declared here.
"""

from pydantic import BaseModel, ConfigDict, Field, with_config

from vehicle_ocr import shapes
from vehicle_ocr.shapes import Kind, Record, Status

__all__ = ["ApiError", "ApiErrorDetail", "Kind", "Record", "RecordPage", "Status", "UsageReport"]

# No property beyond those declared, and the docstring under a field is its description.
_DOCUMENTED = ConfigDict(extra="forbid", use_attribute_docstrings=True)
for _type in (
    shapes.Source,
    shapes.Plate,
    shapes.Dimensions,
    shapes.VehicleLicense,
    shapes.RecordError,
    shapes.FallbackStep,
    shapes.Record,
):
    with_config(_DOCUMENTED)(_type)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordPage(_Strict):
    items: list[Record]
    cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class ApiErrorDetail(_Strict):
    code: str
    message: str


class ApiError(_Strict):
    error: ApiErrorDetail


class UsageCounts(_Strict):
    calls: int = Field(description="Requests sent to the provider")
    billed: int = Field(description="Answers received: each one is billed")
    possibly_billed: int = Field(description="Requests without an answer after they went out: may have been billed")
    reused: int = Field(description="Answers served from the paid-answer store instead of paying again")
    fallbacks: int = Field(description="Times the provider could not answer and the next of the chain was asked")
    cost: float = Field(description="billed x the provider's price per call, in the report's currency")


class ProviderUsage(UsageCounts):
    provider: str


class DayUsage(UsageCounts):
    day: str = Field(description="UTC day, YYYY-MM-DD")
    providers: list[ProviderUsage]


class UsageReport(_Strict):
    from_: str = Field(alias="from", description="First day, YYYY-MM-DD")
    to: str = Field(description="Last day, YYYY-MM-DD")
    currency: str = Field(description="Currency of every cost: CNY")
    price_per_call: dict[str, float] = Field(description="Price per billed call of each paid provider")
    totals: UsageCounts
    days: list[DayUsage] = Field(description="Every day of the range, oldest first (zeros where nothing was asked)")

"""Document kinds.  Importing this package registers the built-in ones (plate, vehicle_license)."""

from vehicle_ocr.kinds import plate, vehicle_license
from vehicle_ocr.kinds.base import KindSpec, all_kinds, kind_spec, register_kind, unregister_kind

PLATE = plate.PLATE.name
VEHICLE_LICENSE = vehicle_license.VEHICLE_LICENSE.name

__all__ = [
    "PLATE",
    "VEHICLE_LICENSE",
    "KindSpec",
    "all_kinds",
    "kind_spec",
    "register_kind",
    "unregister_kind",
]

"""The offline engine (``local``): one provider spec per kind it reads, no key, no rate limit, no bill.

The engine is an optional package (``vehicle_ocr_local``, installed with ``pip install
'vehicle-ocr[engine]'`` or in the container-image build).  A deployment whose chain names
``local`` without the engine fails its cold start, naming how to install it: better than
a FAILED record for every upload.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from vehicle_ocr.errors import ConfigurationError
from vehicle_ocr.providers.registry import ProviderSpec, register_provider

if TYPE_CHECKING:
    from vehicle_ocr.providers.base import Recognizer
    from vehicle_ocr.settings import Settings

NAME = "local"
ENGINE_MODULE = "vehicle_ocr_local.engine"
NOT_INSTALLED = (
    "provider 'local' (the offline engine) is not installed in this deployment: "
    "pip install 'vehicle-ocr[engine]', or deploy the container image (docs/local-engine-container.md)"
)
# The engine's recogniser class for each kind it reads.
ENGINE_CLASSES = {"plate": "LocalPlateRecognizer", "vehicle_license": "LocalVehicleLicenseRecognizer"}


def engine_installed() -> bool:
    try:
        importlib.import_module(ENGINE_MODULE)
    except ImportError:
        return False
    return True


def _factory(kind: str):
    def build(settings: Settings) -> Recognizer:
        try:
            engine = importlib.import_module(ENGINE_MODULE)
        except ImportError as exc:
            raise ConfigurationError(NOT_INSTALLED) from exc
        return getattr(engine, ENGINE_CLASSES[kind])()

    return build


SPECS = tuple(register_provider(ProviderSpec(name=NAME, kind=kind, factory=_factory(kind))) for kind in ENGINE_CLASSES)

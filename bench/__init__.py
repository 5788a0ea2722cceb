"""Benchmarks: `make bench` (python -m bench) measures overhead, throughput, cold start, paid calls, the engine."""

import logging
import os

# Before anything imports vehicle_ocr: its modules' child loggers attach to the service named here,
# as they do in Lambda, where the function's environment is set before the first import.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "vehicle-ocr")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "VehicleOcr")
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log

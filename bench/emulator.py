"""The emulated AWS in a process of its own, as AWS is to a fleet of Lambda instances.

    python -m bench.emulator PORT

Serves the local stack's SerializedMotoServer on 127.0.0.1:PORT, prints "ready" and runs until
its standard input closes. In its own process so that the emulator's work does not delay the
local upstream's clock (the judge of the rate limit) in the benchmark's process.
"""

from __future__ import annotations

import sys

from vehicle_ocr_local.stack import SerializedMotoServer


def main(argv: list[str]) -> int:
    server = SerializedMotoServer(ip_address="127.0.0.1", port=int(argv[0]), verbose=False)
    server.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the benchmark closes the pipe (or dies)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""vehicle-ocr's shared package: the Lambda layer's code (routing, providers, normalisation, storage, publishing).

The layer ships requests without a character-detection package (layers/common/Makefile says why);
requests warns once about that when imported. The functions read every answer as bytes and never
ask requests to guess an encoding, so that warning is not shown.
"""

import warnings

warnings.filterwarnings("ignore", message="Unable to find acceptable character detection", module="requests")

"""`drsn-edge firmware`: the deployed int8 model -> C sources -> firmware image for a board,
with a boot self-test and a memory report (build/reports/firmware.{json,md})."""

from __future__ import annotations

from pathlib import Path

from drsn_edge.artifacts import paths
from drsn_edge.config import section
from drsn_edge.errors import UserError

MODEL_FILES = {"qat": "model_int8.tflite", "ptq": "model_ptq_int8.tflite"}


def model_path(cfg: dict) -> Path:
    """The .tflite that firmware.model names (default: the QAT model)."""
    which = section(cfg, "firmware")["model"]
    if which not in MODEL_FILES:
        raise UserError(f"firmware.model = {which!r}: expected one of {', '.join(MODEL_FILES)}")
    path = paths()["model"] / MODEL_FILES[which]
    if not path.is_file():
        raise UserError(f"{path} does not exist; run `make quantize` first")
    return path


def run(cfg: dict) -> dict:
    raise UserError("drsn-edge firmware: not implemented yet")

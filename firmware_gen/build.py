"""Build the compiled-runtime firmware for one board: generated model C + dk kernels +
serial harness + board layer -> ELF (and .bin, .map) under build/firmware/<board>/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import boards
from firmware_gen import codegen

# The serial harness of every back end, with the raw-input preprocessing (the RAW command)
# from the kernel library; HARNESS_INCLUDE_DIRS has what they include (dk.h).
PREPROCESS_SOURCE = codegen.RUNTIME_DIR / "kernels" / "preprocess.c"
HARNESS_SOURCES = [codegen.HARNESS_DIR / "main.c", codegen.HARNESS_DIR / "protocol.c",
                   codegen.HARNESS_DIR / "monitor.c", PREPROCESS_SOURCE]
# firmware.standalone: verdicts on the board's own samples, no host (harness/standalone.c)
STANDALONE_SOURCE = codegen.HARNESS_DIR / "standalone.c"
HARNESS_INCLUDE_DIRS = [codegen.HARNESS_DIR, codegen.RUNTIME_DIR / "include"]


def monitor_defines(model_bytes: bytes) -> list[str]:
    """Size the streaming monitor's ring and scratch (harness/monitor.h) for this model."""
    from firmware_gen import tflm_oracle
    inp = tflm_oracle.model_inputs(model_bytes)[0]
    out = tflm_oracle.model_outputs(model_bytes)[0]
    return [f"MONITOR_MAX_WINDOW={int(np.prod(inp.shape))}u",
            f"MONITOR_MAX_OUTPUT={max(1, int(np.prod(out.shape)))}u"]


def build(model_bytes: bytes, board: str, out_dir: str | Path, name: str = "model",
          extra_sources=(), defines=()) -> dict:
    """Generate, compile and size the firmware; returns what was built.

    extra_sources: more C files to link in, e.g. the boot self-test vector (selftest.c).
    defines: more -D for every source, e.g. DRSN_STANDALONE (firmware.standalone).
    """
    out_dir = Path(out_dir)
    board = boards.load(board)
    gen = out_dir / "src"
    info = codegen.generate(model_bytes, gen, name=name)
    sources = [gen / "model.c", gen / "model_data.c", *map(Path, extra_sources),
               *HARNESS_SOURCES, *codegen.runtime_sources()]
    sources = list(dict.fromkeys(sources))   # preprocess.c is in both lists
    elf = boards.compile_firmware(board, sources, codegen.include_dirs(), out_dir / "firmware.elf",
                                  defines=[*monitor_defines(model_bytes), *defines])
    return {"board": board.name, "elf": elf, "model": info, "size": boards.size_report(elf)}

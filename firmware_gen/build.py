"""Build the compiled-runtime firmware for one board: generated model C + dk kernels +
serial harness + board layer -> ELF (and .bin, .map) under build/firmware/<board>/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from drsn_edge.errors import UserError

import boards
from boards.build import DoesNotFit
from firmware_gen import codegen

# The serial harness of every back end, with the raw-input preprocessing (the RAW command)
# from the kernel library; HARNESS_INCLUDE_DIRS has what they include (dk.h).
PREPROCESS_SOURCE = codegen.RUNTIME_DIR / "kernels" / "preprocess.c"
HARNESS_SOURCES = [codegen.HARNESS_DIR / "main.c", codegen.HARNESS_DIR / "protocol.c",
                   codegen.HARNESS_DIR / "monitor.c", PREPROCESS_SOURCE]
# firmware.standalone: verdicts on the board's own samples, no host (harness/standalone.c)
STANDALONE_SOURCE = codegen.HARNESS_DIR / "standalone.c"
HARNESS_INCLUDE_DIRS = [codegen.HARNESS_DIR, codegen.RUNTIME_DIR / "include"]


# The serial frames' default payload (PROTO_MAX_PAYLOAD in harness/protocol.h) and the
# largest one INFO can announce (a u16).
FRAME_PAYLOAD = 4096
FRAME_PAYLOAD_MAX = 65535


def harness_defines(model_bytes: bytes, monitor: bool = True) -> list[str]:
    """Size the harness for this model: the streaming monitor's ring and scratch
    (harness/monitor.h), and frames that carry at least one input (an image model's input
    is often larger than the default 4 KB payload). monitor=False (a user's model, which
    has no window preprocessing to stream through) leaves the monitor a token size: its
    MONITOR command then answers BAD_SHAPE, and the RAM goes to the model."""
    from firmware_gen import tflm_oracle
    inp = tflm_oracle.model_inputs(model_bytes)[0]
    outs = tflm_oracle.model_outputs(model_bytes)
    # bytes: 4 per value for a float32 input (first QUANTIZE) or output (final DEQUANTIZE);
    # several outputs share one frame
    from firmware_gen.ops.base import nbytes
    in_size, out_size = nbytes(inp), max(1, sum(nbytes(o) for o in outs))
    defines = ([f"MONITOR_MAX_WINDOW={in_size}u", f"MONITOR_MAX_OUTPUT={out_size}u"] if monitor
               else ["MONITOR_MAX_WINDOW=1u", "MONITOR_MAX_OUTPUT=1u"])
    payload = frame_payload(len(inp.shape), in_size)
    # The stored answer holds at least one output (+ its count and work): a large output, or
    # several outputs in one frame, can outgrow the default 16 KB with a small input.
    response = max(16384, -(-(out_size + 10) // 256) * 256)
    if FRAME_PAYLOAD < payload <= FRAME_PAYLOAD_MAX:
        defines += [f"PROTO_MAX_PAYLOAD={payload}u"]   # one input per request
    if FRAME_PAYLOAD < payload <= FRAME_PAYLOAD_MAX or response > 16384:
        defines += [f"PROTO_RESPONSE_BYTES={response}u"]
    return defines


def frame_payload(ndim: int, in_size: int) -> int:
    """The frame payload for an INFER of one input (count u16, rank u8, dims u32 each, the
    bytes), rounded up to 256 bytes; at least the default."""
    need = 2 + 1 + 4 * ndim + in_size
    return max(FRAME_PAYLOAD, -(-need // 256) * 256)


def build(model_bytes: bytes, board: str, out_dir: str | Path, name: str = "model",
          extra_sources=(), defines=(), monitor: bool = True, optimize: str = "speed",
          flash_budget: int = 0) -> dict:
    """Generate, compile and size the firmware; returns what was built.

    extra_sources: more C files to link in, e.g. the boot self-test vector (selftest.c).
    defines: more -D for every source, e.g. DRSN_STANDALONE (firmware.standalone).
    optimize: "speed" or "size" (firmware.optimize: int16 or int8 weights in the fast kernels).
    flash_budget: bytes (firmware.flash_budget; 0: none). A speed build over it keeps int8
    weights in the layers that save the most flash per MAC until it fits (flash_choice).
    """
    out_dir = Path(out_dir)
    board = boards.load(board)
    gen = out_dir / "src"
    sizes, fitted, savings = frozenset(), False, None
    while True:
        info = codegen.generate(model_bytes, gen, name=name, optimize=optimize, size_layers=sizes)
        sources = [gen / "model.c", gen / "model_data.c", *map(Path, extra_sources),
                   *HARNESS_SOURCES, *codegen.runtime_sources()]
        sources = list(dict.fromkeys(sources))   # preprocess.c is in both lists
        too_big = None
        try:
            elf = boards.compile_firmware(board, sources, codegen.include_dirs(), out_dir / "firmware.elf",
                                          defines=[*harness_defines(model_bytes, monitor), *defines])
            size = boards.size_report(elf)
            excess = size["flash_bytes"] - flash_budget if flash_budget else 0
        except DoesNotFit as exc:
            # Too large for the board's flash: fitted as a budget of the board's flash would be.
            if set(exc.needs) != {"FLASH"}:
                raise
            too_big, excess = exc, exc.needs["FLASH"] - exc.has["FLASH"]
        if excess <= 0:
            break
        more = sizes
        if optimize == "speed":
            if savings is None:   # computed from the first, all-int16 generation
                savings = size_mode_savings(model_bytes, info)
            more = flash_choice(info, savings, excess)
        if more <= sizes:
            if too_big:
                raise too_big
            for stale in (elf, elf.with_suffix(".bin")):   # not an image anyone should flash
                Path(stale).unlink(missing_ok=True)
            raise UserError(f"firmware: {size['flash_bytes']:,} bytes of flash is over firmware.flash_budget = "
                            f"{flash_budget:,} even with int8 weights in every fast layer "
                            f"(optimize = \"size\"); raise the budget or use a smaller model")
        sizes, fitted = sizes | more, fitted or too_big is not None
    budget = {"flash_budget": flash_budget, "int8_weight_layers": info["weights8_layers"],
              "to_fit_board": fitted}
    return {"board": board.name, "elf": elf, "model": info, "size": size, "optimize": optimize,
            "budget": budget}


def size_mode_savings(model_bytes: bytes, speed_info: dict) -> dict[int, int]:
    """Bytes each layer's constants shrink by with int8 weights: a speed generation's
    constants less a size-mode generation's."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        size_info = codegen.generate(model_bytes, tmp, name="budget", optimize="size")
    small = {layer["index"]: layer["const_bytes"] for layer in size_info["layers"]}
    return {layer["index"]: layer["const_bytes"] - small[layer["index"]] for layer in speed_info["layers"]
            if layer["const_bytes"] > small[layer["index"]]}


def flash_choice(info: dict, savings: dict[int, int], excess: int) -> frozenset[int]:
    """Layers to give int8 weights so that a build sheds at least `excess` bytes more: taken by
    saving per MAC (the instructions size mode adds grow with MACs), largest first, on top of
    those `info` already has."""
    chosen = set(info["weights8_layers"])
    macs = {layer["index"]: layer["macs"] for layer in info["layers"]}
    options = sorted(((saving / max(macs[k], 1), saving, k) for k, saving in savings.items() if k not in chosen),
                     reverse=True)
    # the int8 sweep's own code (about 1 KB) comes with the first such layer
    need = excess + (1024 if not chosen else 0)
    for _, saving, k in options:
        if need <= 0:
            break
        chosen.add(k)
        need -= saving
    return frozenset(chosen)

"""pytest plugin for hardware-in-the-loop tests against a drsn-edge board.

Installed with drsn-edge (entry point `pytest11`), so any test suite can ask for the board:

    import numpy as np

    def test_board_matches_tflm(dut, hil_reference):
        info = dut.info()
        x = np.random.default_rng(0).integers(-128, 128, (8, *info.input.shape), np.int8)
        outputs, work = dut.infer(x)            # on the board, over the serial link
        assert np.array_equal(outputs, hil_reference(x))   # TFLM on the host

Where the board is:
    --hil-port URL    a board already running the firmware: any pyserial URL or device
                      (/dev/ttyACM0, COM3, socket://127.0.0.1:4321), at --hil-baud
    (no --hil-port)   the plugin boots the emulated board itself in QEMU, from --hil-elf,
                      else build/firmware/<board>/firmware.elf (`make firmware` writes it);
                      a suite can provide its own image by overriding the `hil_elf` fixture.
                      No image: every test using the board fails (it does not skip: a
                      suite must not pass when the firmware build did not happen)
    --hil-board NAME  the board to emulate, or the one expected behind --hil-port (checked
                      against what it reports); default mps2-an386
    --hil-model PATH  the .tflite the board should run (default build/model/model_int8.tflite):
                      checked against the board's model hash, and the model `hil_reference`
                      runs; a suite can override the `hil_model` fixture. No model: the tests
                      fail, since neither the stale-firmware check nor the reference can run

Fixtures (session-scoped: one board per test run):
    dut            a connected runner.link.Device
    hil_reference  function: int8 inputs -> the TFLM host runtime's int8 outputs
    hil_board, hil_elf, hil_model   the resolved settings above
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

DEFAULT_BOARD = "mps2-an386"


def pytest_addoption(parser):
    group = parser.getgroup("drsn-edge hil", "hardware-in-the-loop tests on a drsn-edge board")
    group.addoption("--hil-port", default=None, metavar="URL",
                    help="serial port or pyserial URL of a board running the drsn-edge "
                         "firmware; without it the emulated board is started in QEMU")
    group.addoption("--hil-baud", type=int, default=115200, metavar="N",
                    help="baud rate for --hil-port (default 115200)")
    group.addoption("--hil-board", default=None, metavar="NAME",
                    help=f"board to emulate, or expected behind --hil-port "
                         f"(default {DEFAULT_BOARD})")
    group.addoption("--hil-elf", default=None, metavar="PATH",
                    help="firmware image to boot in QEMU "
                         "(default build/firmware/<board>/firmware.elf)")
    group.addoption("--hil-model", default=None, metavar="PATH",
                    help="the .tflite the board runs (default build/model/model_int8.tflite)")
    group.addoption("--hil-timeout", type=float, default=5.0, metavar="S",
                    help="seconds to wait for an answer before a request is sent again")


def pytest_configure(config):
    config.addinivalue_line("markers", "hil: needs a drsn-edge board (real, or emulated in QEMU)")


def _build_dir() -> Path:
    return Path(os.environ.get("DRSN_EDGE_BUILD", "build"))


@pytest.fixture(scope="session")
def hil_board(request) -> str:
    return request.config.getoption("--hil-board") or DEFAULT_BOARD


@pytest.fixture(scope="session")
def hil_elf(request, hil_board) -> Path | None:
    """Firmware image for the emulated board; None when a real port is given."""
    if request.config.getoption("--hil-port"):
        return None
    given = request.config.getoption("--hil-elf")
    elf = Path(given) if given else _build_dir() / "firmware" / hil_board / "firmware.elf"
    if not elf.is_file():
        pytest.fail(f"no firmware image for the emulated {hil_board}: {elf} does not exist; "
                    f"run `make firmware`, pass --hil-elf PATH, or --hil-port URL for a real "
                    f"board", pytrace=False)
    return elf


def model_from_options(config) -> bytes:
    """The .tflite named by --hil-model, else build/model/model_int8.tflite; a test that
    cannot know the board's model fails, because it could not tell stale firmware or
    compute the outputs the board must give."""
    given = config.getoption("--hil-model")
    path = Path(given) if given else _build_dir() / "model" / "model_int8.tflite"
    if not path.is_file():
        how = "--hil-model" if given else "no --hil-model given and the default"
        pytest.fail(f"no model to check the board against: {how} {path} does not exist; "
                    f"pass --hil-model PATH (the .tflite the firmware was built from) or run "
                    f"`make quantize`", pytrace=False)
    return path.read_bytes()


@pytest.fixture(scope="session")
def hil_model(request) -> bytes:
    """The int8 .tflite the board runs."""
    return model_from_options(request.config)


@pytest.fixture(scope="session")
def dut(request, hil_board, hil_elf, hil_model):
    """The device under test: a runner.link.Device, connected and answering."""
    from runner.link import Device, DeviceError
    port = request.config.getoption("--hil-port")
    timeout = request.config.getoption("--hil-timeout")
    emulator = None
    if port:
        url, baud = port, request.config.getoption("--hil-baud")
    else:
        import boards
        emulator = boards.Emulator(hil_board, hil_elf).start()
        url, baud = emulator.url, 115200
    try:
        device = Device(url, baudrate=baud, timeout=timeout)
        try:
            info = device.info()
        except DeviceError as exc:
            pytest.fail(f"the board at {url} does not answer: {exc}", pytrace=False)
        expected = request.config.getoption("--hil-board")
        if port and expected and info.board != expected:
            pytest.fail(f"{url} answers as a {info.board}, not the {expected} given with "
                        f"--hil-board", pytrace=False)
        if info.model_hash != hashlib.sha256(hil_model).digest():
            pytest.fail(f"stale firmware: the {info.board} at {url} runs model "
                        f"{info.model_hash.hex()[:12]}…, not the model given "
                        f"({hashlib.sha256(hil_model).hexdigest()[:12]}…); reflash it "
                        f"(`make flash`) or pass the matching --hil-model", pytrace=False)
        yield device
        device.close()
    finally:
        if emulator is not None:
            emulator.stop()


@pytest.fixture(scope="session")
def hil_reference(hil_model):
    """int8 inputs -> the TFLM host runtime's int8 outputs, shaped as Device.infer returns
    them: (n, *output_shape) for a batch, output_shape for one input."""
    import numpy as np
    from firmware_gen import tflm_oracle
    in_shape = tflm_oracle.model_inputs(hil_model)[0].shape[1:]

    def reference(x):
        x = np.asarray(x, np.int8)
        out = tflm_oracle.run(hil_model, x)
        return out[0] if x.shape == in_shape else out

    return reference

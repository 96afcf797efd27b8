import os
import sys
from pathlib import Path

# Same environment as the CLI: deterministic TensorFlow kernels and a quiet start-up.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


import pytest  # noqa: E402


def pytest_sessionstart(session):
    # A machine without the cross compiler, its C++ library or QEMU fails here, in one line
    # per missing piece, instead of as a compiler error deep inside some test.
    from drsn_edge import doctor
    found = doctor.problems()
    if found:
        pytest.exit("drsn-edge doctor: this machine cannot run the tests:\n  " + "\n  ".join(found),
                    returncode=2)


@pytest.fixture(scope="session")
def smoke_build(tmp_path_factory):
    """A build/ directory with the smoke config trained once per test session."""
    from drsn_edge.cli import main
    build = tmp_path_factory.mktemp("smoke_build")
    assert main(["train", "--config", str(ROOT / "configs" / "smoke.toml"), "--build-dir", str(build)]) == 0
    return build


@pytest.fixture(scope="session")
def smoke_tflite(smoke_build):
    """The smoke model converted to a fully int8 .tflite (PTQ on its calibration windows,
    its input pinned to the input contract as `quantize` does)."""
    import keras
    import numpy as np
    import training.models  # noqa: F401  (custom layers)
    from drsn_edge import config
    from drsn_edge.preprocess import contract_range, input_contract
    from quantize.convert import pin_input, to_int8_tflite
    model = keras.saving.load_model(smoke_build / "model/model.keras")
    with np.load(smoke_build / "data/calib.npz") as z:
        calib = z["x"]
    contract = input_contract(config.load(ROOT / "configs" / "smoke.toml"))
    return to_int8_tflite(pin_input(model, contract_range(contract)), calib, max_samples=64)


@pytest.fixture(scope="session")
def smoke_quantized(smoke_build, tmp_path_factory):
    """A build/ directory where the real `quantize` stage ran on the smoke model: its
    model/model_int8.tflite is the QAT model, the one the firmware ships (firmware.model)."""
    import shutil
    from drsn_edge.cli import main
    build = tmp_path_factory.mktemp("smoke_quantized")
    for part in ("data", "model"):
        shutil.copytree(smoke_build / part, build / part)
    assert main(["quantize", "--config", str(ROOT / "configs" / "smoke.toml"),
                 "--build-dir", str(build)]) == 0
    return build


@pytest.fixture(scope="session")
def smoke_qat_tflite(smoke_quantized):
    """The smoke model's shipped int8 model: QAT, as `drsn-edge quantize` writes it."""
    return (smoke_quantized / "model" / "model_int8.tflite").read_bytes()


def smoke_vectors(build, model: bytes, n: int, seed: int = 0):
    """n test windows (every noise type and SNR) quantized for `model`, with the TFLM host
    runtime's outputs for them."""
    import numpy as np
    from drsn_edge.int8 import quantize_input
    from firmware_gen import tflm_oracle
    inp = tflm_oracle.model_inputs(model)[0]
    with np.load(build / "data/test.npz") as z:
        x = np.concatenate([z[k] for k in sorted(z.files) if k.startswith("x_")])
    x = x[np.random.default_rng(seed).permutation(len(x))[:n]]
    q = quantize_input(x, inp.scale, inp.zero_point).reshape(len(x), *inp.shape[1:])
    return q, tflm_oracle.run(model, q).reshape(len(x), -1)


# --- hardware in the loop -----------------------------------------------------------------
# The pytest plugin (runner/pytest_plugin.py) boots build/firmware/<board>/firmware.elf by
# default; the project's own tests use the smoke model instead, so they need no earlier
# `make firmware` and no hardware. --hil-port / --hil-elf / --hil-model still win.

@pytest.fixture(scope="session")
def smoke_firmware(smoke_tflite, tmp_path_factory):
    """The smoke model's firmware for the default emulated board (mps2-an386)."""
    from firmware_gen import build as fw_build
    out = tmp_path_factory.mktemp("smoke_firmware")
    return fw_build.build(smoke_tflite, "mps2-an386", out, name="smoke_drsn")["elf"]


@pytest.fixture(scope="session")
def hil_elf(request):
    if request.config.getoption("--hil-port"):
        return None
    given = request.config.getoption("--hil-elf")
    return Path(given) if given else request.getfixturevalue("smoke_firmware")


@pytest.fixture(scope="session")
def hil_model(request):
    # Behind --hil-port runs firmware these tests did not build: its model must be named.
    if request.config.getoption("--hil-model") or request.config.getoption("--hil-port"):
        from runner.pytest_plugin import model_from_options
        return model_from_options(request.config)
    return request.getfixturevalue("smoke_tflite")

"""The thin thread end to end: int8 .tflite -> generated C -> firmware -> QEMU board ->
serial link -> outputs equal to the TFLM host runtime, bit for bit, on every board."""

import numpy as np
import pytest

import boards
from firmware_gen import build as fw_build
from firmware_gen import stage
from runner.link import Device
from tests.conftest import smoke_vectors


@pytest.fixture(scope="module")
def vectors(smoke_build, smoke_tflite):
    """100 test windows (all noise types and SNRs), quantized, with TFLM's outputs."""
    return smoke_vectors(smoke_build, smoke_tflite, 100)


@pytest.fixture(scope="module")
def selftest_c(smoke_build, smoke_tflite, tmp_path_factory):
    """The boot self-test vector for the smoke model, as `drsn-edge firmware` writes it."""
    import os
    os.environ["DRSN_EDGE_BUILD"], saved = str(smoke_build), os.environ.get("DRSN_EDGE_BUILD")
    try:
        vector = stage.selftest_vector(smoke_tflite, 0)
    finally:
        os.environ.pop("DRSN_EDGE_BUILD") if saved is None else os.environ.update(
            DRSN_EDGE_BUILD=saved)
    path = tmp_path_factory.mktemp("selftest") / "selftest.c"
    path.write_text(stage.selftest_source("smoke_drsn", vector))
    return path


@pytest.mark.parametrize("board", boards.available())
def test_board_outputs_are_bit_exact_to_tflm(board, smoke_tflite, vectors, selftest_c, tmp_path):
    built = fw_build.build(smoke_tflite, board, tmp_path, name="smoke_drsn",
                           extra_sources=[selftest_c])
    spec = boards.load(board)
    assert 0 < built["size"]["flash_bytes"] <= spec.flash_size
    assert 0 < built["size"]["ram_bytes"] <= spec.ram_size
    q, ref = vectors
    with boards.Emulator(board, built["elf"]) as emu:
        dev = Device(emu.url, timeout=5.0)
        (banner,) = dev.console(30)
        info = dev.info()
        assert info.model_hash == bytes.fromhex(built["model"]["sha256"])
        out, work = dev.infer(q)
        _, again = dev.infer(q[:3])
    mismatches = int(np.sum(np.any(out.reshape(len(q), -1) != ref, axis=1)))
    print(f"{board}: {len(q)} vectors, {mismatches} mismatches, "
          f"{int(np.median(work))} instructions per inference")
    assert len(q) >= 100 and mismatches == 0
    # The boot self-test ran the model on its built-in window and matched TFLM.
    assert f"drsn-edge: {board} smoke_drsn self-test PASS" in banner, banner
    # icount makes the work counter deterministic: the same input costs the same instructions
    assert np.all(work > 0) and again.tolist() == work[:3].tolist()


def test_firmware_names_the_model_train_built_not_the_config_at_hand(monkeypatch, tmp_path):
    import json
    monkeypatch.setenv("DRSN_EDGE_BUILD", str(tmp_path))
    cfg = {"model": {"arch": "drsn_cw"}}
    assert stage.model_name(cfg) == "drsn_cw"             # nothing trained: the config's
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "train.json").write_text(json.dumps({"model": {"arch": "drsn_cs"}}))
    assert stage.model_name(cfg) == "drsn_cs"
    (tmp_path / "reports" / "train.json").write_text("{truncated")
    assert stage.model_name(cfg) == "drsn_cw"

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


@pytest.mark.parametrize("board", boards.available())
def test_size_mode_is_bit_exact_on_every_board_in_less_flash(board, smoke_tflite, vectors, selftest_c,
                                                             tmp_path):
    """firmware.optimize = "size": int8 weights widened in the loop (dk_c1f_sweep8 and the FC's
    int8 step on the DSP cores, the C elsewhere), the same outputs as TFLM in less flash."""
    speed = fw_build.build(smoke_tflite, board, tmp_path / "speed", name="smoke_drsn", extra_sources=[selftest_c])
    size = fw_build.build(smoke_tflite, board, tmp_path / "size", name="smoke_drsn", extra_sources=[selftest_c],
                          optimize="size")
    saved = speed["model"]["weight_bytes"] - size["model"]["weight_bytes"]
    assert saved > 0 and size["model"]["weights8_layers"]
    # the image shrinks by the weights' bytes, less the int8 kernels' code
    assert 0 < speed["size"]["flash_bytes"] - size["size"]["flash_bytes"] <= saved
    assert speed["size"]["flash_bytes"] - size["size"]["flash_bytes"] > saved - 2048
    q, ref = vectors
    with boards.Emulator(board, size["elf"]) as emu:
        dev = Device(emu.url, timeout=5.0)
        (banner,) = dev.console(30)
        out, _ = dev.infer(q)
    assert f"drsn-edge: {board} smoke_drsn self-test PASS" in banner, banner
    assert np.array_equal(out.reshape(len(q), -1), ref.reshape(len(q), -1))


def test_a_flash_budget_keeps_int8_weights_where_they_save_most(smoke_tflite, selftest_c, tmp_path):
    """Between the size and speed images' flash, a speed build keeps int8 weights in some
    layers only (the most bytes per MAC first) and fits; below the size image it is refused."""
    from drsn_edge.errors import UserError
    common = dict(name="smoke_drsn", extra_sources=[selftest_c])
    speed = fw_build.build(smoke_tflite, "mps2-an386", tmp_path / "speed", **common)
    size = fw_build.build(smoke_tflite, "mps2-an386", tmp_path / "size", optimize="size", **common)
    budget = (speed["size"]["flash_bytes"] + size["size"]["flash_bytes"]) // 2
    mid = fw_build.build(smoke_tflite, "mps2-an386", tmp_path / "mid", flash_budget=budget, **common)
    # the layers the budget picked, beyond those int8 in speed mode already (one-row FCs)
    already = set(speed["model"]["weights8_layers"])
    chosen = sorted(set(mid["model"]["weights8_layers"]) - already)
    assert mid["size"]["flash_bytes"] <= budget < speed["size"]["flash_bytes"]
    assert chosen and set(chosen) | already < set(size["model"]["weights8_layers"])
    layers = {l["index"]: l for l in speed["model"]["layers"]}
    small = {l["index"]: l["const_bytes"] for l in size["model"]["layers"]}
    per_mac = {k: (layers[k]["const_bytes"] - small[k]) / layers[k]["macs"]
               for k in size["model"]["weights8_layers"] if k not in already}
    assert min(per_mac[k] for k in chosen) >= max(
        (v for k, v in per_mac.items() if k not in chosen), default=0) * 0.999
    with boards.Emulator("mps2-an386", mid["elf"]) as emu:
        (banner,) = Device(emu.url, timeout=5.0).console(30)
    assert "self-test PASS" in banner, banner
    with pytest.raises(UserError, match=r"firmware.flash_budget = [\d,]+ even with int8 weights"):
        fw_build.build(smoke_tflite, "mps2-an386", tmp_path / "low", flash_budget=size["size"]["flash_bytes"] - 1,
                       **common)
    assert not (tmp_path / "low" / "firmware.elf").exists()     # no image over the budget is left

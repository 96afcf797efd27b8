"""The hardware-in-the-loop runner (`drsn-edge hil`) against the emulated board with the
smoke model: the sweep bit-exact with every report, stale firmware refused, --debug layer
by layer, a vector file, resume after a cut, a run through a fault-injecting proxy, board
faults (HardFault, hang, reset) as clear errors, and the pytest plugin (`dut`)."""

import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import boards
from drsn_edge import config
from drsn_edge.cli import main
from firmware_gen.build import HARNESS_INCLUDE_DIRS, HARNESS_SOURCES
from runner import debug as layer_debug
from runner import hil
from runner.link import Device, DeviceError
from runner.stream import Streamer

from tests.test_protocol import FaultyProxy

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "configs" / "smoke.toml"
FAULT_MODEL = Path(__file__).resolve().parent / "firmware" / "fault_model.c"
LIMIT = 140              # 20 windows under each of the smoke sweep's 7 conditions


@pytest.fixture(scope="module")
def hil_build(smoke_build, smoke_tflite, tmp_path_factory):
    """A build/ with the smoke test set and the smoke model as the model to validate."""
    build = tmp_path_factory.mktemp("hil_build")
    shutil.copytree(smoke_build / "data", build / "data")
    (build / "model").mkdir()
    (build / "model" / "model_int8.tflite").write_bytes(smoke_tflite)
    return build


@pytest.fixture(scope="module")
def board(smoke_firmware):
    with boards.Emulator("mps2-an386", smoke_firmware) as emu:
        yield emu


@pytest.fixture
def run_hil(monkeypatch, capsys):
    """`drsn-edge hil` with the smoke config in `build`: (exit code, stdout, stderr)."""
    def run(build, *args):
        monkeypatch.setenv("DRSN_EDGE_BUILD", str(build))
        capsys.readouterr()
        code = main(["hil", "--config", str(SMOKE), "--build-dir", str(build), *args])
        out, err = capsys.readouterr()
        return code, out, err
    return run


def fresh_build(hil_build, tmp_path) -> Path:
    build = tmp_path / "build"
    shutil.copytree(hil_build, build)
    return build


def smoke_vectors(build, limit=LIMIT):
    os.environ["DRSN_EDGE_BUILD"] = str(build)
    cfg = config.load(SMOKE)
    model = (build / "model" / "model_int8.tflite").read_bytes()
    return hil.load_vectors(cfg, None, hil.model_input_of(model), limit), model


def fake_quantize_outputs(build, per=10):
    """quantize_outputs.npz as the quantize stage writes it, for the first `per` windows of
    each condition: TFLM's real outputs, a float model that is always right and a QAT model
    that is always wrong, so the report's float/QAT accuracy can be checked exactly."""
    from quantize import parity
    from training import dataset
    test = dataset.load_test(build / "data" / "test.npz")
    cfg = config.load(SMOKE)
    conds = [("clean", None)] + [(k, float(s)) for k in cfg["data"]["noise_types"]
                                 for s in cfg["eval"]["snr_db"]]
    x = np.concatenate([test["clean"][:per] if k == "clean" else test[(k, s)][:per]
                        for k, s in conds])
    y = np.tile(test["y"][:per], len(conds))
    model = (build / "model" / "model_int8.tflite").read_bytes()
    onehot = np.eye(10, dtype=np.float32)
    names = ["x_clean" if k == "clean" else dataset.condition_key(k, s) for k, s in conds]
    (build / "reports").mkdir(exist_ok=True)
    from quantize.pipeline import tflm_provenance
    np.savez(build / "reports" / "quantize_outputs.npz", y=y, conditions=np.array(names),
             float=onehot[y], qat=onehot[(y + 1) % 10], tflm_int8=parity.run_tflm(model, x),
             **tflm_provenance(model, x))
    return per


# --- the run and its reports -------------------------------------------------------------

def test_hil_streams_the_sweep_bit_exact_and_writes_every_report(hil_build, board, run_hil,
                                                                tmp_path):
    build = fresh_build(hil_build, tmp_path)
    per = fake_quantize_outputs(build)
    code, out, err = run_hil(build, "--port", board.url, "--limit", str(LIMIT))
    assert code == 0, err
    assert f"{LIMIT}/{LIMIT} vectors bit-exact on mps2-an386" in out

    rep = json.loads((build / "reports" / "hil.json").read_text())
    assert rep["board"] == "mps2-an386" and rep["n_vectors"] == LIMIT
    assert rep["model_hash"] == hil.hashlib.sha256(
        (build / "model" / "model_int8.tflite").read_bytes()).hexdigest()
    assert rep["bit_exact"] is True and rep["n_bit_exact"] == LIMIT
    assert rep["mismatches"] == {"count": 0, "first": []}
    counts = rep["vectors_per_condition"]
    assert counts["clean"] == 20 and counts["pink"] == {"-5": 20, "10": 20}
    acc = rep["accuracy"]
    assert acc["device"] == acc["tflm"]
    assert set(acc["device"]) == {"clean", "gaussian", "pink", "laplacian"}
    # float is always right and QAT always wrong where quantize_outputs covers the window
    assert acc["float"]["clean"] == 1.0 and acc["qat"]["laplacian"]["-5"] == 0.0
    assert "quantize.parity_windows" in rep["accuracy_note"]
    assert rep["results"]["lost"] == 0 and rep["results"]["duplicated"] == 0
    assert rep["link"]["depth"] == 2 and rep["link"]["retries"] == 0
    # the windows quantize ran through TFLM are found (few here: all spot-checked)
    ref = rep["reference"]
    assert ref["spot_checked"] > 0 and ref["spot_check_failed"] is False
    assert ref["run_here"] + ref["reused_from_quantize"] == LIMIT
    assert rep["board_counters"]["invocations"] == LIMIT
    assert rep["vectors_per_second"] > 0 and rep["seconds"] > 0
    assert not (build / "reports" / hil.RESUME_FILE).exists()

    # Under -icount the work counter is exact: the report's figure is what the board
    # counts for the first request's vectors when asked again, one request at a time.
    vs, _ = smoke_vectors(build)
    assert vs.window is not None and (vs.window < per).sum() > 0
    with Device(board.url, timeout=5) as dev:
        first = vs.x[:rep["link"]["batch"]]
        outputs, work = dev.infer(first)
    assert rep["instructions_per_inference"] == int(np.median(work))
    assert rep["work"]["min"] <= rep["instructions_per_inference"] <= rep["work"]["max"]

    # What a serial line would carry: each vector's int8 input goes up once (COBS adds a
    # byte in 254, frame headers are shared by the batch); the answers are much smaller.
    ser, in_size = rep["serial"], vs.x[0].size
    assert ser["baud"] == 115200     # hil.baud = 0: the rate the image is built for
    assert in_size < ser["bytes_sent_per_vector"] < in_size * 1.01 + 16
    assert 0 < ser["bytes_received_per_vector"] < in_size / 4
    assert ser["vectors_per_second_at_baud"] < 11520 / in_size
    assert ser["vectors_per_second_by_baud"]["921600"] == pytest.approx(
        8 * ser["vectors_per_second_at_baud"], rel=0.01)

    suite = ET.parse(build / "reports" / "hil.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert int(suite.get("tests")) == len(cases) == 7 + 7 + 1
    assert int(suite.get("failures")) == 0
    assert {c.get("name") for c in cases if c.get("classname") == "hil.bit_exact"} == {
        "clean", "gaussian -5 dB", "gaussian 10 dB", "pink -5 dB", "pink 10 dB",
        "laplacian -5 dB", "laplacian 10 dB"}
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["board"] == "mps2-an386" and props["n_vectors"] == str(LIMIT)

    md = (build / "reports" / "hil.md").read_text()
    assert "all outputs bit-exact" in md and "| pink -5 dB | 20 | 20 |" in md
    for name in ("hil_accuracy_vs_snr.png", "hil_confusion.png"):
        assert (build / "reports" / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/{name}" in md


def test_the_shipped_qat_model_is_bit_exact_on_the_board(smoke_quantized, smoke_tflite, run_hil,
                                                         tmp_path):
    """What `make all` ships: the QAT model from `drsn-edge quantize` (firmware.model =
    "qat"), through `drsn-edge firmware` (codegen, build, boot self-test) and `drsn-edge hil`
    on the emulated default board, every vector bit for bit."""
    build = tmp_path / "build"
    shutil.copytree(smoke_quantized, build)
    qat = (build / "model" / "model_int8.tflite").read_bytes()
    assert qat != smoke_tflite        # not the PTQ model the other tests use
    os.environ["DRSN_EDGE_BUILD"] = str(build)
    assert main(["firmware", "--config", str(SMOKE), "--build-dir", str(build)]) == 0
    fw = json.loads((build / "reports" / "firmware.json").read_text())
    assert fw["board"] == "mps2-an386"
    assert fw["model"]["sha256"] == hil.hashlib.sha256(qat).hexdigest()
    assert fw["selftest"]["passed"] is True and "self-test PASS" in fw["selftest"]["line"]
    n = 105
    with boards.Emulator("mps2-an386", build / "firmware" / "mps2-an386" / "firmware.elf") as emu:
        code, out, err = run_hil(build, "--port", emu.url, "--limit", str(n))
    assert code == 0, err
    rep = json.loads((build / "reports" / "hil.json").read_text())
    assert rep["model_hash"] == hil.hashlib.sha256(qat).hexdigest()
    assert rep["n_vectors"] == rep["n_bit_exact"] == n and rep["bit_exact"] is True
    assert rep["mismatches"] == {"count": 0, "first": []}


def test_tflm_reference_reuses_the_quantize_run_only_for_its_model_and_inputs(hil_build, tmp_path,
                                                                             monkeypatch):
    """What quantize already ran through TFLM (same model bytes, same input bytes) is not
    run again; a spread of it is, and a cache that disagrees is dropped whole."""
    build = fresh_build(hil_build, tmp_path)
    fake_quantize_outputs(build, per=10)                     # 70 windows of 7 conditions
    monkeypatch.setenv("DRSN_EDGE_BUILD", str(build))
    vs, model = smoke_vectors(build, 140)                    # covers some of them
    truth = hil.tflm_outputs(model, vs.x)
    ref, info = hil.reference(model, vs.x)
    np.testing.assert_array_equal(ref, truth)
    covered = int(hil.host_models(vs, truth)["available"].sum())
    assert 0 < covered < len(vs)
    assert info["spot_checked"] == min(hil.SPOT_CHECKS, covered)
    assert info["reused_from_quantize"] == covered - info["spot_checked"]
    assert info["run_here"] == len(vs) - info["reused_from_quantize"]

    other = model[:-1] + bytes([model[-1] ^ 1])              # other model bytes: no reuse
    assert hil._quantize_reference(other) is None

    path = build / "reports" / "quantize_outputs.npz"
    with np.load(path) as z:
        saved = {k: z[k] for k in z.files}
    saved["tflm_int8"] = saved["tflm_int8"] ^ np.int8(1)     # a cache TFLM disagrees with
    np.savez(path, **saved)
    ref, info = hil.reference(model, vs.x)
    np.testing.assert_array_equal(ref, truth)
    assert info["spot_check_failed"] is True and info["reused_from_quantize"] == 0
    assert info["run_here"] == len(vs)


def test_host_outputs_from_another_model_are_not_used(hil_build, tmp_path):
    build = fresh_build(hil_build, tmp_path)
    fake_quantize_outputs(build)
    vs, model = smoke_vectors(build, 70)
    ref = hil.tflm_outputs(model, vs.x)
    fresh = hil.host_models(vs, ref)
    assert fresh["float"] is not None and 0 < fresh["available"].sum() < len(vs)
    ref[np.flatnonzero(fresh["available"])[0], 0] ^= 1   # as if from another model
    stale = hil.host_models(vs, ref)
    assert stale["float"] is None and "another model" in stale["note"]


def test_stale_firmware_is_refused_with_how_to_reflash(hil_build, board, run_hil, tmp_path):
    build = fresh_build(hil_build, tmp_path)
    model = build / "model" / "model_int8.tflite"
    model.write_bytes(model.read_bytes() + b"\0")     # the model changed since the flash
    code, _, err = run_hil(build, "--port", board.url)
    assert code == 2
    assert "stale firmware" in err and "drsn-edge flash" in err
    assert hil.hashlib.sha256(model.read_bytes()).hexdigest()[:12] in err
    assert err.count("\n") == 1                       # one line, no traceback


def test_debug_compares_every_layer_and_tau_with_the_host(hil_build, board, run_hil,
                                                          tmp_path):
    # No --port: the board is found through the state `drsn-edge flash` leaves.
    build = fresh_build(hil_build, tmp_path)
    state = {"board": "mps2-an386", "kind": "emulated", "url": board.url, "pid": os.getpid()}
    (build / "flash.json").write_text(json.dumps(state))
    code, out, err = run_hil(build, "--debug", "5")
    assert code == 0, err
    result = json.loads((build / "reports" / "hil_debug.json").read_text())
    assert result["vector"] == 5 and result["first_difference"] is None
    assert result["output_equal"] is True
    layers = result["layers"]
    assert len(layers) > 20 and all(row["status"] == "equal" for row in layers)
    assert [len(t["device"]) for t in result["tau"]] == [8, 16]    # channels per unit
    assert all(t["device_int8"] == t["host_int8"] for t in result["tau"])
    assert "all" in out and "layers equal TFLM" in out and "tau per channel" in out

    # The comparison names the first layer whose bytes differ.
    vs, model = smoke_vectors(build)
    with Device(board.url, timeout=5) as dev:
        dump = dev.debug(vs.x[5])
    bad = dump.layers[12]
    bad.data = bad.data.copy()
    bad.data.reshape(-1)[3] += 1
    later = dump.layers[30]
    later.data = later.data.copy()
    later.data.reshape(-1)[0] += 2
    found = layer_debug.compare(dump, model, vs.x[5])
    assert found["first_difference"]["name"] == bad.info.name
    assert found["first_difference"]["differing"] == 1
    assert found["first_difference"]["first_difference"]["element"] == 3

    state["board"] = "mps3-an547"
    (build / "flash.json").write_text(json.dumps(state))
    code, _, err = run_hil(build, "--debug", "5")
    assert code == 2 and "answers as a mps2-an386" in err


def test_vectors_from_a_file(hil_build, board, run_hil, tmp_path):
    build = fresh_build(hil_build, tmp_path)
    with np.load(build / "data" / "test.npz") as z:
        x = np.concatenate([z["x_clean"][:6], z["x_pink_-5"][:6]])
        y = np.concatenate([z["y"][:6], z["y"][:6]])
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=y, condition=np.array(["quiet"] * 6 + ["noisy"] * 6))
    code, out, err = run_hil(build, "--port", board.url, "--vectors", str(path))
    assert code == 0, err
    rep = json.loads((build / "reports" / "hil.json").read_text())
    assert rep["n_vectors"] == 12 and rep["bit_exact"] and rep["source"] == str(path)
    assert rep["vectors_per_condition"] == {"noisy": 6, "quiet": 6}
    assert rep["accuracy"]["device"] == rep["accuracy"]["tflm"]
    assert "qat" not in rep["accuracy"] and "from a file" in rep["accuracy_note"]

    np.savez(path, x=x[:, :100])
    code, _, err = run_hil(build, "--port", board.url, "--vectors", str(path))
    assert code == 2 and "the model takes (512, 1)" in err


# --- a run that stops, and a lossy link ----------------------------------------------------

def _cut_after(n_answers: int, original):
    """A Streamer.run that loses the link after n answers."""
    def run(self, batches):
        for n, item in enumerate(original(self, batches)):
            if n == n_answers:
                raise DeviceError("DISCONNECTED", "lost the link (cut by the test)")
            yield item
    return run


def test_a_stopped_run_resumes_without_losing_or_repeating_vectors(hil_build, board,
                                                                   run_hil, tmp_path,
                                                                   monkeypatch):
    build = fresh_build(hil_build, tmp_path)
    original = Streamer.run
    monkeypatch.setattr(Streamer, "run", _cut_after(3, original))
    code, _, err = run_hil(build, "--port", board.url, "--limit", str(LIMIT))
    assert code == 2 and "cut by the test" in err and "resumes" in err
    with np.load(build / "reports" / hil.RESUME_FILE) as z:
        kept = int(z["done"].sum())
    assert kept == 3 * 7

    monkeypatch.setattr(Streamer, "run", original)
    code, _, err = run_hil(build, "--port", board.url, "--limit", str(LIMIT))
    assert code == 0, err
    rep = json.loads((build / "reports" / "hil.json").read_text())
    assert rep["resumed_vectors"] == kept and rep["streamed_vectors"] == LIMIT - kept
    assert rep["board_counters"]["invocations"] == LIMIT - kept
    assert rep["bit_exact"] and rep["n_vectors"] == LIMIT
    assert not (build / "reports" / hil.RESUME_FILE).exists()


def test_a_stopped_raw_run_resumes_with_the_board_inputs_it_kept(hil_build, board, run_hil,
                                                                  tmp_path, monkeypatch):
    """Raw mode keeps the board's preprocessed inputs in the resume file too: the resumed
    run's preprocessing check covers the vectors of the first run (zeros there would be
    mismatches)."""
    build = fresh_build(hil_build, tmp_path)
    original = Streamer.run
    monkeypatch.setattr(Streamer, "run", _cut_after(3, original))
    code, _, err = run_hil(build, "--port", board.url, "--input", "raw", "--limit", "35")
    assert code == 2 and "resumes" in err
    with np.load(build / "reports" / hil.RESUME_FILE) as z:
        done, pre_in = z["done"].copy(), z["pre_in"].copy()
    assert done.sum() == 3 and (pre_in[done] != 0).any()

    monkeypatch.setattr(Streamer, "run", original)
    code, _, err = run_hil(build, "--port", board.url, "--input", "raw", "--limit", "35")
    assert code == 0, err
    rep = json.loads((build / "reports" / "hil.json").read_text())
    assert rep["resumed_vectors"] == 3 and rep["board_counters"]["invocations"] == 32
    assert rep["bit_exact"] and rep["preprocessing_bit_exact"]
    assert rep["preprocessing"]["n_bit_exact"] == 35


class LossyProxy(FaultyProxy):
    """The protocol test's proxy with damage a short run surely meets: the 2nd chunk relayed
    to the board loses a byte, the 4th has a bit flipped, and so has the 3rd towards the
    host; after that each chunk is damaged by chance (one in ten to the board, one in
    twenty back), and a few are delayed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.chunks = {True: 0, False: 0}

    def _damage(self, data, towards_board):
        data = bytearray(data)
        with self._lock:
            self.chunks[towards_board] += 1
            n = self.chunks[towards_board]
            at = self.rng.randrange(len(data))
            roll = self.rng.random()
            odds = 0.05 if towards_board else 0.025
            if (towards_board and n == 2) or (n > 4 and roll < odds):
                del data[at]
                self.counts["dropped"] += 1
            elif (towards_board and n == 4) or (not towards_board and n == 3) or (
                    n > 4 and roll < 2 * odds):
                data[at] ^= 1 << self.rng.randrange(8)
                self.counts["corrupted"] += 1
            elif roll > 1 - self.DELAY_ODDS:
                self.counts["delayed"] += 1
                time.sleep(self.rng.uniform(0.001, 0.05))
        return bytes(data)


def test_hil_through_a_fault_injecting_proxy_loses_and_duplicates_nothing(
        hil_build, board, run_hil, tmp_path):
    build = fresh_build(hil_build, tmp_path)
    proxy = LossyProxy(board.port, seed=5, cut_after=8_000)
    try:
        code, _, err = run_hil(build, "--port", proxy.url, "--limit", "42",
                               "--set", "hil.timeout_s=0.5", "--set", "hil.retries=30")
    finally:
        proxy.close()
    assert code == 0, err
    rep = json.loads((build / "reports" / "hil.json").read_text())
    print(f"\nhil through the proxy: {proxy.counts}; link {rep['link']}")
    assert rep["n_vectors"] == 42 and rep["bit_exact"] and rep["n_bit_exact"] == 42
    assert proxy.counts["cuts"] == 1 and rep["link"]["reconnects"] >= 1
    assert proxy.counts["dropped"] > 0 and proxy.counts["corrupted"] > 0
    assert rep["link"]["retries"] > 0 and rep["link"]["link_errors"] > 0


# --- board faults ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fault_firmware(smoke_tflite, tmp_path_factory):
    """Firmware that claims to run the smoke model and fails at its 10th inference."""
    digest = hil.hashlib.sha256(smoke_tflite).digest()
    init = "{" + ",".join(f"0x{b:02x}" for b in digest) + "}"
    out = tmp_path_factory.mktemp("fault_firmware")

    def build(kind):
        return boards.compile_firmware(
            "mps2-an386", [*HARNESS_SOURCES, FAULT_MODEL], HARNESS_INCLUDE_DIRS,
            out / f"{kind}.elf", defines=[f"MODEL_HASH_INIT={init}", "MODEL_IN=512",
                                          "MODEL_OUT=10", f"FAULT_KIND={kind}", "FAULT_AFTER=10"])
    return build


@pytest.mark.parametrize("kind, says", [(1, "the board crashed"), (2, "no usable answer"),
                                        (3, "the board restarted")],
                         ids=["hardfault", "hang", "reset"])
def test_board_faults_end_the_run_with_a_clear_error(kind, says, fault_firmware, hil_build,
                                                     run_hil, tmp_path):
    build = fresh_build(hil_build, tmp_path)
    with boards.Emulator("mps2-an386", fault_firmware(kind)) as emu:
        code, _, err = run_hil(build, "--port", emu.url, "--limit", "42",
                               "--set", "hil.timeout_s=2.0", "--set", "hil.retries=1")
        if kind == 1:
            assert emu.wait(timeout=5) == 3      # BOARD_EXIT_FAULT: QEMU ends with the board
    err = err.split("drsn-edge hil: error: ")[-1]     # after the progress bar
    assert code == 2 and says in err, err
    assert "vectors 7..13" in err, err     # the batch holding the 10th inference
    if kind == 1:
        # QEMU exits with the run's next request unread, which resets the connection and
        # can take the end of the fault line with it (seen under load); its start arrives.
        assert "FAULT HardFault" in err, err
        assert ("FAULT HardFault exc=3 pc=0x" in err and "the pc and cfsr fields" in err) \
            or "the rest of the report was lost with the link" in err, err


# --- the pytest plugin ---------------------------------------------------------------------

def test_example_user_hil_test(dut, hil_reference):
    """How a user writes a hardware-in-the-loop test: ask for `dut` (the board, real with
    --hil-port or emulated) and `hil_reference` (TFLM on the host)."""
    info = dut.info()
    x = np.random.default_rng(0).integers(-128, 128, (5, *info.input.shape), dtype=np.int8)
    outputs, work = dut.infer(x)
    assert np.array_equal(outputs, hil_reference(x))
    assert (work > 0).all()


USER_TEST = '''
import numpy as np

def test_board_matches_tflm(dut, hil_reference):
    info = dut.info()
    x = np.random.default_rng(1).integers(-128, 128, (4, *info.input.shape), dtype=np.int8)
    outputs, work = dut.infer(x)
    assert np.array_equal(outputs, hil_reference(x))
'''


def test_plugin_in_a_user_suite(smoke_firmware, smoke_tflite, board, tmp_path):
    (tmp_path / "test_user.py").write_text(USER_TEST)
    model = tmp_path / "model.tflite"
    model.write_bytes(smoke_tflite)

    def pytest_run(*args):
        env = {k: v for k, v in os.environ.items() if k != "DRSN_EDGE_BUILD"}
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "test_user.py", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    emulated = pytest_run("--hil-elf", str(smoke_firmware), "--hil-model", str(model))
    assert "1 passed" in emulated.stdout, emulated.stdout + emulated.stderr
    wrong_board = pytest_run("--hil-port", board.url, "--hil-board", "mps3-an547",
                             "--hil-model", str(model))
    assert wrong_board.returncode != 0
    assert "answers as a mps2-an386, not the mps3-an547" in wrong_board.stdout


def _failed_not_skipped(run, *says):
    """The inner session failed (an error in the fixture counts) and skipped nothing."""
    out = run.stdout + run.stderr
    assert run.returncode == 1, out                  # pytest: tests failed (not 0, not 5)
    assert "1 error" in run.stdout and "skipped" not in run.stdout, out
    for s in says:
        assert s in run.stdout, out


@pytest.fixture
def user_suite(tmp_path):
    (tmp_path / "test_user.py").write_text(USER_TEST)

    def pytest_run(*args):
        # No build/ in the inner session's directory: the plugin's defaults do not exist.
        env = {k: v for k, v in os.environ.items() if k != "DRSN_EDGE_BUILD"}
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "test_user.py", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
    return pytest_run


def test_plugin_fails_when_the_firmware_image_is_missing(user_suite, smoke_tflite, tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes(smoke_tflite)
    _failed_not_skipped(user_suite("--hil-board", "lm3s6965evb", "--hil-model", str(model)),
                        "no firmware image for the emulated lm3s6965evb: "
                        "build/firmware/lm3s6965evb/firmware.elf does not exist",
                        "--hil-elf PATH")
    _failed_not_skipped(user_suite("--hil-elf", str(tmp_path / "gone.elf"), "--hil-model", str(model)),
                        f"{tmp_path / 'gone.elf'} does not exist")


def test_plugin_fails_when_it_cannot_know_the_boards_model(user_suite, smoke_firmware, board,
                                                           tmp_path):
    # A real port and no model: the stale-firmware check and the references cannot run.
    _failed_not_skipped(user_suite("--hil-port", board.url),
                        "no model to check the board against: no --hil-model given and the "
                        "default build/model/model_int8.tflite does not exist",
                        "pass --hil-model PATH")
    # The same when the plugin boots the image itself.
    _failed_not_skipped(user_suite("--hil-elf", str(smoke_firmware)), "pass --hil-model PATH")
    _failed_not_skipped(user_suite("--hil-port", board.url, "--hil-model", str(tmp_path / "no.tflite")),
                        f"--hil-model {tmp_path / 'no.tflite'} does not exist")


def test_plugin_refuses_a_board_running_another_model(user_suite, board, tmp_path):
    other = tmp_path / "other.tflite"
    other.write_bytes(b"TFL3 not the model the board runs")
    run = user_suite("--hil-port", board.url, "--hil-model", str(other))
    assert run.returncode == 1 and "stale firmware" in run.stdout, run.stdout + run.stderr


def test_a_mismatch_is_listed_and_fails_its_junit_case():
    from types import SimpleNamespace
    from runner import report
    n, classes = 6, [f"c{i}" for i in range(3)]
    ref = np.tile(np.array([[-128, 100, -100]], np.int8), (n, 1))
    out = ref.copy()
    out[4, 2] = -97                                      # 3 LSB off, same class
    vs = hil.Vectors(np.zeros((n, 4, 1), np.int8), np.ones(n, np.int64),
                     np.array([0, 1, 0, 1, 0, 1]), None, [("quiet", None), ("noisy", None)],
                     "test", classes)
    run = {"out": out, "work": np.full(n, 1000, np.uint64), "quiet": np.zeros(n, bool),
           "resumed": 0, "batch": 3, "depth": 2, "seconds": 1.0, "streamed": n,
           "link": {"requests": 2, "retries": 0, "timeouts": 0, "bad_frames": 0,
                    "link_errors": 0, "stale_frames": 0, "reconnects": 0},
           "board_counters": {"invocations": n}}
    info = SimpleNamespace(board="mps2-an386", firmware_version="0.1.0", model_name="m",
                           model_hash=bytes(32), work_unit="instructions")
    target = hil.Target("socket://127.0.0.1:1", 115200)
    host = {"float": None, "qat": None, "available": np.zeros(n, bool), "note": ""}
    rep = report.build({}, target, info, "m.tflite", vs, run, ref, host, 1.5)
    assert rep["bit_exact"] is False and rep["n_bit_exact"] == n - 1
    assert rep["mismatches"]["count"] == 1
    first = rep["mismatches"]["first"][0]
    assert (first["index"], first["condition"], first["max_lsb"]) == (4, "quiet", 3)
    assert rep["accuracy"]["device"] == rep["accuracy"]["tflm"] == {"quiet": 1.0, "noisy": 1.0}
    suite = ET.fromstring(report.junit(rep)).find("testsuite")
    failed = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [("hil.bit_exact", "quiet")]
    assert "vector 4 (max 3 LSB)" in failed[0].find("failure").text
    assert suite.get("failures") == "1"
    assert "MISMATCH: 1 of 6" in report.summary_line(rep, [Path("hil.json")])
    # 6 vectors in 1 s: 1000 would take 166.7 s, so the 60 s target is reported missed
    assert rep["target"] == {"vectors": 1000, "seconds": 60.0,
                             "seconds_for_target_vectors": 166.7, "met": False}
    assert "- target: 1000 vectors in <= 60 s: **missed** (1000 vectors at this rate take " \
           "166.7 s)" in report.markdown(rep, [])


# --- raw input: int16 windows, preprocessed on the board --------------------------------------

def raw_windows(build, n=1000, seed=0):
    """n int16 windows from the smoke test set (every condition) at random loudness (RMS
    from a few counts to well past clipping) and DC offsets, plus the edge cases (silent,
    DC only, full-scale squares, spikes, clipped, tiny)."""
    from drsn_edge.preprocess import to_int16
    from tests.test_preprocess import edge_windows
    from training import dataset
    test = dataset.load_test(build / "data" / "test.npz")
    float_windows = np.concatenate([test[k] for k in test if k == "clean" or isinstance(k, tuple)])
    float_windows = float_windows.reshape(len(float_windows), -1)
    rng = np.random.default_rng(seed)
    pick = float_windows[rng.integers(len(float_windows), size=n)]
    gain = 10.0 ** rng.uniform(-3.2, 0.7, (n, 1))
    dc = rng.uniform(-3, 3, (n, 1)) * (rng.random((n, 1)) < 0.5)
    x = to_int16(pick * gain + dc, 8.0)
    edges = np.stack(list(edge_windows(x.shape[1], rng).values()))
    names = np.array(["sensor"] * n + ["edge"] * len(edges))
    return np.concatenate([x, edges]), names


def test_hil_raw_mode_1000_windows_bit_exact(hil_build, board, run_hil, tmp_path):
    """The acceptance run: over a thousand int16 windows through `drsn-edge hil --input raw`
    on the emulated default board; every int8 input the board's preprocessing makes equals
    drsn_edge.preprocess, and every output equals TFLM on that input."""
    from drsn_edge.preprocess import preprocess
    from firmware_gen import tflm_oracle
    build = fresh_build(hil_build, tmp_path)
    x, names = raw_windows(build)
    vectors = tmp_path / "raw.npz"
    np.savez(vectors, x=x, condition=names)
    code, out, err = run_hil(build, "--port", board.url, "--input", "raw", "--vectors",
                             str(vectors))
    assert code == 0, err
    n = len(x)
    assert n >= 1000 and f"{n}/{n} vectors bit-exact" in out
    assert "raw input: preprocessing bit-exact" in out
    rep = json.loads((build / "reports" / "hil.json").read_text())
    assert rep["input_kind"] == "raw" and rep["n_vectors"] == n
    assert rep["bit_exact"] is True and rep["preprocessing_bit_exact"] is True
    pre = rep["preprocessing"]
    assert pre["n_bit_exact"] == n and pre["mismatches"] == {"count": 0, "samples": 0, "first": []}
    assert pre["sensor_full_scale"] == 8.0
    assert 0 < pre["work_per_window"] and 0 < pre["share_of_inference"] < 0.5
    assert rep["board_counters"]["invocations"] == n and rep["link"]["batch"] == 1
    assert {c.get("classname") for c in ET.parse(build / "reports" / "hil.xml").getroot()
            .iter("testcase")} >= {"hil.preprocessing"}
    assert "raw input (int16 at full scale 8)" in (build / "reports" / "hil.md").read_text()

    # What the report claims, checked here on a few windows without the runner.
    model = (build / "model" / "model_int8.tflite").read_bytes()
    inp = hil.model_input_of(model)
    some = x[[0, 1, n - 15, n - 14, n - 1]]          # sensor windows, zeros, DC, a ramp
    want_in = preprocess(some, inp.scale, inp.zero_point)
    want_out = tflm_oracle.run(model, want_in.reshape(len(some), *inp.shape))
    with Device(board.url, timeout=5) as dev:
        for xi, wi, wo in zip(some, want_in, want_out):
            got = dev.infer_raw(xi)
            np.testing.assert_array_equal(got.input, wi)
            np.testing.assert_array_equal(got.output, np.asarray(wo).reshape(-1))
    assert (want_in[2:4] == inp.zero_point).all()     # the silent and the DC window


def test_hil_raw_sweep_reports_and_debug(hil_build, board, run_hil, tmp_path):
    build = fresh_build(hil_build, tmp_path)
    code, out, err = run_hil(build, "--port", board.url, "--input", "raw", "--limit", "70")
    assert code == 0, err
    rep = json.loads((build / "reports" / "hil.json").read_text())
    assert rep["input_kind"] == "raw" and rep["preprocessing_bit_exact"] is True
    assert rep["n_bit_exact"] == 70 and "full scale 8" in rep["source"]
    assert rep["accuracy"]["device"] == rep["accuracy"]["tflm"]
    assert "raw input" in rep["accuracy_note"]        # float/QAT not comparable here
    # the same windows as the int8 sweep, the int8 inputs made by the preprocessing
    cfg = config.load(SMOKE)
    model = (build / "model" / "model_int8.tflite").read_bytes()
    vs = hil.load_vectors(cfg, None, hil.model_input_of(model), 70, raw=True)
    int8_vs, _ = smoke_vectors(build, 70)
    assert np.array_equal(vs.y, int8_vs.y) and vs.raw.dtype == np.int16
    # the model takes the input contract, the sweep's int16 samples are those its model
    # inputs came from: raw and int8 runs stream the same int8 inputs
    np.testing.assert_array_equal(vs.x, int8_vs.x)

    code, out, err = run_hil(build, "--port", board.url, "--input", "raw", "--debug", "3")
    assert code == 0, err
    assert "preprocess (int16 -> int8" in out and "the int8 input equals the host's" in out
    dbg = json.loads((build / "reports" / "hil_debug.json").read_text())
    assert dbg["preprocessing"]["differing"] == 0 and dbg["preprocessing"]["work"] > 0


def test_hil_raw_mismatch_in_the_preprocessing_fails_the_run(hil_build, board, run_hil,
                                                             tmp_path, monkeypatch):
    """A host expectation that differs from what the board made (one sample of vector 5
    shifted by one LSB) is reported as a preprocessing mismatch, exit 1."""
    from drsn_edge import preprocess as pre
    real = pre.preprocess

    def off_by_one(x, scale, zp):
        q = real(x, scale, zp)
        if q.ndim == 2 and len(q) > 5:
            q = q.copy()
            q[5, 0] = q[5, 0] + 1 if q[5, 0] < 127 else q[5, 0] - 1
        return q
    monkeypatch.setattr(pre, "preprocess", off_by_one)
    build = fresh_build(hil_build, tmp_path)
    x, names = raw_windows(build, 20)
    np.savez(tmp_path / "raw.npz", x=x, condition=names)
    code, out, err = run_hil(build, "--port", board.url, "--input", "raw", "--vectors",
                             str(tmp_path / "raw.npz"))
    assert code == 1
    assert "PREPROCESSING MISMATCH in 1 vectors (first: vector 5)" in out
    rep = json.loads((build / "reports" / "hil.json").read_text())
    assert rep["preprocessing_bit_exact"] is False
    first = rep["preprocessing"]["mismatches"]["first"][0]
    assert (first["index"], first["samples_differing"], first["max_lsb"]) == (5, 1, 1)


def test_hil_raw_refuses_int8_vectors_in_one_line(hil_build, board, run_hil, tmp_path):
    build = fresh_build(hil_build, tmp_path)
    np.savez(tmp_path / "q.npz", x=np.zeros((3, 512), np.int8))
    code, _, err = run_hil(build, "--port", board.url, "--input", "raw", "--vectors",
                           str(tmp_path / "q.npz"))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "int16 sensor windows" in err and not (build / "reports" / "hil.json").exists()

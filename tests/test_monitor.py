"""The streaming monitor: the integer smoothing on hand-checked numbers, the MONITOR/STREAM
commands on the emulated board (the protocol tests' hand-written model, whose outputs
tests/test_protocol.py reference_model reproduces) bit-exact against the host for several
hops, chunkings and smoothings, every bad request as an ERROR with the board still
working, and `drsn-edge monitor` end to end with the smoke model."""

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import boards
from drsn_edge import preprocess
from drsn_edge.cli import main
from firmware_gen.build import HARNESS_INCLUDE_DIRS
from runner import monitor
from runner import protocol as proto
from runner.link import Device, DeviceError
from runner.protocol import Command
from tests.test_protocol import SOURCES, reference_model

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "configs" / "smoke.toml"
WINDOW = 1024          # the protocol tests' model
OUT = 16


# --- the smoothing rule, by hand ------------------------------------------------------------

def test_majority_counts_votes_over_the_last_windows():
    classes = [1, 1, 2, 2, 3, 2]
    outputs = np.zeros((6, 4), np.int8)
    # k=2: {1,1,2} -> 1; k=3: {1,2,2} -> 2; k=4: {2,2,3} -> 2; k=5: {2,3,2} -> 2
    assert monitor.smooth(classes, outputs, "majority", 3).tolist() == [1, 1, 1, 2, 2, 2]
    assert monitor.smooth(classes, outputs, "majority", 1).tolist() == classes


def test_majority_ties_go_to_the_most_recent_class():
    outputs = np.zeros((4, 5), np.int8)
    # k=1: {0: 1, 1: 1} -> 1 (latest); k=3: {4: 2, 2: 2}, latest is 2
    assert monitor.smooth([0, 1], outputs[:2], "majority", 3).tolist() == [0, 1]
    assert monitor.smooth([4, 2, 4, 2], outputs, "majority", 4).tolist() == [4, 2, 4, 2]
    assert monitor.smooth([4, 2, 4, 3], outputs, "majority", 4).tolist() == [4, 2, 4, 4]


def test_mean_is_the_argmax_of_summed_int8_outputs():
    outputs = np.array([[10, 20, -5], [30, -10, 0], [-128, 127, 127], [0, 0, 0]], np.int8)
    classes = monitor.argmax(outputs)
    assert classes.tolist() == [1, 0, 1, 0]           # ties: the lowest index
    # sums over 2: [10,20,-5] -> 1; [40,10,-5] -> 0; [-98,117,127] -> 2; [-128,127,127] -> 1
    assert monitor.smooth(classes, outputs, "mean", 2).tolist() == [1, 0, 2, 1]


def test_mean_and_majority_differ_where_confidence_matters():
    outputs = np.array([[100, 90], [100, 90], [-128, 127]], np.int8)
    classes = monitor.argmax(outputs)
    assert monitor.smooth(classes, outputs, "majority", 3).tolist() == [0, 0, 0]
    assert monitor.smooth(classes, outputs, "mean", 3).tolist() == [0, 0, 1]   # 72 vs 307
    # int8 sums of 32 windows do not wrap
    many = np.full((32, 2), [-128, 127], np.int8)
    assert monitor.smooth(monitor.argmax(many), many, "mean", 32)[-1] == 1


def test_window_starts_are_every_hop_while_a_whole_window_fits():
    assert monitor.window_starts(1000, 512, 256).tolist() == [0, 256]
    assert monitor.window_starts(1024, 512, 256).tolist() == [0, 256, 512]
    assert monitor.window_starts(511, 512, 256).tolist() == []


# --- on the emulated board --------------------------------------------------------------------

@pytest.fixture(scope="module")
def device(tmp_path_factory):
    elf = boards.compile_firmware(boards.DEFAULT_BOARD, SOURCES, HARNESS_INCLUDE_DIRS,
                                  tmp_path_factory.mktemp("monitor") / "fw.elf")
    with boards.Emulator(boards.DEFAULT_BOARD, elf) as emu:
        with Device(emu.url, timeout=3.0) as dev:
            yield dev


def host_verdicts(signal, info, hop, mode, n):
    starts = monitor.window_starts(len(signal), WINDOW, hop)
    windows = np.lib.stride_tricks.sliding_window_view(signal, WINDOW)[starts]
    x = preprocess.preprocess(windows, info.input.scale, info.input.zero_point)
    y = reference_model(x)[0].reshape(len(x), -1)
    classes = monitor.argmax(y)
    return {"start": starts, "crc": [zlib.crc32(r.tobytes()) for r in x], "output": y,
            "class": classes, "smoothed": monitor.smooth(classes, y, mode, n)}


def board_verdicts(dev, signal, hop, mode, n, chunk):
    ack = dev.monitor(hop, mode, n)
    assert (ack.window, ack.hop, ack.mode, ack.smooth_windows) == (WINDOW, hop, mode, n)
    got = {k: [] for k in ("start", "cls", "smoothed", "input_crc", "output")}
    for at in range(0, len(signal), chunk):
        v = dev.stream(signal[at:at + chunk], end=at + chunk >= len(signal))
        for k in got:
            got[k] += list(getattr(v, k))
    assert v.ended and v.received == len(signal)
    return {k: np.array(val) for k, val in got.items()}, v


def loud_and_quiet(seed, n=6000):
    """Noise whose loudness changes every 500 samples (from a few counts to clipping), so
    windows differ in class and the smoothing has ties and changes to follow."""
    rng = np.random.default_rng(seed)
    gain = np.repeat(rng.choice([0.002, 0.3, 1.0, 3.0, 20.0], n // 500 + 1), 500)[:n]
    return np.clip(rng.normal(0, 1500, n) * gain, -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("hop,mode,n,chunk", [(512, "majority", 3, 300), (300, "mean", 4, 1000),
                                              (1024, "majority", 1, 2047), (1, "mean", 32, 1),
                                              (77, "majority", 5, 77)])
def test_streamed_verdicts_equal_the_host_bit_for_bit(device, hop, mode, n, chunk):
    signal = loud_and_quiet(hop)[:1200] if hop == 1 else loud_and_quiet(hop)
    got, last = board_verdicts(device, signal, hop, mode, n, chunk)
    exp = host_verdicts(signal, device.info(), hop, mode, n)
    assert len(got["start"]) == len(exp["start"]) > 0
    assert got["start"].tolist() == exp["start"].tolist()
    assert got["input_crc"].tolist() == exp["crc"]
    assert np.array_equal(got["output"].astype(np.int8), exp["output"])
    assert got["cls"].tolist() == exp["class"].tolist()
    assert got["smoothed"].tolist() == exp["smoothed"].tolist()
    # samples after the last window's end wait for the next hop
    assert last.until_next == hop - (len(signal) - WINDOW) % hop


def test_a_repeated_stream_request_is_answered_without_consuming_samples_twice(device):
    signal = loud_and_quiet(9, 3000)
    device.monitor(256, "majority", 3)
    wire = proto.encode_frame(4321, Command.STREAM, proto.stream_payload(signal[:1100]))
    device.send_raw(wire)
    (first,) = device.receive(timeout=3)
    device.send_raw(wire)                 # the answer was "lost": the host sends it again
    (again,) = device.receive(timeout=3)
    assert first == again and first.cmd == Command.VERDICTS
    v = proto.parse_verdicts(first.payload, OUT)
    assert v.received == 1100 and v.start.tolist() == [0]
    rest = device.stream(signal[1100:], end=True)
    assert rest.received == 3000         # 1100 counted once
    exp = host_verdicts(signal, device.info(), 256, "majority", 3)
    assert [0, *rest.start.tolist()] == exp["start"].tolist()
    assert rest.smoothed.tolist() == exp["smoothed"][1:].tolist()


def error(device, cmd, payload):
    with pytest.raises(DeviceError) as info:
        device.request(cmd, payload)
    return info.value.code, info.value.detail


def test_bad_stream_requests_get_an_error_and_the_board_keeps_working(device):
    x = loud_and_quiet(3, 4000)
    mon = proto.MONITOR_REQUEST.pack
    assert error(device, Command.MONITOR, mon(0, 0, 3)) == ("BAD_HOP", WINDOW)
    assert error(device, Command.MONITOR, mon(WINDOW + 1, 0, 3)) == ("BAD_HOP", WINDOW)
    assert error(device, Command.MONITOR, mon(256, 2, 3)) == ("BAD_SMOOTHING", 32)
    assert error(device, Command.MONITOR, mon(256, 0, 0)) == ("BAD_SMOOTHING", 32)
    assert error(device, Command.MONITOR, mon(256, 0, 33)) == ("BAD_SMOOTHING", 32)
    assert error(device, Command.MONITOR, mon(256, 0, 3)[:-1])[0] == "BAD_LENGTH"
    # no stream yet (a refused MONITOR starts none)
    assert error(device, Command.STREAM, proto.stream_payload(x[:10])) == ("NOT_STREAMING", 0)
    device.monitor(1, "majority", 3)
    # an odd number of sample bytes, and an empty payload
    assert error(device, Command.STREAM, proto.stream_payload(x[:10]) + b"\x01") == ("BAD_LENGTH", 22)
    assert error(device, Command.STREAM, b"") == ("BAD_LENGTH", 0)
    # hop 1: a chunk completing more windows than one answer holds is refused whole
    most = device.monitor(1, "majority", 3).max_verdicts
    assert device.stream(x[:WINDOW - 1]).start.tolist() == []
    assert error(device, Command.STREAM, proto.stream_payload(x[WINDOW - 1:WINDOW + most])) \
        == ("BATCH_TOO_LARGE", most)
    v = device.stream(x[WINDOW - 1:WINDOW - 1 + most])       # exactly `most` fits
    assert v.start.tolist() == list(range(most)) and v.received == WINDOW - 1 + most
    # the stream stops mid-window: END before a whole window is an error, not a hang
    device.monitor(256, "mean", 2)
    device.stream(x[:600])
    assert error(device, Command.STREAM, proto.stream_payload(x[600:700], end=True)) \
        == ("STREAM_SHORT", 700)
    assert error(device, Command.STREAM, proto.stream_payload(x[:10]))[0] == "NOT_STREAMING"
    # and after all that the board streams correctly
    got, _ = board_verdicts(device, x, 256, "mean", 2, 500)
    exp = host_verdicts(x, device.info(), 256, "mean", 2)
    assert got["smoothed"].tolist() == exp["smoothed"].tolist()
    assert device.ping(b"alive") < 1


# --- `drsn-edge monitor` with the smoke model ---------------------------------------------------

@pytest.fixture(scope="module")
def monitor_build(smoke_build, smoke_tflite, tmp_path_factory):
    build = tmp_path_factory.mktemp("monitor_build")
    shutil.copytree(smoke_build / "data", build / "data")
    (build / "model").mkdir()
    (build / "model" / "model_int8.tflite").write_bytes(smoke_tflite)
    return build


@pytest.fixture(scope="module")
def smoke_board(smoke_firmware):
    with boards.Emulator("mps2-an386", smoke_firmware) as emu:
        yield emu


def run_monitor(build, monkeypatch, capsys, *args):
    monkeypatch.setenv("DRSN_EDGE_BUILD", str(build))
    capsys.readouterr()
    code = main(["monitor", "--config", str(SMOKE), "--build-dir", str(build), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_monitor_streams_the_bundled_recording_bit_exact(monitor_build, smoke_board,
                                                        monkeypatch, capsys):
    code, out, err = run_monitor(monitor_build, monkeypatch, capsys, "--port", smoke_board.url)
    assert code == 0, err
    rep = json.loads((monitor_build / "reports" / "monitor.json").read_text())
    fs, window, hop = 12000, 512, 256
    n = (4 * fs - window) // hop + 1                   # 4 s of signal, hop = window / 2
    assert rep["board"] == "mps2-an386" and rep["hop"] == hop and rep["window"] == window
    assert rep["n_windows"] == rep["n_windows_expected"] == n
    assert rep["bit_exact"] is True and rep["preprocessing_bit_exact"] is True
    assert [w["start"] for w in rep["timeline"]] == [k * hop for k in range(n)]
    assert out.count("  ok") == n and "DIFFERS" not in out
    assert rep["instructions_per_window"] > rep["preprocessing_instructions"] > 0
    rt = rep["realtime_margin"]
    assert rt["instructions_per_second_of_signal"] == pytest.approx(
        rep["instructions_per_window"] * fs / hop, rel=1e-6)
    assert rt["margin"] == pytest.approx(168e6 / rt["instructions_per_second_of_signal"], rel=1e-2)
    assert rep["memory"] == {"ring_bytes": 2 * window,
                             "scratch_bytes": rep["memory"]["scratch_bytes"]}
    # the host's expectation, recomputed here from the bundled recording the run wrote
    from training import recordings
    rec = recordings.load_signal(monitor_build / "monitor" / monitor.RECORDING_NAME, "", fs)
    samples = preprocess.to_int16(rec, 8.0)
    model = (monitor_build / "model" / "model_int8.tflite").read_bytes()
    exp = monitor.expected(model, samples, hop, "majority", 5)
    assert [w["class"] for w in rep["timeline"]] == exp["class"].tolist()
    assert [w["smoothed_class"] for w in rep["timeline"]] == exp["smoothed"].tolist()
    assert (monitor_build / "reports" / "plots" / "monitor.png").read_bytes()[:4] == b"\x89PNG"
    assert "bit-exact" in (monitor_build / "reports" / "monitor.md").read_text()


def test_monitor_streams_a_recording_file_with_mean_smoothing(monitor_build, smoke_board, tmp_path,
                                                              monkeypatch, capsys):
    rng = np.random.default_rng(4)
    t = np.arange(9000) / 12000.0
    signal = np.sin(2 * np.pi * 157 * t) * np.where(t < 0.4, 0.5, 3.0) + rng.normal(0, 0.3, len(t))
    path = tmp_path / "rec.csv"
    path.write_text("g\n" + "\n".join(f"{v:.6f}" for v in signal) + "\n")
    code, out, err = run_monitor(monitor_build, monkeypatch, capsys, "--port", smoke_board.url,
                                 "--recording", str(path), "--set", "monitor.smooth='mean'",
                                 "--set", "monitor.smooth_windows=4", "--set", "monitor.hop=300")
    assert code == 0, err
    rep = json.loads((monitor_build / "reports" / "monitor.json").read_text())
    n = (9000 - 512) // 300 + 1
    assert rep["source"] == str(path) and rep["n_windows"] == n and rep["hop"] == 300
    assert rep["bit_exact"] and rep["preprocessing_bit_exact"] and rep["truth"] is None
    assert rep["tail_samples"] == 9000 - ((n - 1) * 300 + 512)
    from training import recordings
    samples = preprocess.to_int16(recordings.load_signal(path), 8.0)
    exp = monitor.expected((monitor_build / "model" / "model_int8.tflite").read_bytes(),
                           samples, 300, "mean", 4)
    assert [w["smoothed_class"] for w in rep["timeline"]] == exp["smoothed"].tolist()


def test_monitor_refuses_a_hop_longer_than_the_window_before_streaming(monitor_build, smoke_board,
                                                                       monkeypatch, capsys):
    code, out, err = run_monitor(monitor_build, monkeypatch, capsys, "--port", smoke_board.url,
                                 "--set", "monitor.hop=513")
    assert code == 2 and "monitor.hop = 513" in err and len(err.strip().splitlines()) == 1


# --- the standalone image (firmware.standalone) on every emulated board -----------------------

def read_standalone_lines(board, elf, timeout=120.0):
    """Every line the standalone image prints, up to its end line."""
    with boards.Emulator(board, elf) as emu, Device(emu.url, timeout=timeout) as dev:
        lines = []
        while not any(line.startswith("drsn-edge: standalone end") for line in lines):
            got = dev.console(timeout)
            assert got, f"{board} stopped printing; last lines: {lines[-3:]}"
            lines += got
    return lines


@pytest.mark.parametrize("board", boards.available())
def test_standalone_image_prints_the_hosts_verdicts(board, monitor_build, tmp_path, monkeypatch,
                                                    capsys):
    from drsn_edge import config
    from firmware_gen import stage
    build = tmp_path / "build"
    shutil.copytree(monitor_build / "data", build / "data")
    shutil.copytree(monitor_build / "model", build / "model")
    monkeypatch.setenv("DRSN_EDGE_BUILD", str(build))
    assert main(["firmware", "--config", str(SMOKE), "--build-dir", str(build), "--board", board,
                 "--standalone", "--set", "monitor.smooth='mean'", "--set",
                 "monitor.smooth_windows=3", "--set", "firmware.standalone_seconds=0.5"]) == 0
    rep = json.loads((build / "reports" / "firmware.json").read_text())
    assert rep["standalone"]["samples"] == 6000 and rep["standalone"]["hop"] == 256
    assert rep["monitor"]["ring_bytes"] == 1024 and rep["monitor"]["scratch_bytes"] > 512
    lines = read_standalone_lines(board, build / "firmware" / board / "firmware.elf")
    assert "self-test PASS" in lines[0]
    got = stage.parse_verdict_lines(lines)
    cfg = config.load(SMOKE, ["monitor.smooth='mean'", "monitor.smooth_windows=3",
                              "firmware.standalone_seconds=0.5"])
    model = (build / "model" / "model_int8.tflite").read_bytes()
    rec = stage.standalone_recording(cfg, model)
    exp = monitor.expected(model, rec["samples_i16"], 256, "mean", 3)
    n = (6000 - 512) // 256 + 1
    assert len(got["start"]) == len(exp["start"]) == n
    assert got["index"].tolist() == list(range(n))
    assert got["start"].tolist() == exp["start"].tolist()
    assert np.array_equal(got["output"], exp["output"].astype(np.int64))
    assert got["class"].tolist() == exp["class"].tolist()
    assert got["smoothed"].tolist() == exp["smoothed"].tolist()
    assert lines[-1] == f"drsn-edge: standalone end, {n} verdicts, 6000 samples"


# --- the C twin of the smoothing, compiled for the host, on the same hand-checked numbers -----

STUB_C = r"""
#include <stdint.h>
#include "model_api.h"
static model_tensor_info in_info = {"in", 0, 1, {1}, 1, 1.0f, 0};
static model_tensor_info out_info = {"out", 0, 1, {1}, 1, 1.0f, 0};
const model_tensor_info *model_input(void) { return &in_info; }
const model_tensor_info *model_output(void) { return &out_info; }
int model_invoke(const int8_t *in, int8_t *out) { (void)in; (void)out; return 0; }
void board_counter_start(void) {}
uint64_t board_counter_read(void) { return 0; }
"""


@pytest.fixture(scope="module")
def c_monitor(tmp_path_factory):
    import ctypes
    import subprocess
    from firmware_gen import codegen
    out = tmp_path_factory.mktemp("monitor_host")
    (out / "stub.c").write_text(STUB_C)
    lib = out / "libmonitor.so"
    from firmware_gen.hostlib import CC
    subprocess.run([CC, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
                    "-I", str(codegen.HARNESS_DIR), "-I", str(codegen.RUNTIME_DIR / "include"),
                    "-I", str(ROOT / "boards" / "common"),
                    str(codegen.HARNESS_DIR / "monitor.c"),
                    str(codegen.RUNTIME_DIR / "kernels" / "preprocess.c"), str(out / "stub.c"),
                    "-o", str(lib)], check=True, capture_output=True)
    c = ctypes.CDLL(str(lib))
    c.monitor_smooth.argtypes = [ctypes.c_uint8, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_uint32, ctypes.c_uint32]
    c.monitor_smooth.restype = ctypes.c_uint8
    c.monitor_argmax.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    c.monitor_argmax.restype = ctypes.c_uint8
    return c


def c_smooth(lib, classes, outputs, mode, n):
    """monitor.c's monitor_smooth over the last n windows after each window."""
    classes = np.asarray(classes, np.uint8)
    outputs = np.ascontiguousarray(outputs, np.int8)
    k_out = outputs.shape[1]
    res = []
    for k in range(len(classes)):
        lo = max(0, k + 1 - n)
        c = np.ascontiguousarray(classes[lo:k + 1])
        o = np.ascontiguousarray(outputs[lo:k + 1])
        res.append(lib.monitor_smooth(mode, c.ctypes.data, o.ctypes.data, k + 1 - lo, k_out))
    return res


def test_the_c_smoothing_gives_the_same_hand_checked_numbers(c_monitor):
    majority, mean = 0, 1
    zeros = np.zeros((6, 5), np.int8)
    assert c_smooth(c_monitor, [1, 1, 2, 2, 3, 2], zeros, majority, 3) == [1, 1, 1, 2, 2, 2]
    assert c_smooth(c_monitor, [4, 2, 4, 3], zeros[:4], majority, 4) == [4, 2, 4, 4]
    assert c_smooth(c_monitor, [4, 2, 4, 2], zeros[:4], majority, 4) == [4, 2, 4, 2]
    outputs = np.array([[10, 20, -5], [30, -10, 0], [-128, 127, 127], [0, 0, 0]], np.int8)
    assert [c_monitor.monitor_argmax(r.ctypes.data, 3) for r in outputs] == [1, 0, 1, 0]
    assert c_smooth(c_monitor, [1, 0, 1, 0], outputs, mean, 2) == [1, 0, 2, 1]
    conf = np.array([[100, 90], [100, 90], [-128, 127]], np.int8)
    assert c_smooth(c_monitor, [0, 0, 1], conf, majority, 3) == [0, 0, 0]
    assert c_smooth(c_monitor, [0, 0, 1], conf, mean, 3) == [0, 0, 1]


def test_the_c_and_python_smoothing_agree_on_random_streams(c_monitor):
    rng = np.random.default_rng(11)
    for trial in range(40):
        k_out = int(rng.integers(2, 12))
        n = int(rng.integers(1, 33))
        # few distinct values, so ties are common
        outputs = rng.choice([-128, -5, 0, 7, 127], (60, k_out)).astype(np.int8)
        classes = monitor.argmax(outputs)
        for mode, code in (("majority", 0), ("mean", 1)):
            assert c_smooth(c_monitor, classes, outputs, code, n) == \
                monitor.smooth(classes, outputs, mode, n).tolist(), (trial, mode, n)

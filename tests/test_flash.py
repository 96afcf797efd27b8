"""`drsn-edge firmware`, `flash`, `stop`: the image for a board with its boot self-test and
memory report, an emulated board left running for the runner, real-board flashing."""

import hashlib
import json
import os
import shutil
import time

import numpy as np
import pytest

from drsn_edge.cli import main
from firmware_gen import stage
from firmware_gen import build as fw_build
from runner.link import Device

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def build_dir(smoke_build, smoke_tflite, tmp_path_factory):
    """A build/ with the smoke test set and the smoke int8 model where `quantize` puts it."""
    build = tmp_path_factory.mktemp("flash_build")
    shutil.copytree(smoke_build / "data", build / "data")
    (build / "model").mkdir()
    (build / "model" / "model_int8.tflite").write_bytes(smoke_tflite)
    return build


def cli(build, *args):
    return main([args[0], "--config", "configs/smoke.toml", "--build-dir", str(build), *args[1:]])


def test_firmware_boots_with_a_passing_selftest_and_reports_memory(build_dir, smoke_tflite):
    assert cli(build_dir, "firmware") == 0
    report = json.loads((build_dir / "reports/firmware.json").read_text())
    assert report["board"] == "mps2-an386" and report["fits"] is True
    assert report["selftest"]["passed"] and report["selftest"]["verdict"] == "PASS"
    assert report["selftest"]["instructions"] > 100_000
    assert report["model"]["sha256"] == hashlib.sha256(smoke_tflite).hexdigest()
    s = report["sections"]
    assert report["flash_bytes"] == s["text"] + s["rodata"] + s["data"]
    assert report["ram_bytes"] == s["data"] + s["bss"] + s["stack"]
    assert 0 < report["arena_bytes"] < s["bss"]
    assert {b["board"] for b in report["boards"]} == {"mps2-an386", "mps3-an547",
                                                       "netduinoplus2", "lm3s6965evb"}
    md = (build_dir / "reports/firmware.md").read_text()
    assert "self-test" in md and f"{report['flash_bytes']:,}" in md

    # The expected output in selftest.c is what the TFLM host runtime gives for the input.
    src = (build_dir / "firmware/mps2-an386/src/selftest.c").read_text()
    vector = _ints(src, "selftest_input"), _ints(src, "selftest_expected")
    from firmware_gen import tflm_oracle
    assert tflm_oracle.run(smoke_tflite, np.array(vector[0], np.int8)).reshape(-1).tolist() == vector[1]
    assert report["selftest"]["expected"] == vector[1]


def _ints(source: str, name: str) -> list[int]:
    body = source.split(name, 1)[1].split("{", 1)[1].split("}", 1)[0]
    return [int(v) for v in body.replace("\n", " ").split(",") if v.strip()]


def test_generated_sources_are_identical_across_builds(build_dir, tmp_path):
    src = build_dir / "firmware/mps2-an386/src"
    assert cli(build_dir, "firmware") == 0
    first = {p.name: p.read_bytes() for p in src.iterdir() if p.suffix == ".c"}
    assert cli(build_dir, "firmware") == 0
    second = {p.name: p.read_bytes() for p in src.iterdir() if p.suffix == ".c"}
    assert first == second and {"model.c", "model_data.c", "selftest.c"} <= set(first)


def test_selftest_reports_fail_with_the_first_wrong_output(build_dir, smoke_tflite, tmp_path,
                                                            monkeypatch):
    monkeypatch.setenv("DRSN_EDGE_BUILD", str(build_dir))
    vector = stage.selftest_vector(smoke_tflite, 3)
    vector["expected"] = vector["expected"].copy()
    vector["expected"][2] = np.int8(vector["expected"][2] ^ 1)   # one output off by one bit
    bad = tmp_path / "selftest.c"
    bad.write_text(stage.selftest_source("smoke", vector))
    built = fw_build.build(smoke_tflite, "lm3s6965evb", tmp_path / "fw", extra_sources=[bad])
    result = stage.parse_banner(stage.boot_selftest("lm3s6965evb", built["elf"]))
    assert result["verdict"] == "FAIL" and not result["passed"]
    assert "1 of 10 outputs differ" in result["line"] and "first: output 2" in result["line"]
    assert result["instructions"] > 0


def test_flash_starts_the_board_records_it_and_stop_ends_it(build_dir, capsys):
    assert cli(build_dir, "flash") == 0
    state = json.loads((build_dir / "flash.json").read_text())
    try:
        assert state["kind"] == "emulated" and state["url"].startswith("socket://127.0.0.1:")
        assert state["selftest"]["passed"]
        assert "self-test PASS" in capsys.readouterr().out
        from boards.flash import pid_alive
        assert pid_alive(state["pid"])
        # The board keeps running for the runner: connect twice, as hil would.
        for _ in range(2):
            with Device(state["url"], timeout=10) as dev:
                assert dev.info().model_hash.hex() == state["model_hash"]
                assert dev.info().board == "mps2-an386"
        # Flashing again replaces the running board instead of leaving two.
        assert cli(build_dir, "flash") == 0
        again = json.loads((build_dir / "flash.json").read_text())
        assert again["pid"] != state["pid"] and not pid_alive(state["pid"])
        state = again
    finally:
        assert cli(build_dir, "stop") == 0
    from boards.flash import pid_alive
    assert not pid_alive(state["pid"]) and not (build_dir / "flash.json").exists()
    assert "stopped the emulated mps2-an386" in capsys.readouterr().out


def test_flash_count_starts_a_farm_hil_uses_every_board_and_stop_ends_them(build_dir, capsys):
    from boards.flash import pid_alive
    assert cli(build_dir, "flash", "--count", "2") == 0
    state = json.loads((build_dir / "flash.json").read_text())
    started = state["boards"]
    try:
        assert len(started) == 2 and len({b["url"] for b in started}) == 2
        assert len({b["pid"] for b in started}) == 2
        assert (state["url"], state["pid"]) == (started[0]["url"], started[0]["pid"])
        assert all(pid_alive(b["pid"]) and b["selftest"]["passed"] for b in started)
        assert capsys.readouterr().out.count("self-test PASS") == 2
        # `drsn-edge hil` with no --port shares the run over both boards.
        assert cli(build_dir, "hil", "--limit", "28") == 0
        rep = json.loads((build_dir / "reports/hil.json").read_text())
        # ... on their semihosting pipes (hil.emulated_link = "semihosting", the default)
        assert [b["url"] for b in rep["boards"]] == [b["url"].replace("socket://", "semihost://")
                                                     for b in started]
        assert rep["n_bit_exact"] == 28 and sum(b["vectors"] for b in rep["boards"]) == 28
        assert all(b["failed"] is None and b["kind"] == "emulated" for b in rep["boards"])
        # ... or on their emulated UARTs, the link a real board has.
        assert cli(build_dir, "hil", "--limit", "14", "--set", "hil.emulated_link='uart'") == 0
        rep = json.loads((build_dir / "reports/hil.json").read_text())
        assert [b["url"] for b in rep["boards"]] == [b["url"] for b in started]
        assert rep["n_bit_exact"] == 14 and all(b["failed"] is None for b in rep["boards"])
    finally:
        assert cli(build_dir, "stop") == 0
    assert not any(pid_alive(b["pid"]) for b in started)
    assert not (build_dir / "flash.json").exists()
    assert capsys.readouterr().out.count("stopped the emulated mps2-an386") == 2


def test_real_flash_dry_run_prints_the_exact_command(build_dir, capsys):
    assert cli(build_dir, "flash", "--real", "--board", "netduinoplus2", "--dry-run") == 0
    out = capsys.readouterr().out
    image = build_dir / "firmware/netduinoplus2/firmware.bin"
    assert f"st-flash --reset write {image} 0x08000000" in out


@pytest.mark.parametrize("args, message", [
    (["--real", "--board", "netduinoplus2"], "needs its serial port"),
    (["--real", "--board", "mps2-an386", "--port", "/dev/ttyNOPE0"], "not supported by drsn-edge"),
    (["--board", "nosuchboard"], "firmware.board = 'nosuchboard'"),
])
def test_flash_mistakes_are_one_line_errors(build_dir, capsys, args, message):
    assert cli(build_dir, "flash", *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_real_flash_without_the_tool_or_the_port_says_what_to_do(build_dir, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    assert cli(build_dir, "flash", "--real", "--board", "netduinoplus2", "--port",
               "/dev/ttyACM0") == 2
    assert "st-flash (needed to flash netduinoplus2) is not installed" in capsys.readouterr().err
    monkeypatch.setattr(shutil, "which", lambda tool: "/usr/bin/" + tool)
    assert cli(build_dir, "flash", "--real", "--board", "netduinoplus2", "--port",
               "/dev/ttyNOPE0") == 2
    assert "serial port /dev/ttyNOPE0 does not exist" in capsys.readouterr().err


def test_model_too_big_for_the_board_fails_with_the_numbers(build_dir, tmp_path, capsys):
    """A 320 KB dense layer cannot fit the 256 KB flash of the LM3S6965."""
    import keras
    from quantize.convert import to_int8_tflite
    big = tmp_path / "build"
    shutil.copytree(build_dir / "data", big / "data")
    with np.load(big / "data/calib.npz") as z:
        calib = z["x"][:16]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(calib.shape[1:]), keras.layers.Flatten(),
                              keras.layers.Dense(640), keras.layers.Dense(10, activation="softmax")])
    (big / "model").mkdir()
    (big / "model/model_int8.tflite").write_bytes(to_int8_tflite(model, calib, max_samples=16))
    assert cli(big, "firmware", "--board", "lm3s6965evb") == 2
    err = capsys.readouterr().err
    assert "does not fit lm3s6965evb: FLASH needs" in err and "has 262144" in err
    assert not (big / "firmware/lm3s6965evb/firmware.elf").exists()


def test_a_boot_line_sent_the_moment_the_host_connects_is_not_lost(monkeypatch):
    """QEMU starts the guest when the connection is accepted, so the self-test line can
    arrive before pyserial's socket:// open() has returned; it must still be read."""
    import socket
    import threading

    from serial.urlhandler import protocol_socket
    connect = socket.create_connection

    def slow_connect(*args, **kwargs):
        # A loaded machine: the board's line lands before open() gets any further.
        sock = connect(*args, **kwargs)
        time.sleep(0.3)
        return sock
    monkeypatch.setattr(protocol_socket.socket, "create_connection", slow_connect)
    line = b"drsn-edge: mps2-an386 m self-test PASS: 10 outputs equal TFLM, 5 instructions\r\n\0"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def board():
            conn, _ = server.accept()
            with conn:
                conn.sendall(line)          # before the host could possibly ask anything
                conn.recv(1)                # hold the link open until the host closes it

        thread = threading.Thread(target=board, daemon=True)
        thread.start()
        with Device(f"socket://127.0.0.1:{server.getsockname()[1]}", timeout=5) as dev:
            assert dev.console(5) == [line[:-3].decode()]
        thread.join(5)


def test_real_flash_at_a_high_baud_builds_the_divisor_and_hil_follows_it(build_dir, capsys,
                                                                       monkeypatch, tmp_path):
    """make flash REAL=1 BAUD=1000000: the image's USART gets BRR = 16 MHz / 1 Mbaud = 16,
    flash.json records the rate, and `hil` (hil.baud = 0) opens the port at it."""
    tool = tmp_path / "bin" / "st-flash"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/called\"\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}:{os.environ['PATH']}")
    assert cli(build_dir, "flash", "--real", "--board", "netduinoplus2", "--port",
               "socket://127.0.0.1:9", "--baud", "1000000") == 0
    assert "write" in (tool.parent / "called").read_text()
    fw = json.loads((build_dir / "reports/firmware.json").read_text())
    assert fw["uart"]["baud"] == 1_000_000 and fw["uart"]["actual_baud"] == 1_000_000
    assert fw["uart"]["registers"] == {"BOARD_UART_BRR": 16, "BOARD_UART_OVER8": 0}
    header = (build_dir / "firmware/netduinoplus2/firmware.build/board_config.h").read_text()
    assert "#define BOARD_UART_BRR 16u\n" in header
    assert "Serial port: 1,000,000 baud 8N1" in (build_dir / "reports/firmware.md").read_text()
    state = json.loads((build_dir / "flash.json").read_text())
    assert state["kind"] == "real" and state["baud"] == 1_000_000

    from drsn_edge import config
    from runner import hil
    monkeypatch.setenv("DRSN_EDGE_BUILD", str(build_dir))
    cfg = config.load("configs/smoke.toml", [])
    assert hil.settings(cfg)["baud"] == 1_000_000
    assert hil.settings(config.load("configs/smoke.toml", ["hil.baud=921600"]))["baud"] == 921600
    (build_dir / "flash.json").unlink()
    assert hil.settings(cfg)["baud"] == 115200          # nothing flashed: the board's own rate
    capsys.readouterr()

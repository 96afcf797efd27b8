"""A board farm: `drsn-edge hil` over several boards at once (hil.ports, --port repeated).
The work is shared out batch by batch, the merged report does not depend on how many
boards ran or in which order, and a board that dies, hangs or answers wrongly is named in
the report while the others finish its work."""

import hashlib
import json
import socket

import pytest

import boards
from runner import farm

from tests.test_hil import (  # noqa: F401  (fixtures)
    LIMIT, fault_firmware, fresh_build, hil_build, run_hil)

SAME_EVERYWHERE = ("n_vectors", "n_bit_exact", "bit_exact", "bit_exact_per_condition",
                   "mismatches", "accuracy", "vectors_per_condition", "confusion_device",
                   "model_hash", "board")


@pytest.fixture(scope="module")
def two_boards(smoke_firmware):
    with boards.Emulator("mps2-an386", smoke_firmware) as a, \
            boards.Emulator("mps2-an386", smoke_firmware) as b:
        yield a, b


def _report(build):
    return json.loads((build / "reports" / "hil.json").read_text())


def test_two_boards_share_the_sweep_and_report_what_one_board_reports(
        hil_build, two_boards, run_hil, tmp_path):
    a, b = two_boards
    build = fresh_build(hil_build, tmp_path)
    digest = hashlib.sha256((build / "model" / "model_int8.tflite").read_bytes()).hexdigest()

    code, out, err = run_hil(build, "--port", a.url, "--limit", str(LIMIT))
    assert code == 0, err
    one = _report(build)
    assert [x["url"] for x in one["boards"]] == [a.url] and one["boards"][0]["vectors"] == LIMIT

    reports = []
    for ports in ([a.url, b.url], [b.url, a.url]):
        code, out, err = run_hil(build, "--port", ports[0], "--port", ports[1],
                                 "--limit", str(LIMIT))
        assert code == 0, err
        assert f"{LIMIT}/{LIMIT} vectors bit-exact" in out and "2 boards" in out
        rep = _report(build)
        reports.append(rep)
        assert [x["url"] for x in rep["boards"]] == ports
        for entry in rep["boards"]:
            assert entry["board"] == "mps2-an386" and entry["model_hash"] == digest
            assert entry["failed"] is None and entry["vectors"] > 0
            assert entry["n_bit_exact"] == entry["vectors"] and entry["requeued"] == 0
            assert entry["vectors_per_second"] > 0 and entry["link"]["requests"] > 0
        assert sum(x["vectors"] for x in rep["boards"]) == LIMIT
        assert rep["results"]["lost"] == 0 and rep["results"]["duplicated"] == 0
        assert rep["board_counters"]["invocations"] == LIMIT
        md = (build / "reports" / "hil.md").read_text()
        assert "## Boards" in md and f"| 1 | `{ports[0]}` | mps2-an386 |" in md
    for key in SAME_EVERYWHERE:
        assert reports[0][key] == reports[1][key] == one[key], key


def test_raw_input_on_two_boards_checks_every_preprocessed_input(hil_build, two_boards, run_hil,
                                                                tmp_path):
    """RAW windows shared over two boards: every int8 input the boards made and every output
    is compared, and each vector is answered once."""
    a, b = two_boards
    build = fresh_build(hil_build, tmp_path)
    code, out, err = run_hil(build, "--port", a.url, "--port", b.url, "--input", "raw",
                             "--limit", "60")
    assert code == 0, err
    rep = _report(build)
    assert rep["input_kind"] == "raw" and rep["n_vectors"] == 60 and rep["n_bit_exact"] == 60
    assert rep["preprocessing_bit_exact"] is True
    assert rep["preprocessing"]["mismatches"]["count"] == 0
    assert sum(x["vectors"] for x in rep["boards"]) == 60
    assert all(x["vectors"] > 0 for x in rep["boards"])  # both boards did some of the work
    assert rep["results"]["lost"] == 0 and rep["results"]["duplicated"] == 0


@pytest.mark.parametrize("link", ["socket", "semihost"])
def test_a_board_killed_mid_run_loses_nothing(hil_build, two_boards, smoke_firmware, run_hil,
                                              tmp_path, monkeypatch, link):
    """Two emulated boards; the second one's QEMU is killed right after its first answer,
    with more of its batches in flight, on its UART or on its semihosting pipes. The first
    board takes them over."""
    a, _ = two_boards
    build = fresh_build(hil_build, tmp_path)
    with boards.Emulator("mps2-an386", smoke_firmware) as emu:
        victim = emu.url.replace("socket://", f"{link}://")
        original = farm.Farm._store
        killed = []

        def store_then_kill(self, b, key, o, w, *pre):
            original(self, b, key, o, w, *pre)
            if b.url == victim and not killed:
                emu._process.kill()
                killed.append(key)

        monkeypatch.setattr(farm.Farm, "_store", store_then_kill)
        code, out, err = run_hil(build, "--port", a.url, "--port", victim,
                                 "--limit", str(LIMIT), "--set", "hil.timeout_s=2.0")
        assert killed and emu._process.wait(5) is not None
    assert code == 0, err
    rep = _report(build)
    assert rep["n_vectors"] == rep["n_bit_exact"] == LIMIT and rep["bit_exact"] is True
    assert rep["results"]["lost"] == 0 and rep["results"]["duplicated"] == 0
    good, dead = rep["boards"]
    assert dead["url"] == victim and good["failed"] is None
    assert dead["failed"].startswith(f"lost the connection to {victim}")
    assert dead["vectors"] >= len(killed[0]) and dead["requeued"] > 0
    assert good["vectors"] + dead["vectors"] == LIMIT
    assert rep["n_boards_failed"] == 1
    assert f"1 failed ({victim}" in out
    md = (build / "reports" / "hil.md").read_text()
    assert f"`{victim}`" in md and "lost the connection" in md
    import xml.etree.ElementTree as ET
    suite = ET.parse(build / "reports" / "hil.xml").getroot().find("testsuite")
    per_board = {c.get("name"): c for c in suite.findall("testcase")
                 if c.get("classname") == "hil.board"}
    assert set(per_board) == {a.url, victim} and suite.get("failures") == "0"
    assert per_board[victim].find("skipped") is not None and suite.get("skipped") == "1"


@pytest.mark.parametrize("kind, says", [(0, None), (1, "the board crashed"),
                                        (2, "no usable answer")],
                         ids=["wrong-answers", "hardfault", "hang"])
def test_a_faulty_board_is_named_and_the_good_one_finishes(kind, says, hil_build, two_boards,
                                                          fault_firmware, run_hil, tmp_path):
    """The fault firmware claims the smoke model's hash but answers constant outputs (not
    bit-exact), and with kind 1/2 crashes or hangs at its 10th inference."""
    a, _ = two_boards
    build = fresh_build(hil_build, tmp_path)
    with boards.Emulator("mps2-an386", fault_firmware(kind)) as bad:
        code, out, err = run_hil(build, "--port", a.url, "--port", bad.url,
                                 "--limit", str(LIMIT), "--set", "hil.timeout_s=1.0",
                                 "--set", "hil.retries=1")
    assert code == 1, err                          # the faulty board's answers differ
    rep = _report(build)
    good, faulty = rep["boards"]
    assert rep["n_vectors"] == LIMIT and rep["results"]["lost"] == 0
    assert rep["results"]["duplicated"] == 0
    assert good["failed"] is None and good["n_bit_exact"] == good["vectors"] > 0
    assert faulty["vectors"] > 0 and faulty["n_bit_exact"] < faulty["vectors"]
    assert faulty["mismatches"] == faulty["vectors"] - faulty["n_bit_exact"]
    assert rep["mismatches"]["count"] == faulty["mismatches"]
    import xml.etree.ElementTree as ET
    suite = ET.parse(build / "reports" / "hil.xml").getroot().find("testsuite")
    failed = [c.get("name") for c in suite.findall("testcase")
              if c.get("classname") == "hil.board" and c.find("failure") is not None]
    assert failed == [bad.url]
    assert good["vectors"] + faulty["vectors"] == LIMIT
    if says is None:
        assert faulty["failed"] is None
    else:
        assert says in faulty["failed"] and faulty["vectors"] < 10


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_when_every_board_fails_the_run_fails_in_one_line(hil_build, run_hil, tmp_path):
    build = fresh_build(hil_build, tmp_path)
    urls = [f"socket://127.0.0.1:{_refused_port()}" for _ in range(2)]
    code, out, err = run_hil(build, "--port", urls[0], "--port", urls[1])
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert line.startswith("drsn-edge hil: error: all 2 boards failed: ")
    assert all(f"[{u}] cannot open {u}: nothing answers there" in line for u in urls)
    assert not (build / "reports" / "hil.json").exists()


def test_a_board_that_cannot_be_reached_is_left_out(hil_build, two_boards, run_hil, tmp_path):
    a, _ = two_boards
    build = fresh_build(hil_build, tmp_path)
    gone = f"socket://127.0.0.1:{_refused_port()}"
    code, out, err = run_hil(build, "--port", gone, "--port", a.url, "--limit", "35")
    assert code == 0, err
    rep = _report(build)
    assert [x["vectors"] for x in rep["boards"]] == [0, 35]
    assert "nothing answers there" in rep["boards"][0]["failed"]
    assert rep["boards"][0]["board"] is None and rep["n_bit_exact"] == 35
    assert f"board {gone} left out" in out


# --- a board behind ser2net (RFC 2217) -------------------------------------------------------

@pytest.fixture
def board_behind_ser2net(smoke_firmware, tmp_path):
    """The emulated board on a pseudo-terminal (what a USB serial adapter is to a lab host),
    put on the network by ser2net as an RFC 2217 port on loopback: its rfc2217:// URL."""
    import re
    import subprocess
    import time
    from boards.emulator import qemu_command
    qemu = subprocess.Popen(qemu_command("mps2-an386", smoke_firmware, serial="pty"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    s2n = None
    try:
        line = qemu.stdout.readline()
        pty = re.search(r"/dev/pts/\d+", line)
        assert pty, f"QEMU did not say where its pty is: {line!r}"
        port = _refused_port()
        conf = tmp_path / "ser2net.yaml"
        conf.write_text(f"connection: &board\n"
                        f"  accepter: telnet(rfc2217),tcp,127.0.0.1,{port}\n"
                        f"  connector: serialdev,{pty.group(0)},115200n81,local\n"
                        f"  options:\n"
                        f"    kickolduser: true\n")
        s2n = subprocess.Popen(["ser2net", "-n", "-u", "-c", str(conf)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert s2n.poll() is None, s2n.stderr.read()
            time.sleep(0.05)
        yield f"rfc2217://127.0.0.1:{port}?ign_set_control"
    finally:
        for proc in (s2n, qemu):
            if proc is not None:
                proc.terminate()
                proc.wait(5)


def test_hil_through_ser2net_rfc2217_next_to_a_local_board(hil_build, two_boards,
                                                         board_behind_ser2net, run_hil,
                                                         tmp_path):
    a, _ = two_boards
    build = fresh_build(hil_build, tmp_path)
    remote = board_behind_ser2net
    code, out, err = run_hil(build, "--port", remote, "--limit", "35")
    assert code == 0, err
    rep = _report(build)
    assert rep["n_bit_exact"] == 35 and rep["boards"][0]["url"] == remote
    assert rep["link"]["depth"] == 1 and rep["link"]["retries"] == 0

    # A mixed farm: the remote board and a local one share one run.
    code, out, err = run_hil(build, "--port", remote, "--port", a.url, "--limit", "70")
    assert code == 0, err
    rep = _report(build)
    assert rep["n_bit_exact"] == 70 and rep["results"]["duplicated"] == 0
    assert [b["url"] for b in rep["boards"]] == [remote, a.url]
    assert all(b["vectors"] > 0 and b["failed"] is None for b in rep["boards"])
    assert [b["depth"] for b in rep["boards"]] == [1, 2]


def test_flash_state_with_a_stopped_board_runs_on_the_others(hil_build, two_boards, run_hil,
                                                            tmp_path):
    """`make flash BOARDS=2`, then one QEMU died: `make hil` names it and uses the other."""
    import subprocess
    a, _ = two_boards
    build = fresh_build(hil_build, tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead_url = f"socket://127.0.0.1:{_refused_port()}"
    state = {"board": "mps2-an386", "kind": "emulated", "url": dead_url, "pid": gone.pid,
             "boards": [{"url": dead_url, "pid": gone.pid}, {"url": a.url, "pid": a._process.pid}]}
    (build / "flash.json").write_text(json.dumps(state))
    code, out, err = run_hil(build, "--limit", "21")
    assert code == 0, err
    rep = _report(build)
    dead, alive = rep["boards"]
    # hil.emulated_link = "semihosting": the boards `make flash` started are reached on their pipes.
    assert [b["url"] for b in rep["boards"]] == [u.replace("socket://", "semihost://")
                                                 for u in (dead_url, a.url)]
    assert dead["failed"] == (f"the emulated mps2-an386 at {dead['url']} started by `make flash` "
                              f"is no longer running (pid {gone.pid})")
    assert dead["vectors"] == 0 and alive["vectors"] == 21 and alive["failed"] is None
    assert alive["kind"] == "emulated" and rep["n_bit_exact"] == 21

    # Every board stopped: one line saying so, nothing run.
    state["boards"][1]["pid"] = gone.pid
    (build / "flash.json").write_text(json.dumps(state))
    code, out, err = run_hil(build, "--limit", "21")
    assert code == 2 and "no longer running" in err and "run `make flash` again" in err


def test_a_board_running_another_model_gets_no_work(hil_build, two_boards, run_hil, tmp_path):
    """The model hash of every board is checked before the work is shared out: a board with
    other firmware is named, and the current one does it all."""
    from firmware_gen.build import HARNESS_INCLUDE_DIRS, HARNESS_SOURCES
    from tests.test_hil import FAULT_MODEL
    a, _ = two_boards
    build = fresh_build(hil_build, tmp_path)
    other = boards.compile_firmware(
        "mps2-an386", [*HARNESS_SOURCES, FAULT_MODEL], HARNESS_INCLUDE_DIRS,
        tmp_path / "other.elf", defines=["MODEL_HASH_INIT={" + ",".join(["0x5a"] * 32) + "}",
                                         "MODEL_IN=512", "MODEL_OUT=10", "FAULT_KIND=0"])
    with boards.Emulator("mps2-an386", other) as stale:
        code, out, err = run_hil(build, "--port", stale.url, "--port", a.url, "--limit", "21")
    assert code == 0, err
    rep = _report(build)
    first, second = rep["boards"]
    assert first["failed"].startswith(f"stale firmware: the mps2-an386 at {stale.url} runs "
                                      f"model 'fault_model' with hash 5a5a5a5a5a5a")
    assert first["vectors"] == 0 and first["model_hash"] == "5a" * 32
    assert second["vectors"] == rep["n_bit_exact"] == 21 and second["failed"] is None

"""`drsn-edge flash` / `drsn-edge stop`: put the firmware on a board and remember where it is.

Emulated (the default): build the firmware, start QEMU in the background with the board's
UART on a local TCP port, read the boot self-test line, and record the board in the state
file `build/flash.json` so `drsn-edge hil` finds it without being told a port. QEMU keeps
running after this command returns; `drsn-edge stop` ends it.

Real (`--real`): build the same image and write it with the board's flash tool
(boards/<name>/board.toml, [flash]); `--port` records the board's serial port for `hil`.

State file (JSON), written atomically:
    board, kind ("emulated" | "real"), url (pyserial URL), port (TCP port, emulated only),
    pid (QEMU's, emulated only), elf, model (the .tflite deployed), model_hash (its SHA-256),
    selftest ({"passed", "instructions", "line"}), started (UTC, ISO 8601)
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from drsn_edge.artifacts import paths, write_json
from drsn_edge.errors import UserError


def read_state() -> dict | None:
    """The board recorded by the last `drsn-edge flash`, or None if there is none."""
    path = paths()["flash_state"]
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UserError(f"state file {path} is unreadable ({exc}); delete it and run "
                        f"`make flash` again") from None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) still answers kill(0); /proc tells them apart.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def running() -> dict:
    """The state of the board `drsn-edge flash` left running; a clear error if there is none."""
    state = read_state()
    if state is None:
        raise UserError(f"no board has been flashed (no {paths()['flash_state']}); run "
                        f"`make flash` first, or pass a serial port with --port / PORT=")
    if state.get("kind") == "emulated" and not pid_alive(state.get("pid")):
        raise UserError(f"the emulated {state.get('board')} started by `make flash` is no longer "
                        f"running (pid {state.get('pid')}); run `make flash` again")
    return state


def write_state(state: dict) -> None:
    write_json(paths()["flash_state"], state)


def stop(cfg: dict | None = None) -> None:
    """End the emulated board that `drsn-edge flash` started, and forget it."""
    state = read_state()
    path = paths()["flash_state"]
    if state is None:
        print("drsn-edge stop: no board is running (nothing recorded in "
              f"{path})")
        return
    if state.get("kind") == "emulated" and pid_alive(state.get("pid")):
        _terminate(int(state["pid"]))
        print(f"stopped the emulated {state.get('board')} (pid {state['pid']}, {state.get('url')})")
    elif state.get("kind") == "emulated":
        print(f"the emulated {state.get('board')} had already stopped")
    else:
        print(f"forgot the real {state.get('board')} on {state.get('url')} (nothing to stop)")
    path.unlink(missing_ok=True)


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def run(cfg: dict, real: bool = False, port: str | None = None, dry_run: bool = False) -> dict:
    """Build the firmware for firmware.board and start it in QEMU, or flash a real board."""
    from boards.board import flash_command, load
    from boards.emulator import qemu_command, start_detached
    from firmware_gen import stage

    board = load(cfg["firmware"]["board"])
    elf = stage.firmware_dir(board.name) / "firmware.elf"
    if real:
        if not port and not dry_run:
            raise UserError(f"flashing a real {board.name} needs its serial port too, for the "
                            f"runner afterwards: make flash REAL=1 BOARD={board.name} "
                            f"PORT=/dev/ttyACM0 (drsn-edge flash --real --port ...)")
        command = flash_command(board, elf, check_tool=not dry_run)
        if dry_run:
            print(f"would build:  drsn-edge firmware --board {board.name}")
            print(f"would flash:  {shlex.join(command)}")
            print(f"would record: {port or '<PORT>'} in {paths()['flash_state']}")
            return {"command": command}
        if "://" not in port and not Path(port).exists() and not port.upper().startswith("COM"):
            raise UserError(f"serial port {port} does not exist; is the board plugged in? "
                            f"(list ports with: python -m serial.tools.list_ports)")
        built = stage.run(cfg)
        print(f"flashing {board.name}: {shlex.join(command)}")
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise UserError(f"{command[0]} failed with exit code {result.returncode} while "
                            f"flashing {board.name}; is the board connected and powered?\n"
                            + "\n".join(output))
        state = _state(board.name, "real", port, built, None, None)
        write_state(state)
        print(f"{board.name} flashed; serial port {port} recorded in {paths()['flash_state']}")
        return state

    if dry_run:
        print(f"would build:  drsn-edge firmware --board {board.name}")
        print(f"would start:  {shlex.join(qemu_command(board, elf, port=0)).replace(':0,', ':<PORT>,')}")
        print(f"would record: socket://127.0.0.1:<PORT> in {paths()['flash_state']}")
        return {}

    previous = read_state()
    if previous and previous.get("kind") == "emulated" and pid_alive(previous.get("pid")):
        print(f"stopping the emulated {previous.get('board')} started earlier "
              f"(pid {previous['pid']})")
        _terminate(int(previous["pid"]))
    built = stage.run(cfg, boot=False)
    log = paths()["build"] / "flash.log"
    pid, tcp_port = start_detached(board, built["elf"], log)
    url = f"socket://127.0.0.1:{tcp_port}"
    try:
        line = stage.read_selftest(url, context=lambda: f"QEMU log: {log}")
    except BaseException:
        _terminate(pid)
        raise
    selftest = stage.record_selftest(line)
    state = _state(board.name, "emulated", url, built, pid, tcp_port)
    state["selftest"] = selftest
    state["log"] = str(log)
    write_state(state)
    print(line)
    print(f"{board.name} is running in QEMU (pid {pid}); its UART is {url}")
    print(f"  recorded in {paths()['flash_state']}; `make hil` talks to it, `make stop` ends it")
    if not selftest["passed"]:
        raise UserError(f"the boot self-test failed on the emulated {board.name}; it is still "
                        f"running at {url} for `make hil DEBUG=0` (`make stop` ends it)")
    return state


def _state(board: str, kind: str, url: str, built: dict, pid, tcp_port) -> dict:
    return {
        "board": board, "kind": kind, "url": url, "port": tcp_port, "pid": pid,
        "elf": str(built["elf"]), "model": built["report"]["model"]["path"],
        "model_source": built["report"]["model"].get("source", "project"),
        "model_hash": built["model"]["sha256"],
        "selftest": built["report"].get("selftest"),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }

"""`drsn-edge flash` / `drsn-edge stop`: put the firmware on a board and remember where it is.

Emulated (the default): build the firmware, start QEMU in the background with the board's
UART on a local TCP port, read the boot self-test line, and record the board in the state
file `build/flash.json` so `drsn-edge hil` finds it without being told a port. QEMU keeps
running after this command returns; `drsn-edge stop` ends it.

Real (`--real`): build the same image and write it with the board's flash tool
(boards/<name>/board.toml, [flash]); `--port` records the board's serial port for `hil`.

`--count N` starts N emulated boards (a farm: `drsn-edge hil` shares its work over them),
each QEMU on its own TCP port and pinned to the least busy CPU; `drsn-edge stop` ends them all.

State file (JSON), written atomically:
    board, kind ("emulated" | "real"), url (pyserial URL), port (TCP port, emulated only),
    pid (QEMU's, emulated only), elf, model (the .tflite deployed), model_hash (its SHA-256),
    selftest ({"passed", "instructions", "line"}), started (UTC, ISO 8601), and
    boards: every board started, [{url, port, pid, log, selftest}] (the first is also the
    top-level url/port/pid)
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


def boards_of(state: dict) -> list[dict]:
    """Every board a state records ({url, pid, ...}); a state from before farms has one."""
    return state.get("boards") or [{"url": state["url"], "port": state.get("port"),
                                    "pid": state.get("pid")}]


def running() -> dict:
    """The state of the board(s) `drsn-edge flash` left running; a clear error if there is
    none, or if every emulated board it started has stopped."""
    state = read_state()
    if state is None:
        raise UserError(f"no board has been flashed (no {paths()['flash_state']}); run "
                        f"`make flash` first, or pass a serial port with --port / PORT=")
    pids = [b.get("pid") for b in boards_of(state)]
    if state.get("kind") == "emulated" and not any(pid_alive(p) for p in pids):
        which = f"pid {pids[0]}" if len(pids) == 1 else f"pids {', '.join(map(str, pids))}"
        raise UserError(f"the emulated {state.get('board')} started by `make flash` is no longer "
                        f"running ({which}); run `make flash` again")
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
    if state.get("kind") == "emulated":
        for b in boards_of(state):
            if pid_alive(b.get("pid")):
                _terminate(int(b["pid"]))
                print(f"stopped the emulated {state.get('board')} (pid {b['pid']}, {b.get('url')})")
            else:
                print(f"the emulated {state.get('board')} at {b.get('url')} had already stopped")
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


def run(cfg: dict, real: bool = False, port: str | None = None, dry_run: bool = False,
        count: int = 1) -> dict:
    """Build the firmware for firmware.board and start it in QEMU (`count` boards), or
    flash a real board."""
    from boards.board import flash_command, load
    from boards.emulator import qemu_command, start_detached
    from firmware_gen import stage

    if count < 1:
        raise UserError(f"--count {count}: the number of emulated boards to start must be "
                        f"at least 1 (make flash BOARDS=2)")
    if count > 1 and real:
        raise UserError(f"--count {count} starts emulated boards; real boards are flashed one "
                        f"at a time (drsn-edge flash --real --port ...), then listed together "
                        f"in hil.ports or with --port repeated")
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
    if previous and previous.get("kind") == "emulated":
        for old in boards_of(previous):
            if pid_alive(old.get("pid")):
                print(f"stopping the emulated {previous.get('board')} started earlier "
                      f"(pid {old['pid']})")
                _terminate(int(old["pid"]))
    built = stage.run(cfg, boot=False)
    started: list[dict] = []
    try:
        for i in range(count):
            log = paths()["build"] / ("flash.log" if i == 0 else f"flash-{i + 1}.log")
            pid, tcp_port = start_detached(board, built["elf"], log)
            url = f"socket://127.0.0.1:{tcp_port}"
            started.append({"url": url, "port": tcp_port, "pid": pid, "log": str(log)})
            line = stage.read_selftest(url, context=lambda log=log: f"QEMU log: {log}")
            started[-1]["selftest"] = stage.record_selftest(line)
            started[-1]["line"] = line
    except BaseException:
        for b in started:
            _terminate(b["pid"])
        raise
    first = started[0]
    state = _state(board.name, "emulated", first["url"], built, first["pid"], first["port"])
    state["selftest"] = first["selftest"]
    state["log"] = first["log"]
    state["boards"] = [{k: v for k, v in b.items() if k != "line"} for b in started]
    write_state(state)
    for b in started:
        print(b["line"])
        print(f"{board.name} is running in QEMU (pid {b['pid']}); its UART is {b['url']}")
    them = "them" if count > 1 else "it"
    print(f"  recorded in {paths()['flash_state']}; `make hil` talks to {them} (on the semihosting "
          f"link, semihost://, unless hil.emulated_link = 'uart'), `make stop` ends {them}")
    bad = [b for b in started if not b["selftest"]["passed"]]
    if bad:
        raise UserError(f"the boot self-test failed on the emulated {board.name}; it is still "
                        f"running at {bad[0]['url']} for `make hil DEBUG=0` (`make stop` ends it)")
    return state


def _state(board: str, kind: str, url: str, built: dict, pid, tcp_port) -> dict:
    return {
        "board": board, "kind": kind, "url": url, "port": tcp_port, "pid": pid,
        "elf": str(built["elf"]), "model": built["report"]["model"]["path"],
        "model_source": built["report"]["model"].get("source", "project"),
        "model_hash": built["model"]["sha256"],
        "baud": built["report"]["uart"]["baud"],
        "selftest": built["report"].get("selftest"),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }

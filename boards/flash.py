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

import json
import os
import signal
import time

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


def run(cfg: dict, real: bool = False, port: str | None = None, dry_run: bool = False) -> None:
    raise UserError("drsn-edge flash: not implemented yet")

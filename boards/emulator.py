"""Running a firmware image in QEMU, with its UART on a local TCP port.

The emulator always runs with `-icount shift=0` (one instruction = 1 ns of virtual time, so
the board's work counter yields instruction counts that repeat exactly from run to run) and
with semihosting on (so the firmware's board_exit(code) becomes QEMU's exit status).

QEMU is kept on one CPU (`pin_cpu`). Every byte into the emulated UART passes between QEMU's
I/O thread and its vCPU thread (the UART holds one byte; the guest takes an interrupt per
byte), and when the scheduler spreads the two threads over two CPUs each hand-over is a
cross-CPU wake-up. On the 2-core VMs this project runs on, that halves the link: 1000 test
vectors took 26 s pinned and 55-60 s unpinned on an idle machine. DRSN_EDGE_QEMU_CPU=all
turns pinning off, DRSN_EDGE_QEMU_CPU=<n> picks the CPU.

    with Emulator("mps2-an386", "build/fw.elf") as emu:
        link = serial.serial_for_url(emu.url, timeout=5)
        ...
        code = emu.wait(timeout=10)

The same host code then talks to a real board by opening "/dev/ttyACM0" instead of emu.url.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import weakref
from pathlib import Path

from drsn_edge.errors import UserError

from boards.board import Board, load

QEMU = "qemu-system-arm"
# Printed by QEMU 7.x once the serial port listens (and before the guest starts, because
# wait=on holds the machine until a client connects).
_LISTENING = "waiting for connection"


def qemu_command(board: str | Board, elf: str | Path, serial: str = "tcp",
                 port: int | None = None, extra_args=()) -> list[str]:
    """The qemu-system-arm command line that boots `elf` on `board`.

    serial: "tcp" (needs `port`; QEMU listens on 127.0.0.1:port and waits for one client
    before starting the guest, so no output is lost), "stdio", "null", or any other QEMU
    character device spec such as "file:uart.log". extra_args: appended as they are (e.g.
    the benchmark's -plugin for its cycle estimate).
    """
    board = load(board)
    if serial == "tcp":
        if port is None:
            raise ValueError("serial='tcp' needs a port")
        # nodelay: without it every small write waits for Nagle, ~44 ms per round trip.
        serial = f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"
    return [QEMU, "-M", board.qemu_machine, *board.qemu_args,
            "-nographic", "-monitor", "none",
            "-icount", "shift=0",
            "-semihosting-config", "enable=on,target=native",
            "-kernel", str(elf),
            "-serial", serial, *extra_args]


class Emulator:
    """QEMU running `elf` on `board`, its UART reachable at `.url`.

    A context manager: leaving the block always ends the QEMU process.
    """

    def __init__(self, board: str | Board, elf: str | Path, start_timeout: float = 10.0,
                 extra_args=()):
        self.board = load(board)
        self.extra_args = list(extra_args)
        self.elf = Path(elf)
        self.start_timeout = start_timeout
        self.port: int | None = None
        self._process: subprocess.Popen | None = None
        self._output: list[str] = []
        self._reader: threading.Thread | None = None
        self._finalizer = None

    @property
    def url(self) -> str:
        """pyserial URL of the emulated UART, for serial.serial_for_url()."""
        if self.port is None:
            raise RuntimeError("emulator not started")
        return f"socket://127.0.0.1:{self.port}"

    @property
    def stderr(self) -> str:
        """What QEMU itself printed so far: errors and warnings (its stdout is included,
        but with the UART on TCP and no monitor QEMU has nothing else to say there)."""
        return "".join(self._output)

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process else None

    def start(self) -> Emulator:
        _check_runnable(self.elf)
        port = _listen(lambda p: self._launch(qemu_command(self.board, self.elf, port=p,
                                                            extra_args=self.extra_args)),
                       lambda: self.stderr, self.stop, self.start_timeout)
        if port is None:
            output = self.stderr.strip() or "(no output)"
            raise UserError(f"QEMU could not start {self.elf} on {self.board.name}: {output}")
        self.port = port
        return self

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the firmware to end the run; return QEMU's exit code."""
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.elf.name} on {self.board.name} still running after "
                               f"{timeout} s (QEMU output: {self.stderr.strip() or 'none'})") from None

    def stop(self) -> None:
        """End QEMU if it is still running, and release its pipe."""
        if self._finalizer is not None:
            self._finalizer()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self._process is not None and self._process.stdout:
            self._process.stdout.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _launch(self, cmd: list[str]) -> subprocess.Popen:
        self._output = []
        self._process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True, errors="replace")
        # Also covers an Emulator dropped without stop(): QEMU must never outlive us.
        self._finalizer = weakref.finalize(self, _terminate, self._process)
        self._reader = threading.Thread(target=self._collect, args=(self._process,),
                                        daemon=True)
        self._reader.start()
        return self._process

    def _collect(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self._output.append(line)


def start_detached(board: str | Board, elf: str | Path, log: str | Path,
                   timeout: float = 10.0) -> tuple[int, int]:
    """QEMU running `elf` in its own session, so it outlives the caller (`drsn-edge flash`);
    its output goes to `log`. Returns (pid, TCP port of the UART)."""
    board, elf, log = load(board), Path(elf), Path(log)
    _check_runnable(elf)
    launched: list[subprocess.Popen] = []

    def launch(port: int) -> subprocess.Popen:
        with open(log, "w") as out:
            launched.append(subprocess.Popen(
                qemu_command(board, elf, port=port), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True))
        return launched[-1]

    def output() -> str:
        return log.read_text(errors="replace")

    port = _listen(launch, output, lambda: _terminate(launched[-1]), timeout)
    if port is None:
        raise UserError(f"QEMU could not start {elf} on {board.name}: "
                        f"{output().strip() or 'no output'} (log: {log})")
    return launched[-1].pid, port


def _check_runnable(elf: Path) -> None:
    if shutil.which(QEMU) is None:
        raise UserError(f"{QEMU} not found on PATH; run scripts/setup.sh, or "
                        f"sudo apt-get install qemu-system-arm")
    if not elf.is_file():
        raise UserError(f"firmware image {elf} does not exist; build it first")
    # QEMU loads the image only after a client has connected, so a bad file would
    # otherwise surface as a closed serial link instead of as this message.
    with open(elf, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise UserError(f"{elf} is not an ELF image; pass the .elf that "
                            f"compile_firmware wrote")


def _listen(launch, output, stop, timeout: float) -> int | None:
    """Start QEMU with launch(port) until it listens on its UART port; return the port.

    A free port can be taken by someone else before QEMU binds it: then try another.
    output() is what QEMU printed so far; stop() ends the last launch. None: QEMU failed.
    """
    cpu = pick_cpu()
    for _attempt in range(5):
        port = _free_port()
        process = launch(port)
        pin_cpu(process.pid, cpu)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _LISTENING in output():
                pin_cpu(process.pid, cpu)   # threads QEMU started before the first pin
                return port
            if process.poll() is not None:
                break
            time.sleep(0.01)
        stop()
        if "Address already in use" not in output():
            return None
    return None


def pick_cpu() -> int | None:
    """The CPU to run the next QEMU on: the least busy over the last 50 ms, counting each
    QEMU already pinned there as fully busy. None: leave placement to the scheduler."""
    choice = os.environ.get("DRSN_EDGE_QEMU_CPU", "").strip().lower()
    if not hasattr(os, "sched_setaffinity") or choice == "all":
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if choice and not choice.isdigit():
        raise UserError(f"DRSN_EDGE_QEMU_CPU={choice}: not a CPU number; give one of "
                        f"{allowed}, or 'all' to not pin QEMU")
    if choice.isdigit():
        if int(choice) not in allowed:
            raise UserError(f"DRSN_EDGE_QEMU_CPU={choice}: this process may only run on CPUs "
                            f"{allowed}; pick one of those, or 'all' to not pin QEMU")
        return int(choice)
    if len(allowed) < 2:
        return None
    before = _cpu_busy()
    time.sleep(0.05)
    after = _cpu_busy()
    if not before or not after:
        return None
    load = {cpu: after.get(cpu, 0) - before.get(cpu, 0) for cpu in allowed}
    for cpu in _pinned_emulators():
        if cpu in load:
            load[cpu] += 1000
    # Ties go to the highest-numbered CPU: CPU 0 tends to take the device interrupts.
    return min(allowed, key=lambda cpu: (load[cpu], -cpu))


def pin_cpu(pid: int, cpu: int | None) -> None:
    """Keep every thread of process `pid` on `cpu` (no-op for None or a process gone)."""
    if cpu is None:
        return
    try:
        threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        threads = [pid]
    for tid in threads:
        try:
            os.sched_setaffinity(tid, {cpu})
        except OSError:
            pass   # the thread ended meanwhile


def _cpu_busy() -> dict[int, int]:
    """Busy jiffies per CPU since boot, from /proc/stat ({} where there is none)."""
    busy = {}
    try:
        with open("/proc/stat") as stat:
            for line in stat:
                name, *fields = line.split()
                if name.startswith("cpu") and name[3:].isdigit():
                    ticks = [int(f) for f in fields]
                    busy[int(name[3:])] = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    except OSError:
        return {}
    return busy


def _pinned_emulators() -> list[int]:
    """The CPU of each running QEMU that is pinned to exactly one."""
    cpus = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as comm:
                if not comm.read().startswith("qemu-system"):
                    continue
            mask = os.sched_getaffinity(int(entry))
        except OSError:
            continue
        if len(mask) == 1:
            cpus.append(next(iter(mask)))
    return cpus


def _terminate(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

"""`drsn-edge doctor`: does every tool drsn-edge needs work on this machine?

A package can be installed and still not work (a compiler without its C++ library, a QEMU
without the Arm machine models), so each check runs the tool on something small: a C and a
C++ program are compiled and linked for a Cortex-M4, the host C compiler builds a shared
object (the benchmark's QEMU cycle plugin), QEMU lists its machines, ser2net (a
board's serial port on the network, RFC 2217) is on the PATH. Each failure is
one line naming the tool and the Debian package that brings it. `scripts/setup.sh` runs this
after installing, and the test suite runs it before any test, so a missing piece shows up
as one clear line instead of a compiler error deep inside a test.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
from pathlib import Path

from drsn_edge.errors import UserError

# Which Debian package provides what: the same list scripts/setup.sh installs.
PACKAGES = {
    "c": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "c++": "libstdc++-arm-none-eabi-newlib",
    "qemu": "qemu-system-arm",
    "ser2net": "ser2net",
    "host-c": "gcc",   # the host C compiler: builds the benchmark's QEMU cycle plugin
}
BOARD_MACHINES = ("mps2-an386", "mps3-an547", "netduinoplus2", "lm3s6965evb")
PYTHON_MODULES = ("numpy", "tensorflow", "keras", "tflite_micro", "serial", "scipy", "matplotlib")

_C_PROGRAM = "#include <stdio.h>\nint main(void) { printf(\"ok\\n\"); return 0; }\n"
_CXX_PROGRAM = ("#include <cstdio>\n#include <cstdint>\n#include <new>\n"
                "struct Probe { Probe() { std::printf(\"ok\\n\"); } };\n"
                "static Probe probe;\nint main() { return 0; }\n")
_LINK = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
         "--specs=nano.specs", "--specs=nosys.specs"]


def _compile(compiler: str, source: str, suffix: str, extra=()) -> str | None:
    """None when `source` compiles and links for a Cortex-M4F, else the compiler's last line."""
    with tempfile.TemporaryDirectory(prefix="drsn-doctor-") as tmp:
        src = Path(tmp) / f"probe{suffix}"
        src.write_text(source)
        run = subprocess.run([compiler, *_LINK, *extra, str(src), "-o", str(Path(tmp) / "probe.elf")],
                             capture_output=True, text=True)
        if run.returncode == 0:
            return None
        lines = [ln for ln in run.stderr.strip().splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit status {run.returncode}"


def _host_shared_object(compiler: str) -> str | None:
    """None when the host compiler builds a shared object (what the QEMU plugin is)."""
    with tempfile.TemporaryDirectory(prefix="drsn-doctor-") as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text("int probe(int x) { return x + 1; }\n")
        run = subprocess.run([compiler, "-shared", "-fPIC", str(src), "-o", str(Path(tmp) / "probe.so")],
                             capture_output=True, text=True)
        if run.returncode == 0:
            return None
        lines = [ln for ln in run.stderr.strip().splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit status {run.returncode}"


def problems() -> list[str]:
    """One line per missing or broken tool; empty when everything works."""
    found: list[str] = []
    apt = "run scripts/setup.sh (or: sudo apt-get install {})"
    gcc, gxx = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-g++")
    if gcc is None:
        found.append(f"arm-none-eabi-gcc is not on PATH; {apt.format(PACKAGES['c'])}")
    else:
        err = _compile(gcc, _C_PROGRAM, ".c")
        if err:
            found.append(f"arm-none-eabi-gcc cannot build a C program for the Cortex-M4 "
                         f"({err}); {apt.format(PACKAGES['c'])}")
    if gxx is None:
        found.append(f"arm-none-eabi-g++ is not on PATH; {apt.format(PACKAGES['c'])}")
    else:
        err = _compile(gxx, _CXX_PROGRAM, ".cc", ["-fno-exceptions", "-fno-rtti"])
        if err:
            found.append(f"arm-none-eabi-g++ cannot build a C++ program for the Cortex-M4 "
                         f"({err}); {apt.format(PACKAGES['c++'])}")
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        found.append(f"qemu-system-arm is not on PATH; {apt.format(PACKAGES['qemu'])}")
    else:
        listed = subprocess.run([qemu, "-machine", "help"], capture_output=True, text=True).stdout
        names = {line.split()[0] for line in listed.splitlines() if line.strip()}
        lacking = [m for m in BOARD_MACHINES if m not in names]
        if lacking:
            found.append(f"qemu-system-arm has no machine {', '.join(lacking)} (QEMU 7.2 or "
                         f"newer has them); {apt.format(PACKAGES['qemu'])}")
    host_cc = shutil.which("cc") or shutil.which("gcc")
    if host_cc is None:
        found.append(f"no host C compiler (cc or gcc) is on PATH (it builds the benchmark's QEMU "
                     f"cycle plugin); {apt.format(PACKAGES['host-c'])}")
    else:
        err = _host_shared_object(host_cc)
        if err:
            found.append(f"{host_cc} cannot build a host shared object ({err}); "
                         f"{apt.format(PACKAGES['host-c'])}")
    if shutil.which("ser2net") is None:
        found.append(f"ser2net is not on PATH (it puts a board's serial port on the network "
                     f"for `drsn-edge hil --port rfc2217://...`); {apt.format(PACKAGES['ser2net'])}")
    for module in PYTHON_MODULES:
        if importlib.util.find_spec(module) is None:
            found.append(f"Python package {module} is not importable; run scripts/setup.sh "
                         f"(it installs the pinned packages into .venv)")
    return found


def run(quiet: bool = False) -> None:
    found = problems()
    if found:
        raise UserError("; ".join(found) if len(found) == 1 else
                        f"{len(found)} tools missing or broken: " + " | ".join(found))
    if not quiet:
        print("drsn-edge doctor: arm-none-eabi-gcc/g++ (C and C++ for Cortex-M), the host C "
              "compiler (the QEMU cycle plugin), "
              f"qemu-system-arm ({', '.join(BOARD_MACHINES)}) and the Python packages work")

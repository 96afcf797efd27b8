"""`drsn-edge doctor`: a missing or broken tool is one line naming the package to install."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from drsn_edge import doctor

ROOT = Path(__file__).resolve().parent.parent


def test_this_machine_has_every_tool():
    assert doctor.problems() == []


def _shadow(tmp_path, tools: dict[str, str]) -> dict:
    """An environment whose PATH starts with stand-ins for some tools."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in tools.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + script + "\n")
        path.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env


def _doctor(env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drsn_edge.cli", "doctor"], env=env, cwd=ROOT,
                          capture_output=True, text=True)


def test_cxx_library_missing_names_its_package(tmp_path):
    # g++ present but unable to find <cstdio>: what a machine without
    # libstdc++-arm-none-eabi-newlib does.
    env = _shadow(tmp_path, {"arm-none-eabi-g++":
                             "echo 'probe.cc:1:10: fatal error: cstdio: No such file or directory' >&2; exit 1"})
    run = _doctor(env)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "arm-none-eabi-g++ cannot build a C++ program" in lines[0]
    assert "cstdio" in lines[0] and "libstdc++-arm-none-eabi-newlib" in lines[0]


def test_missing_qemu_and_compiler_are_each_named(tmp_path):
    env = dict(os.environ)
    # A PATH with the Python interpreter's folder and the basic tools, without the cross
    # compiler or QEMU.
    keep = tmp_path / "bin"
    keep.mkdir()
    for tool in ("sh", "env"):
        found = shutil.which(tool)
        if found:
            (keep / tool).symlink_to(found)
    env["PATH"] = str(keep)
    run = _doctor(env)
    assert run.returncode == 2
    assert "3 tools missing or broken" in run.stderr or "tools missing" in run.stderr
    for piece in ("arm-none-eabi-gcc is not on PATH", "arm-none-eabi-g++ is not on PATH",
                  "qemu-system-arm is not on PATH", "gcc-arm-none-eabi", "qemu-system-arm",
                  "ser2net is not on PATH", "no host C compiler"):
        assert piece in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_setup_script_installs_every_package_doctor_names():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    line = next(ln for ln in setup.splitlines() if ln.startswith("APT_PACKAGES=("))
    installed = set(line.split("(", 1)[1].rstrip(")").split())
    named = {pkg for pkgs in doctor.PACKAGES.values() for pkg in pkgs.split()}
    assert named <= installed, f"setup.sh does not install {named - installed}"

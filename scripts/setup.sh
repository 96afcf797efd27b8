#!/usr/bin/env bash
# Installs what drsn-edge needs, idempotently: Debian packages (cross compilers for C and
# C++, newlib and its C++ library, QEMU) when missing, a virtual environment in .venv with the
# pinned Python packages, then checks that every tool works (drsn-edge doctor).
# Safe to run again: each step is skipped when already done. Nothing is assumed to be on the
# machine beyond Python 3.11, make and apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every Debian package any part of drsn-edge uses; nothing else is assumed installed.
#   gcc-arm-none-eabi, libnewlib-arm-none-eabi   C firmware (compiled runtime, board layer)
#   libstdc++-arm-none-eabi-newlib               C++ firmware (TFLM back end, C++ harness test)
#   qemu-system-arm                              the emulated boards
#   ser2net                                      a board's serial port on the network (RFC 2217)
APT_PACKAGES=(gcc gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm ser2net)
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if ! command -v apt-get >/dev/null 2>&1; then
        die "missing ${missing[*]} and apt-get is not available; install them with your package manager"
    fi
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif sudo -n true 2>/dev/null; then SUDO=(sudo -n); else
        die "missing Debian packages: ${missing[*]}; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    fi
    # In the background: it and the Python packages below are independent downloads and
    # unpacks, and done one after the other they made up most of a fresh clone's set-up.
    say "installing Debian packages: ${missing[*]}"
    apt_log=$(mktemp)
    (
        "${SUDO[@]}" apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    ) >"$apt_log" 2>&1 &
    apt_pid=$!
fi

# --- Python environment ------------------------------------------------------------------
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "Python 3.11 is required (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11"
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    [ -x .venv/bin/python ] || { say "creating .venv"; "$PYTHON" -m venv .venv || die "could not create .venv (install python3-venv)"; }
    say "installing Python packages into .venv (first time: a few minutes)"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".[dev]" || die "pip could not install the Python packages (see above)"
    rm -f .venv/.installed-*
    touch "$stamp"
fi

if [ -n "${apt_pid:-}" ]; then
    if ! wait "$apt_pid"; then
        cat "$apt_log" >&2
        die "apt-get could not install ${missing[*]}"
    fi
    rm -f "$apt_log"
fi

# --- Check that the tools work, not only that packages are installed ---------------------
.venv/bin/drsn-edge doctor --quiet || die "a tool drsn-edge needs does not work (see above)"

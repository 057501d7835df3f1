#!/bin/sh
# Android tier prerequisites (idempotent): the Debian adb client, qemu-user for aarch64, the aarch64 cross compiler
# (it builds the small shim over ExecuTorch's aarch64 runtime libraries, about 15 s), and the arm64 apt
# architecture that `apt-get download` needs to fetch the arm64 sysroot packages; then `mnv2deploy setup arm64` builds
# the sysroot and aarch64 wheels into the user cache (MNV2DEPLOY_CACHE if set), see mnv2deploy/emulation.py.
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need_update=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
    need_update=1
fi
have_tools() {
    command -v adb >/dev/null 2>&1 && command -v qemu-aarch64-static >/dev/null 2>&1 \
        && command -v aarch64-linux-gnu-g++ >/dev/null 2>&1
}
if ! have_tools; then
    need_update=1
fi
if [ "$need_update" -eq 1 ]; then
    $SUDO apt-get update -qq
fi
if ! have_tools; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static adb \
        g++-aarch64-linux-gnu
fi
# The aarch64 emulation environment (Debian arm64 packages + aarch64 wheels into the user cache): the explicit setup
# step that `parity --arch arm64` and the Android tier need and never perform themselves.
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m mnv2deploy setup arm64

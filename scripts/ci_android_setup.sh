#!/bin/sh
# Android tier prerequisites (idempotent): the Debian adb client, qemu-user for aarch64, and the arm64 apt
# architecture that `apt-get download` needs to fetch the arm64 sysroot packages. The sysroot and aarch64 wheels
# themselves are built on first use into the user cache (MNV2DEPLOY_CACHE if set), see mnv2deploy/android/emulated.py.
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need_update=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
    need_update=1
fi
if ! command -v adb >/dev/null 2>&1 || ! command -v qemu-aarch64-static >/dev/null 2>&1; then
    need_update=1
fi
if [ "$need_update" -eq 1 ]; then
    $SUDO apt-get update -qq
fi
if ! command -v adb >/dev/null 2>&1 || ! command -v qemu-aarch64-static >/dev/null 2>&1; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static adb
fi
# Build (or reuse) the emulation environment now so the tests' first use is not inside a timed test.
PY="${PYTHON:-.venv/bin/python}"
"$PY" -c "from mnv2deploy.android.emulated import ensure_environment; print(ensure_environment())"

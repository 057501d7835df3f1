# Two entry points for a fresh machine (README): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test android-setup

# torch first, pinned: asking pip for plain torch would fetch a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m mnv2deploy run --out out/demo

# Debian's adb and qemu-user-static, then `mnv2deploy setup arm64` (the aarch64 emulation environment) for the
# Android tier and `parity --arch arm64`; commands never build it themselves.
android-setup: setup
	PYTHON=$(PY) sh scripts/ci_android_setup.sh

test: setup android-setup
	$(PY) -m pytest -q

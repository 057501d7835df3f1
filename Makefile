# Two entry points for a fresh machine (README): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test android-setup

# scripts/install.sh: torch's CPU build first (its CPU wheel index, or the configured index where only that answers),
# then the package; the one recipe docs/ci.md uses too.
$(STAMP): pyproject.toml scripts/install.sh
	$(PYTHON) -m venv $(VENV)
	PYTHON=$(PY) sh scripts/install.sh dev
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m mnv2deploy run --out out/demo

# Debian's adb and qemu-user-static, then `mnv2deploy setup arm64` (the aarch64 emulation environment) for the
# Android tier and `parity --arch arm64`; commands never build it themselves.
android-setup: setup
	PYTHON=$(PY) sh scripts/ci_android_setup.sh

# Two pytest processes side by side, one per core (scripts/run_tests.sh says how the suite is split).
test: setup android-setup
	PY=$(PY) sh scripts/run_tests.sh

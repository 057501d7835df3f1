"""Every command with --json prints exactly one JSON object on every exit (issue 17): on failure
``{"error", "hint", "exit_code"}`` beside the one error line on stderr, made in one place (cli/app.py main)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mnv2deploy.cli.app import COMMANDS, GROUPS, main

# one cheap failure per command (and group), no conversion: what is wrong, and the exit code it maps to
FAILURES = {
    "info": (["info", "--width", "2.5"], 2),
    "bench": (["bench", "MISSING.onnx"], 2),
    "devices": (["devices", "--serial", "x"], 2),
    "export": (["export", "--target", "tflite-int4", "--out", "OUT"], 2),
    "memory": (["memory", "MISSING.tflite"], 2),
    "parity": (["parity", "MISSING.onnx"], 2),
    "run": (["run", "--out", "BLOCKED/sub"], 2),
    "setup": (["setup", "arm65"], 2),
    "farm": (["farm", "devices", "--platform", "windows"], 2),
    "usage": (["parity", "MISSING.onnx", "--samples", "0"], 2),
}


def test_every_command_has_a_failure_case():
    assert set(COMMANDS) | set(GROUPS) <= set(FAILURES)


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_failure_prints_one_json_object_beside_one_error_line(name, tmp_path, capsys):
    (tmp_path / "BLOCKED").write_text("a file, not a folder")
    argv, code = FAILURES[name]
    argv = [str(tmp_path / a) if a.isupper() or a.startswith(("MISSING", "BLOCKED")) else a for a in argv]
    assert main([*argv, "--json"]) == code
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 1, out
    obj = json.loads(out)
    assert obj["exit_code"] == code and obj["error"] and "hint" in obj
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: " + obj["error"]) and (obj["hint"] is None or f"(hint: {obj['hint']})" in line)


def test_without_json_stdout_stays_empty_on_failure(capsys, tmp_path):
    assert main(["parity", str(tmp_path / "MISSING.onnx")]) == 2
    assert capsys.readouterr().out == ""


def test_real_cli_usage_error_is_one_json_object():
    """A separate process, as CI calls it: typer's own usage errors (before any command code) too."""
    proc = subprocess.run([sys.executable, "-m", "mnv2deploy", "info", "--resolution", "notanumber", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    obj = json.loads(proc.stdout)
    assert obj["exit_code"] == 2 and "--resolution" in obj["error"] and "Traceback" not in proc.stderr

"""The command line's exit (cli/app.py exit_without_teardown): it skips the interpreter's slow teardown after a
conversion, so it must still keep everything a normal exit gives: the exit code, flushed output, atexit handlers
(temporary folders are removed by them)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# a process that registers its own atexit handler, then runs the real entry point as `mnv2deploy` would
SCRIPT = textwrap.dedent("""
    import atexit, pathlib, sys, tempfile
    keep = tempfile.mkdtemp()
    pathlib.Path(sys.argv[1]).write_text(keep)
    atexit.register(lambda: pathlib.Path(keep, "atexit-ran").write_text("yes"))
    sys.argv = ["mnv2deploy", *sys.argv[2:]]
    from mnv2deploy.cli.app import run
    run()
""")


def _entry(tmp_path, *argv: str) -> tuple[subprocess.CompletedProcess, str]:
    where = tmp_path / "where"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(where), *argv], capture_output=True, text=True,
                          timeout=120)
    return proc, where.read_text()


def test_failure_keeps_exit_code_output_and_atexit_handlers(tmp_path):
    proc, keep = _entry(tmp_path, "parity", str(tmp_path / "MISSING.onnx"), "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["exit_code"] == 2  # the buffered stdout reached the pipe
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert (tmp_path / keep / "atexit-ran").read_text() == "yes"


def test_success_exits_zero_with_the_whole_result(tmp_path):
    proc, keep = _entry(tmp_path, "info", "--resolution", "32", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["resolution"] == 32
    assert (tmp_path / keep / "atexit-ran").exists()

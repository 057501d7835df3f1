"""`mnv2deploy run`: the main job end to end on real exports (two targets to keep CI short), its report files,
--json, the memory comparison, and exit 3 when a parity check fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnv2deploy.cli.app import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """The real CLI in a child process, as a CI job would call it: stdout must be exactly the JSON object."""
    import os
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("run")
    proc = subprocess.run(
        [sys.executable, "-m", "mnv2deploy", "run", "--out", str(out), "--target", "onnx-int8", "--target",
         "tflite-int8", "--split", "2", "--memory-resolution", "32", "--runs", "3", "--warmup", "1", "--samples", "100",
         "--json"], capture_output=True, text=True, timeout=1800, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return proc.returncode, proc.stdout, out, proc.stderr


def test_run_exits_0_and_prints_one_json_object(job):
    code, stdout, out, stderr = job
    assert code == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    report = json.loads(stdout)  # exactly one object: converter chatter went to run.log
    assert report == json.loads((out / "report.json").read_text())
    assert [r["target"] for r in report["targets"]] == ["onnx-int8", "tflite-int8"]


def test_every_target_exported_checked_and_timed(job):
    out = job[2]
    report = json.loads((out / "report.json").read_text())
    for row in report["targets"]:
        assert Path(row["export"]["artifact"]).is_file()
        assert Path(row["export"]["manifest"]).is_file()
        assert row["parity"]["passed"] is True and row["parity"]["samples"] == 100
        assert row["parity"]["top1_agreement"] >= 0.98
        assert row["bench"]["runs"] == 3 and row["bench"]["p50_ms"] > 0
    assert report["passed"] is True


def test_memory_split_shrinks_the_measured_arena(job):
    out = job[2]
    mem = json.loads((out / "report.json").read_text())["memory"]
    assert mem["split"]["groups"] == 2 and mem["resolution"] == 32
    assert "-32-split2." in mem["split"]["artifact"]
    assert mem["split"]["measured_peak_bytes"] < mem["plain"]["measured_peak_bytes"]
    assert mem["reduction"] == pytest.approx(mem["plain"]["measured_peak_bytes"] / mem["split"]["measured_peak_bytes"])


def test_markdown_report_chart_and_log(job):
    out = job[2]
    md = (out / "report.md").read_text()
    assert "| onnx-int8 |" in md and "| tflite-int8 |" in md and "not a phone" in md
    # issue 17: what a reader needs to judge the numbers
    assert "3 timed runs after 1 warm-up runs" in md and "parity on 100 images (--samples)" in md
    assert "Load flag:" in md and "CPU flags:" in md and "load average" in md
    report = json.loads((out / "report.json").read_text())
    for row in report["targets"]:
        b = row["bench"]
        assert isinstance(b["loaded"], bool) and b["warmup"] == 1
        assert 0 < b["model_rss_bytes"] < b["peak_memory_bytes"]  # the model's share beside the process peak
        assert f"| {row['target']} |" in md and f"| {b['runs']} ({b['warmup']}) | {'**yes**' if b['loaded'] else 'no'} |" in md
    assert "model RSS" in md and "process peak RSS" in md
    assert "XNNPACK with LiteRT's default options" in md and "**no saving**" in md  # which kernels saw the split's saving
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "LiteRT" in (out / "run.log").read_text() or (out / "run.log").stat().st_size > 0
    assert not list(out.rglob(".*partial*"))


def test_failed_parity_exits_3_and_still_writes_the_report(tmp_path, monkeypatch, capsys):
    from dataclasses import replace

    from mnv2deploy import tolerance

    impossible = {k: replace(v, min_agreement=1.01) for k, v in tolerance.TOLERANCES.items()}
    monkeypatch.setattr(tolerance, "TOLERANCES", impossible)
    # --workers 1: the patched tolerances live in this process only
    code = main(["run", "--out", str(tmp_path), "--target", "onnx", "--split", "1", "--runs", "2", "--warmup", "0",
                 "--samples", "20", "--workers", "1"])
    assert code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: parity failed for onnx") and "Traceback" not in "\n".join(err)
    assert "FAIL" in (tmp_path / "report.md").read_text()
    # the progress console follows sys.stderr again (pinned to this test's capture, later commands hit a closed file)
    from mnv2deploy.cli import common
    assert common.stderr._file is None


def test_unwritable_out_fails_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", "--out", str(blocker / "sub")]) == 2
    assert "cannot create output folder" in capsys.readouterr().err

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
    import torch

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(["run", "--out", str(out), "--target", "onnx-int8", "--target", "tflite-int8", "--split", "2",
                     "--runs", "3", "--warmup", "1", "--samples", "100", "--json"])
    return code, buf.getvalue(), out


def test_run_exits_0_and_prints_one_json_object(job):
    code, stdout, out = job
    assert code == 0
    report = json.loads(stdout)  # exactly one object: converter chatter went to run.log
    assert report == json.loads((out / "report.json").read_text())
    assert [r["target"] for r in report["targets"]] == ["onnx-int8", "tflite-int8"]


def test_every_target_exported_checked_and_timed(job):
    _, _, out = job
    report = json.loads((out / "report.json").read_text())
    for row in report["targets"]:
        assert Path(row["export"]["artifact"]).is_file()
        assert Path(row["export"]["manifest"]).is_file()
        assert row["parity"]["passed"] is True and row["parity"]["samples"] == 100
        assert row["parity"]["top1_agreement"] >= 0.98
        assert row["bench"]["runs"] == 3 and row["bench"]["p50_ms"] > 0
    assert report["passed"] is True


def test_memory_split_shrinks_the_measured_arena(job):
    _, _, out = job
    mem = json.loads((out / "report.json").read_text())["memory"]
    assert mem["split"]["groups"] == 2
    assert mem["split"]["measured_peak_bytes"] < mem["plain"]["measured_peak_bytes"]
    assert mem["reduction"] == pytest.approx(mem["plain"]["measured_peak_bytes"] / mem["split"]["measured_peak_bytes"])


def test_markdown_report_chart_and_log(job):
    _, _, out = job
    md = (out / "report.md").read_text()
    assert "| onnx-int8 |" in md and "| tflite-int8 |" in md and "not a phone" in md
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "LiteRT" in (out / "run.log").read_text() or (out / "run.log").stat().st_size > 0
    assert not list(out.rglob(".*partial*"))


def test_failed_parity_exits_3_and_still_writes_the_report(tmp_path, monkeypatch, capsys):
    from dataclasses import replace

    from mnv2deploy import parity

    impossible = {k: replace(v, min_agreement=1.01) for k, v in parity.TOLERANCES.items()}
    monkeypatch.setattr(parity, "TOLERANCES", impossible)
    code = main(["run", "--out", str(tmp_path), "--target", "onnx", "--split", "1", "--runs", "2", "--warmup", "0",
                 "--samples", "20"])
    assert code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: parity failed for onnx") and "Traceback" not in "\n".join(err)
    assert "FAIL" in (tmp_path / "report.md").read_text()


def test_unwritable_out_fails_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", "--out", str(blocker / "sub")]) == 2
    assert "cannot create output folder" in capsys.readouterr().err

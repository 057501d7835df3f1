"""`memory --arch arm64`: LiteRT's aarch64 kernels under qemu measure the same artifact the host measured (real
aarch64 runs, marked `android` like the rest of the emulated tier; the embedded default at 32x32)."""

from __future__ import annotations

import json

import pytest

from mnv2deploy.cli.app import main
from mnv2deploy.memory.arm64 import scratch_differences



@pytest.fixture(scope="module")
def int8_pair(export_artifact):
    """The int8 export of the embedded default (32x32) and its --split 2 twin, shared with tests/targets."""
    return export_artifact("tflite-int8").artifact, export_artifact("tflite-int8", split=2).artifact


def _json(capsys, *argv) -> dict:
    capsys.readouterr()
    code = main(["memory", *map(str, argv), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


@pytest.mark.android
def test_arm64_json_says_aarch64_and_measures_every_kernel_setting(int8_pair, capsys):
    plain, _ = int8_pair
    out = _json(capsys, plain, "--arch", "arm64")
    m = out["measurements"]
    assert out["arch"] == "aarch64" and out["emulated"]["cpu"] == "cortex-a76" and "qemu" in out["emulated"]["emulator"]
    assert m["host"]["arch"] == "x86_64"
    # the aarch64 planner's addresses give the same arena as x86's for this model (int8 kernels, same scratch)
    assert out["measured_peak_bytes"] == m["builtin_arena_bytes"] == m["host"]["builtin_arena_bytes"] > 0
    assert m["same_arena_as_host"] is True and m["scratch_differences"] == []
    assert out["static_peak_bytes"] <= out["measured_peak_bytes"]
    assert set(m["footprint"]) == {"builtin", "xnnpack", "xnnpack-transient"}
    for kernels, fp in m["footprint"].items():
        assert fp["machine"] == "aarch64" and fp["kernels"] == kernels
        assert fp["delegated"] is (kernels != "builtin")  # int8 flags kept: XNNPACK really took the graph
        assert fp["heap_bytes"] > m["builtin_arena_bytes"]  # the arena is in it, with the packed weights etc.
    assert m["footprint"]["xnnpack-transient"]["xnnpack_flags"] == 0x23


@pytest.mark.android
def test_arm64_split_arena_shrinks_on_the_older_cpu_too(int8_pair, capsys):
    plain, split = int8_pair
    arenas = {}
    for name, path in (("plain", plain), ("split", split)):
        out = _json(capsys, path, "--arch", "arm64", "--cpu", "cortex-a57", "--no-xnnpack")
        assert out["arch"] == "aarch64" and out["emulated"]["cpu"] == "cortex-a57"
        assert set(out["measurements"]["footprint"]) == {"builtin"}
        arenas[name] = out["measured_peak_bytes"]
        assert arenas[name] == out["measurements"]["host"]["builtin_arena_bytes"]
    assert arenas["split"] < arenas["plain"], arenas


@pytest.mark.android
def test_arm64_table_shows_both_machines(int8_pair, capsys):
    plain, _ = int8_pair
    capsys.readouterr()
    assert main(["memory", str(plain), "--arch", "arm64", "--no-xnnpack"]) == 0
    text = capsys.readouterr().out
    assert "aarch64" in text and "x86_64 (this host)" in text and "EMULATED" in text
    assert "scratch buffers: identical" in text


@pytest.mark.android
def test_a_file_the_aarch64_runtime_refuses_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "junk.tflite"
    bad.write_bytes(b"TFL3" + bytes(range(256)) * 4)
    assert main(["memory", str(bad), "--arch", "arm64", "--no-xnnpack"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--arch", "arm64"], "measures .tflite files"),
    (["--cpu", "cortex-a57"], "--cpu only applies to --arch arm64"),
    (["--arch", "riscv"], "--arch 'riscv' is not supported"),
    (["--twin", "x.tflite"], "only apply to --device"),
    (["--runs", "5", "--split", "2"], "--split, --runs only apply to --device"),
    (["--device", "iphone"], "measures Android phones"),
    (["--device", "pixel", "--arch", "arm64"], "--arch does not apply"),
])
def test_option_misuse_is_a_usage_error(tiny_onnx, capsys, argv, message):
    assert main(["memory", str(tiny_onnx), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_cpu_max_is_refused(tmp_path, capsys):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x" * 64)
    assert main(["memory", str(model), "--arch", "arm64", "--cpu", "max"]) == 2
    assert "'max' not supported" in capsys.readouterr().err


def test_scratch_differences_count_each_shape():
    im2col = {"shape": [1, 16, 16, 27], "dtype": "int8", "nbytes": 6912}
    acc = {"shape": [1280], "dtype": "int32", "nbytes": 5120}
    assert scratch_differences([im2col, acc], [acc, im2col]) == []
    assert scratch_differences([im2col, im2col], [im2col]) == ["1x16x16x27 int8 (6912 B): aarch64 x2, x86_64 x1"]
    assert scratch_differences([], [acc]) == ["1280 int32 (5120 B): aarch64 x0, x86_64 x1"]


@pytest.mark.android
def test_the_main_job_adds_the_aarch64_arena_beside_the_hosts(int8_pair):
    from mnv2deploy.job import _arm64_arenas
    from mnv2deploy.memory.tflite_graph import read_tflite

    plain, split = int8_pair
    result = {"plain": {"artifact": str(plain)}, "split": {"artifact": str(split)}}
    steps = []
    _arm64_arenas(result, steps.append)
    assert len(steps) == 2 and "arm64_skipped" not in result
    for key, path in (("plain", plain), ("split", split)):
        arm = result[key]["arm64"]
        assert result[key]["arm64_error"] is None and arm["arch"] == "aarch64" and arm["emulated"] is True
        assert arm["arena_bytes"] == read_tflite(path).extra["arena_bytes"]


def test_the_main_job_says_why_the_aarch64_arena_is_missing(monkeypatch):
    from pathlib import Path

    from mnv2deploy import emulation, job
    from mnv2deploy.job_report import render_markdown

    monkeypatch.setattr(emulation, "emulation_dir", lambda: Path("/nonexistent/arm64-emu"))
    result = {"target": "tflite-int8", "resolution": 224,
              "plain": {"artifact": "p.tflite", "measured_peak_bytes": 2_602_368, "static_peak_bytes": 2_450_000,
                        "largest_tensor": None, "groups": 1}}
    job._arm64_arenas(result, lambda _m: None)
    assert "arm64_skipped" in result and "plain" in result and "arm64" not in result["plain"]
    report = {"model": {"weights": {"width_mult": 1.0, "num_classes": 10, "id": "default"}, "resolution": 32,
                        "weights_sha256": "0" * 64}, "host": {"cpu": "x", "threads": 1}, "passed": True,
              "seconds": 1.0, "targets": [], "skipped_targets": [], "memory": result}
    md = render_markdown(report, None)
    assert "arena aarch64 (qemu)" in md and "aarch64 arena not measured:" in md and "| 2.60 MB | - |" in md
    result["plain"]["arm64"] = {"arena_bytes": 2_602_368}
    del result["arm64_skipped"]
    assert "| 2.60 MB | 2.60 MB |" in render_markdown(report, None)

"""`mnv2deploy bench` through the CLI: bad artifacts exit 2 with one line, options that do not apply are errors,
and real short runs of every host-runnable target (slow: they need exported artifacts)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mnv2deploy.cli.app import main
from mnv2deploy.cli.bench import device_kind

from .conftest import LATENCY_KEYS, TOP_KEYS, load_json_line, write_broken


def _fails_with_one_line(argv, capsys, code=2, contains=""):
    assert main(argv) == code
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert contains in errors[0]
    return errors[0]


def test_random_bytes_onnx_exits_2(tmp_path, capsys):
    art = write_broken(tmp_path, "junk.onnx", os.urandom(4096), target="onnx")
    _fails_with_one_line(["bench", str(art), "--runs", "2"], capsys, contains="onnxruntime cannot load")


def test_random_bytes_tflite_exits_2(tmp_path, capsys):
    art = write_broken(tmp_path, "junk.tflite", os.urandom(4096))
    _fails_with_one_line(["bench", str(art), "--runs", "2"], capsys, contains="junk.tflite")


def test_missing_manifest_exits_2(tmp_path, capsys):
    art = tmp_path / "lonely.tflite"
    art.write_bytes(b"TFL3" + os.urandom(100))
    _fails_with_one_line(["bench", str(art)], capsys, contains="no manifest")


def test_missing_artifact_exits_2(tmp_path, capsys):
    _fails_with_one_line(["bench", str(tmp_path / "nothing.onnx")], capsys, contains="does not exist")


def test_file_changed_after_export_exits_2(tmp_path, capsys):
    art = write_broken(tmp_path, "m.onnx", os.urandom(64), target="onnx")
    art.write_bytes(os.urandom(64))
    _fails_with_one_line(["bench", str(art)], capsys, contains="does not match its manifest")


@pytest.mark.parametrize("argv, contains", [
    (["--no-xnnpack"], "--no-xnnpack applies to LiteRT"),
    (["--runtime", "tensorrt"], "--runtime 'tensorrt' unknown"),
    (["--runner", "/bin/true"], "--runner only applies to Android"),
    (["--cores", "x-y"], "not a CPU list"),
    (["--cores", "1000"], "cannot use"),
    (["--device", "pixel", "--batch", "4"], "--batch only apply to --device host"),
])
def test_options_that_do_not_apply_exit_2(tmp_path, capsys, argv, contains):
    art = write_broken(tmp_path, "m.onnx", os.urandom(64), target="onnx")
    _fails_with_one_line(["bench", str(art), *argv], capsys, contains=contains)


@pytest.mark.parametrize("device, artifact, kind", [
    ("host", "m.tflite", "host"), ("iphone", "m.tflite", "ios"), ("iPhone", "m.mlpackage", "ios"),
    ("00008030-001A2D3C0E78802E", "m.mlpackage", "ios"), ("a" * 40, "m.mlpackage", "ios"),
    ("pixel", "m.mlpackage", "ios"), ("pixel", "m.tflite", "android"), ("emulator-5554", "m.tflite", "android"),
    ("127.0.0.1:5555", "m.tflite", "android"), ("8A2X0K4C", "m.tflite", "android"),
])
def test_device_dispatch(device, artifact, kind):
    assert device_kind(device, Path(artifact)) == kind


# --- real artifacts (the shared session exports of the embedded default at 32x32) ----------------------------

@pytest.mark.slow
def test_truncated_tflite_exits_2_and_the_parent_lives_on(export_artifact, tmp_path, capsys):
    real = export_artifact("tflite-int8").artifact.read_bytes()
    art = write_broken(tmp_path, "cut.tflite", real[: len(real) * 2 // 3])
    _fails_with_one_line(["bench", str(art), "--runs", "2"], capsys, contains="cut.tflite")
    art = write_broken(tmp_path, "head.tflite", real[:64])
    _fails_with_one_line(["bench", str(art), "--runs", "2"], capsys, contains="head.tflite")


RUNS = [("tflite", "auto", "litert", "xnnpack"), ("tflite-int8", "auto", "litert", "xnnpack"),
        ("onnx", "auto", "onnxruntime", "CPUExecutionProvider"),
        ("onnx-int8", "auto", "onnxruntime", "CPUExecutionProvider"), ("tflite", "torch", "torch", "eager")]


@pytest.mark.slow
@pytest.mark.parametrize("target, runtime, runtime_name, delegate", RUNS)
def test_real_short_run(export_artifact, tmp_path, capsys, target, runtime, runtime_name, delegate):
    art = export_artifact(target).artifact
    code = main(["bench", str(art), "--runs", "5", "--warmup", "1", "--runtime", runtime, "--json",
                 "--out", str(tmp_path)])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    d = load_json_line(cap.out)
    assert TOP_KEYS <= set(d) and set(d["latency_ms"]) == LATENCY_KEYS
    lat = d["latency_ms"]
    assert lat["count"] == 5 and 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]
    assert len(d["raw"]["samples_ms"]) == 5
    assert d["runtime"] == runtime_name and d["delegate"] == delegate and d["threads"] == 1
    assert d["device"] == "host" and d["emulated"] is False and d["init_ms"] > 0 and d["first_inference_ms"] > 0
    mem = d["memory"]
    assert d["peak_memory_bytes"] == mem["peak_rss_bytes"] > mem["baseline_rss_bytes"] > 0
    assert mem["peak_increase_bytes"] == mem["peak_rss_bytes"] - mem["baseline_rss_bytes"]
    assert d["precision"] == ("fp32" if runtime == "torch" else export_artifact(target).manifest.precision)
    assert Path(d["files"]["json"]).is_file() and Path(d["files"]["histogram"]).stat().st_size > 0


@pytest.mark.slow
def test_builtin_kernels_two_threads_pinned_and_a_batch(export_artifact, capsys):
    from mnv2deploy.bench.host import HostBenchConfig, run_host_bench

    exported = export_artifact("tflite-int8")
    cpu = sorted(os.sched_getaffinity(0))[0]
    config = HostBenchConfig.for_format("tflite", threads=2, runs=3, warmup=0, batch=3, xnnpack=False, cores=(cpu,))
    r = run_host_bench(exported.artifact, exported.manifest, config)
    assert r.delegate == "none" and r.threads == 2 and r.batch == 3 and r.latency_ms.count == 3
    assert r.device.details["affinity"] == [cpu] and r.device.details["runtime_details"]["delegate"] == "builtin"
    assert any("per call of 3 images" in n for n in r.notes)


@pytest.mark.slow
def test_human_table(export_artifact, capsys):
    art = export_artifact("onnx").artifact
    assert main(["bench", str(art), "--runs", "3", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    for want in ("onnxruntime", "p50", "trimmed mean", "peak memory", "first inference"):
        assert want in out

""".pte files as real aarch64 code: ExecuTorch's aarch64 runtime under qemu (parity --arch arm64), the emulated
Android tier's executor_runner stand-in through the real adb client, and executor_runner's log format."""

import json
from pathlib import Path

import numpy as np
import pytest

from mnv2deploy import emulation
from mnv2deploy.android.bench import run_android_bench
from mnv2deploy.android.executor_runner_output import parse_executor_runner_output
from mnv2deploy.cli.app import main
from mnv2deploy.errors import BadArtifactError
from mnv2deploy.manifest import read_manifest
from mnv2deploy.runtimes.executorch_arm64 import RUNNER, run_model_inputs

pytestmark = pytest.mark.android
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def pte_root():
    return emulation.executorch_environment()  # `make android-setup` (mnv2deploy setup arm64) builds it


@pytest.fixture(scope="module")
def pte_fp32(export_artifact):
    return export_artifact("executorch").artifact


def _json(capsys):
    captured = capsys.readouterr()
    return json.loads(captured.out.strip().splitlines()[-1]), captured.err


@pytest.mark.slow
def test_parity_arm64_on_the_int8_pte_passes_and_says_aarch64(export_artifact, pte_root, capsys):
    art = export_artifact("executorch-int8").artifact
    code = main(["parity", str(art), "--arch", "arm64", "--samples", "100", "--json"])
    r, err = _json(capsys)
    assert code == 0, err
    assert r["arch"] == "aarch64" and r["runtime"] == "executorch-arm64" and r["passed"] is True
    assert r["runtime_details"]["emulated"] is True and r["runtime_details"]["delegate"] == "xnnpack"
    assert r["top1_agreement"] >= 0.98 and r["conversion_fidelity"] is not None


@pytest.mark.parametrize("cpu", emulation.CPUS)
def test_aarch64_fp32_matches_host_executorch(pte_fp32, images, pte_root, cpu):
    from mnv2deploy.runtimes.executorch import ExecutorchRuntime

    manifest = read_manifest(pte_fp32)
    host = ExecutorchRuntime()
    host.load(pte_fp32, manifest, threads=1)
    arm = run_model_inputs(pte_fp32, images, cpu, root=pte_root)
    ref = host.run(images)
    assert arm.shape == ref.shape == (len(images), 10)
    assert np.abs(arm - ref).max() < 1e-3 and (arm.argmax(1) == ref.argmax(1)).all()


def test_a_file_that_is_not_a_program_is_one_line(tmp_path, images, pte_root):
    bad = tmp_path / "model.pte"
    bad.write_bytes(b"PK\x03\x04 not a program")
    with pytest.raises(BadArtifactError, match="not an ExecuTorch program") as e:
        run_model_inputs(bad, images, root=pte_root)
    assert "\n" not in e.value.one_line()


def test_a_truncated_program_is_one_line_from_the_aarch64_loader(pte_fp32, tmp_path, images, pte_root):
    cut = tmp_path / "cut.pte"
    cut.write_bytes(pte_fp32.read_bytes()[:4096])
    with pytest.raises(BadArtifactError, match="aarch64 ExecuTorch under qemu failed on cut.pte") as e:
        run_model_inputs(cut, images, root=pte_root)
    assert "\n" not in e.value.one_line()


def test_missing_executorch_env_is_exit_4_with_the_setup_hint(pte_fp32, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNV2DEPLOY_CACHE", str(tmp_path / "empty"))
    assert main(["parity", str(pte_fp32), "--arch", "arm64", "--samples", "2"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mnv2deploy setup arm64" in err[0], err


def test_bench_on_the_loopback_device_runs_the_standin_and_says_emulated(make_device, pte_fp32, pte_root, tmp_path):
    dev = make_device()
    result = run_android_bench(pte_fp32, read_manifest(pte_fp32), device=dev.serial, threads=1, runs=3, warmup=1,
                               runner=RUNNER, out=tmp_path / "r.json")
    d = result.to_dict()
    assert d["emulated"] is True and "EMULATED" in d["notes"][0] and d["runtime"] == "executorch-arm64-standin"
    assert d["latency_ms"]["count"] == 3 and d["warmup"] == 1 and d["init_ms"] > 0
    assert 0 < d["latency_ms"]["min"] <= d["latency_ms"]["p50"] <= d["latency_ms"]["max"]
    assert d["peak_memory_bytes"] is None and d["delegate"] == "xnnpack"
    assert any("--model_path=" in c and "--num_executions=4" in c for c in dev.commands)
    raw = Path(d["raw"]["output"]).read_text()
    assert "Iteration 4 of 4:" in raw and "Model executed successfully 4 time(s)" in raw
    assert not any((dev.root / "data/local/tmp").iterdir())


def test_bench_pte_without_a_runner_is_exit_4_one_line(pte_fp32, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNV2DEPLOY_CACHE", str(tmp_path))
    assert main(["bench", str(pte_fp32), "--device", "SERIAL123"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "executor_runner" in err[0] and "NDK" in err[0], err


def test_parser_reads_the_v1_4_runner_per_execution():
    p = parse_executor_runner_output((FIXTURES / "executor_runner_v1_4.txt").read_text())
    assert p.load_ms == 12.903516 and p.planned == 6 and p.executions == 6 and p.total_ms == 11.565416
    assert p.iterations_ms[0] == 3.331875 and len(p.iterations_ms) == 6 and p.per_iteration
    warm, timed = p.split(1)
    assert warm == (3.331875,) and timed[-1] == 1.667552 and p.complete(1) and not p.complete(6)


def test_parser_reads_the_pre_v1_3_total_and_logcat_lines():
    old = parse_executor_runner_output((FIXTURES / "executor_runner_v1_2.txt").read_text())
    assert not old.per_iteration and old.executions == 6 and old.total_ms == 11.565416 and old.load_ms is None
    assert old.complete(1)
    cat = parse_executor_runner_output((FIXTURES / "executor_runner_logcat.txt").read_text())
    assert cat.iterations_ms == (3.331875, 1.690156, 1.621041) and cat.load_ms == 12.903516 and cat.complete(1)


def test_parser_on_output_cut_short_keeps_what_was_measured():
    text = (FIXTURES / "executor_runner_v1_4.txt").read_text().split("Iteration 4 of 6")[0]
    p = parse_executor_runner_output(text)
    assert len(p.iterations_ms) == 3 and p.executions is None and not p.complete(1)
    assert parse_executor_runner_output("Iteration 1 of 2: nan ms\nIteration 7 of 2: 1.0 ms\n").iterations_ms == ()


def test_setup_without_the_cross_compiler_is_exit_4_naming_the_package(tmp_path, monkeypatch, capsys):
    """An environment built before ExecuTorch joined it only gets the ExecuTorch part added, which needs the cross
    compiler: without it, one line naming the Debian package, and nothing half-built left behind."""
    bin_dir, root = tmp_path / "bin", tmp_path / "cache" / "arm64-emu"
    bin_dir.mkdir()
    root.mkdir(parents=True)
    (bin_dir / emulation.QEMU).write_text("#!/bin/sh\n")
    (bin_dir / emulation.QEMU).chmod(0o755)
    (root / emulation.STAMP).write_text("{}")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("MNV2DEPLOY_CACHE", str(tmp_path / "cache"))
    assert "ExecuTorch's aarch64 runtime is not set up" in emulation.executorch_unavailable_reason()
    assert main(["setup", "arm64"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "aarch64-linux-gnu-g++ not found" in err[0] and "g++-aarch64-linux-gnu" in err[0], err
    assert sorted(p.name for p in root.iterdir()) == [emulation.STAMP]

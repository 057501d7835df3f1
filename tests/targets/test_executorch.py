"""The ExecuTorch targets for real: .pte programs from ExecuTorch's own exporter, run in its runtime (a child
process), judged like every other artifact; bad .pte files and unsupported requests are one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mnv2deploy.errors import UsageError
from mnv2deploy.manifest import manifest_path, read_manifest
from mnv2deploy.runtimes import run_artifact
from mnv2deploy.runtimes.child import call_in_child
from mnv2deploy.targets import TARGETS, get_target
from mnv2deploy.targets.base import ExportRequest
from mnv2deploy.weights import load_reference, resolve_weights


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnv2deploy", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def reference():
    return load_reference(resolve_weights("default"))


def test_dynamic_batch_is_refused_naming_the_targets_that_have_it(reference, tmp_path):
    for name in ("executorch", "executorch-int8"):
        with pytest.raises(UsageError) as err:
            get_target(name).export(ExportRequest(reference, 32, tmp_path, dynamic_batch=True))
        able = [n for n, t in TARGETS.items() if t.supports_dynamic_batch]
        assert able and all(n in err.value.hint for n in able) and "--dynamic-batch" in err.value.hint
    assert list(tmp_path.iterdir()) == []


def test_unknown_delegate_lists_the_choices(reference, tmp_path):
    with pytest.raises(UsageError) as err:
        get_target("executorch").export(ExportRequest(reference, 32, tmp_path, options={"delegate": "gpu"}))
    assert "xnnpack" in err.value.hint and "none" in err.value.hint
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_fp32_pte_matches_pytorch_at_another_width_and_resolution(export_artifact):
    spec = resolve_weights("random", width_mult=0.5, num_classes=100, resolution=96)
    model = load_reference(spec).model
    x = np.random.default_rng(0).standard_normal((16, 3, 96, 96)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    result = export_artifact("executorch", weights="random", width=0.5, num_classes=100, resolution=96)
    assert result.artifact.name == "mobilenet_v2-0.5-96.fp32.pte"
    out = call_in_child(run_artifact, str(result.artifact), result.manifest, x, "x86_64", 1, timeout=600)
    diff = np.abs(out["logits"] - ref).max()
    # random init gives tiny logits, so 1e-3 absolute alone would be hollow: also bound it relatively
    assert diff <= 1e-3 and diff <= 1e-4 * np.abs(ref).max()
    assert (out["logits"].argmax(1) == ref.argmax(1)).mean() >= 0.995
    assert out["runtime"] == "executorch" and out["details"]["delegate"] == "xnnpack"
    m = read_manifest(result.artifact)
    assert m.format == "pte" and m.tool_versions["executorch"] and m.export_options["delegate"] == "xnnpack"


@pytest.mark.slow
def test_int8_export_of_the_default_passes_parity_with_conversion_fidelity(executorch_int8):
    proc = cli("parity", executorch_int8, "--json")
    assert proc.returncode == 0, proc.stderr[-800:]
    report = json.loads(proc.stdout)
    assert report["runtime"] == "executorch" and report["samples"] == 500 and report["passed"]
    assert report["top1_agreement"] >= 0.98 and report["accuracy_drop"] <= 1.0
    fidelity = report["conversion_fidelity"]
    assert fidelity["status"] == "compared" and fidelity["top1_agreement"] >= report["top1_agreement"]
    m = read_manifest(executorch_int8)
    assert m.inputs[0].dtype == m.outputs[0].dtype == "float32"  # the program quantizes inside
    assert m.extra["calibration"] == {"source": "embedded:calib", "samples": 200}


@pytest.mark.slow
def test_host_bench_json_reports_p50_and_peak_memory(executorch_fp32):
    proc = cli("bench", executorch_fp32, "--device", "host", "--runs", "5", "--warmup", "1", "--json")
    assert proc.returncode == 0, proc.stderr[-800:]
    out = json.loads(proc.stdout)
    assert out["runtime"] == "executorch" and out["latency_ms"]["p50"] > 0 and out["peak_memory_bytes"] > 0


def _bad_copies(src, tmp_path):
    """(what, artifact) pairs: truncated, not a .pte at all, and a manifest that describes another model."""
    import shutil

    cases = []
    for kind in ("truncated", "not-a-pte", "wrong-manifest"):
        art = tmp_path / kind / src.name
        art.parent.mkdir()
        shutil.copy(src, art)
        shutil.copy(manifest_path(src), manifest_path(art))
        d = json.loads(manifest_path(art).read_text())
        data = art.read_bytes()
        if kind == "truncated":
            art.write_bytes(data[: len(data) // 3])
        elif kind == "not-a-pte":
            art.write_bytes(np.random.default_rng(0).bytes(len(data)))
        else:
            d["inputs"][0]["shape"] = [1, 3, 64, 64]
            d["preprocessing"]["resolution"] = d["preprocessing"]["resize"] = 64
        if kind != "wrong-manifest":
            import hashlib

            d["artifact_sha256"] = hashlib.sha256(art.read_bytes()).hexdigest()  # past the hash: the runtime judges
        manifest_path(art).write_text(json.dumps(d))
        cases.append((kind, art))
    return cases


@pytest.mark.slow
def test_bad_pte_files_are_one_line_and_exit_2(executorch_fp32, tmp_path):
    for kind, art in _bad_copies(executorch_fp32, tmp_path):
        for command in (["parity", art, "--samples", "2"], ["bench", art, "--runs", "2"]):
            proc = cli(*command)
            lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
            assert proc.returncode == 2, (kind, command[0], proc.stderr[-600:])
            assert len(lines) == 1 and "Traceback" not in proc.stderr, (kind, proc.stderr[-600:])
    proc = cli("memory", tmp_path / "not-a-pte" / executorch_fp32.name)
    assert proc.returncode == 2 and "not an ExecuTorch program" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_memory_plan_of_the_portable_export_shrinks_when_split(export_artifact):
    """ExecuTorch plans every activation of a non-delegated program ahead of time; the plan read from the file is
    what the runtime allocates, and splitting each block into 4 channel groups shrinks it (the paper's claim)."""
    from mnv2deploy.memory.report import analyze_artifact

    plans = {}
    for split in (1, 4):
        result = export_artifact("executorch", resolution=96, split=split, delegate="none")
        assert result.artifact.name.endswith(".fp32.portable.pte")
        report = analyze_artifact(result.artifact).to_dict()
        m = report["measurements"]
        assert m["delegates"] == [] and m["planned_buffer_sizes"][0] == 0
        # every planned tensor lies inside the planned buffer, and the plan holds the live set at its peak
        assert m["planned_tensor_span_bytes"] == m["planned_bytes"] == report["measured_peak_bytes"]
        assert report["largest_tensor"]["bytes"] <= report["static_peak_bytes"] <= m["planned_bytes"]
        plans[split] = m["planned_bytes"]
    assert plans[4] < 0.6 * plans[1], plans

"""`memory ART --device SERIAL` end to end: the real adb client, the loopback device, the stand-in runner as real
aarch64 code under qemu, the int8 export of the embedded default (32x32) and its --split 2 twin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnv2deploy.cli.app import main
from mnv2deploy.errors import DeviceError
from mnv2deploy.memory.device import run_device_memory
from mnv2deploy.memory.tflite_graph import read_tflite

STANDIN = Path(__file__).resolve().parents[2] / "android_bench" / "benchmark_model.py"  # the aarch64 stand-in runner

pytestmark = pytest.mark.android


@pytest.fixture(scope="module")
def int8_pair(export_artifact):
    return export_artifact("tflite-int8").artifact, export_artifact("tflite-int8", split=2).artifact


def test_device_memory_plain_and_split_with_every_kernel_setting(make_device, int8_pair, tmp_path, capsys):
    plain, split = int8_pair
    dev = make_device()
    capsys.readouterr()
    code = main(["memory", str(plain), "--device", dev.serial, "--runner", str(STANDIN), "--twin", str(split),
                 "--runs", "1", "--out", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    d = json.loads(captured.out)
    assert d["emulated"] is True and d["device"] == dev.serial and "EMULATED" in d["notes"][0]
    assert d["splits"] == {"plain": 1, "split": 2}
    runs = {(r["model"], r["kernels"]): r for r in d["runs"]}
    assert set(runs) == {(m, k) for m in ("plain", "split") for k in ("builtin", "xnnpack", "xnnpack-transient")}
    assert not [r for r in d["runs"] if "error" in r]
    for model, path in (("plain", plain), ("split", split)):
        # builtin kernels: the runner's arena line is the aarch64 planner's exact span, the host reads the same
        assert runs[(model, "builtin")]["arena_bytes"] == read_tflite(path).extra["arena_bytes"]
        # XNNPACK: only the delegate's input and output stay in LiteRT's arena (int8 1x3x32x32 in, 10 logits out)
        assert runs[(model, "xnnpack")]["arena_bytes"] < 3072 + 64
        assert "arena_bytes" not in runs[(model, "xnnpack-transient")]  # CompiledModel shows no tensors
        for k in ("builtin", "xnnpack", "xnnpack-transient"):
            r = runs[(model, k)]
            assert r["peak_footprint_bytes"] > 0 and r["heap_init_bytes"] > 0
            assert Path(r["raw"]).is_file() and r["raw"].startswith(str(tmp_path))
    assert d["ratios"]["builtin"]["arena_bytes"] < 1.0  # the split arena is smaller on the (emulated) phone too
    assert d["ratios"]["builtin"]["arena_bytes"] == pytest.approx(
        runs[("split", "builtin")]["arena_bytes"] / runs[("plain", "builtin")]["arena_bytes"], abs=1e-4)
    # the transient flag reached XNNPACK: its workspace plus weights stay below the default delegate's for the split
    assert runs[("split", "xnnpack-transient")]["heap_init_bytes"] != runs[("split", "xnnpack")]["heap_init_bytes"]
    assert (dev.root / "taskset.log").read_text().split() == ["c"] * 6  # every run pinned to the big cores
    assert not any((dev.root / "data/local/tmp").iterdir())  # everything pushed was removed
    assert sum("--print_preinvoke_state=true" in c for c in dev.commands) == 6


def test_device_memory_finds_the_twin_beside_the_artifact(make_device, int8_pair, tmp_path):
    plain, split = int8_pair
    for p in (plain, split):  # both exports side by side, with their manifests
        for f in (p, p.with_name(p.name + ".manifest.json")):
            (tmp_path / f.name).write_bytes(f.read_bytes())
    dev = make_device()
    d = run_device_memory(tmp_path / plain.name, dev.serial, split=2, kernels=("builtin",), runs=1,
                          runner=STANDIN, out=tmp_path / "raw")
    assert d["artifacts"]["split"].endswith(split.name) and [r["kernels"] for r in d["runs"]] == ["builtin"] * 2
    assert d["ratios"]["builtin"]["arena_bytes"] < 1.0


def test_a_device_that_vanishes_keeps_what_was_measured(make_device, int8_pair, tmp_path):
    plain, split = int8_pair
    make_device(vanish_after=b"count=")
    with pytest.raises(DeviceError) as e:
        run_device_memory(plain, "pixel", twin=split, kernels=("builtin",), runs=1, runner=STANDIN, out=tmp_path)
    assert "went away while measuring plain with builtin" in e.value.message and "kept 0" in e.value.message
    raw = next(tmp_path.rglob("plain.builtin.txt")).read_text()
    assert "kTfLiteArenaRw Info" in raw and "count=1 " in raw

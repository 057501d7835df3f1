"""Hypothesis sweeps, 10,000 generated cases each, over everything that parses untrusted text: benchmark_model
output, xcresulttool JSON, manifests, and CLI option values. The only exceptions allowed out are the typed
Mnv2Error family (and, for option values, typer's usage errors, which `main` turns into exit 2); whatever is
accepted must keep the promises later code relies on (finite numbers, typed manifest fields)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnv2deploy.errors import Mnv2Error

pytestmark = pytest.mark.fuzz

CASES = 10_000
FUZZ = settings(max_examples=CASES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

# Cheap strategies on purpose (10,000 cases each, on a shared 2-core machine): a few draws per case, edge values
# from lists rather than free-form generation where the parser only cares about the shape of the text.
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.floats(),
                      st.text(alphabet="ab/_().-", max_size=6))
json_any = st.one_of(json_leaf, st.lists(json_leaf, max_size=2), st.dictionaries(st.sampled_from("abc"), json_leaf,
                                                                                  max_size=2))


def mostly(strategy):
    """Usually the well-typed value, sometimes any JSON value at all."""
    return st.one_of(strategy, strategy, strategy, json_any)


# ------------------------------------------------------------------------------------- benchmark_model

NUMBERS = ["0", "1", "-1", "3.337", "81913", "1e3", "1E-3", "-2.5e+2", ".5", "5.", "1.2.3", "e", "E5", "+-1", "inf",
           "-inf", "nan", "NaN", "1e999", "-0", "1" * 30, "1" * 400, "9" * 19, "0x10", "1_000", "", " ", "--", "1..2"]
NUMBERS += [repr(x) for x in (1e308, -1e308, 5e-324, 0.1, 123456789.123, 2.0 ** 63, -(2.0 ** 63))]
NUMBER = st.sampled_from(NUMBERS)
TEMPLATES = [
    "count={} first={} curr={} min={} max={} avg={} std={}",
    "Initialized session in {}ms.",
    "Inference timings in us: Init: {}, First inference: {}, Warmup (avg): {}, Inference (avg): {}",
    "Memory footprint delta from the start of the tool (MB): init={} overall={}",
    "Overall peak memory footprint (MB) via periodic monitoring: {}",
    "- VmRSS              : {} MB",
]


@st.composite
def benchmark_lines(draw):
    template = draw(st.sampled_from(TEMPLATES + ["{}"]))
    if template == "{}":
        return draw(st.text(alphabet="count=INFO: .-1e(MB)", max_size=30))
    line = template.format(*[draw(NUMBER) for _ in range(template.count("{}"))])
    return draw(st.sampled_from(["", "INFO: ", "  ", "WARN: "])) + line


@FUZZ
@given(st.lists(benchmark_lines(), max_size=5), st.sampled_from(["\n", "\r\n"]))
def test_benchmark_model_output(lines, newline):
    from mnv2deploy.android.bench import latency_stats
    from mnv2deploy.android.benchmark_output import parse_benchmark_output

    try:
        parsed = parse_benchmark_output(newline.join(lines))
    except Mnv2Error:
        return
    for counts in (parsed.warmup, parsed.timed):
        if counts is not None:
            assert counts.count >= 0 and all(math.isfinite(v) for v in (counts.first_us, counts.curr_us, counts.min_us,
                                                                        counts.max_us, counts.avg_us, counts.std_us))
    assert all(math.isfinite(v) for v in parsed.timings.values())
    assert parsed.init_ms is None or math.isfinite(parsed.init_ms)
    assert parsed.peak_memory_bytes is None or isinstance(parsed.peak_memory_bytes, int)
    if parsed.timed is not None:
        latency_stats(parsed.timed)


# ----------------------------------------------------------------------------------------- xcresult

def _xcresult_documents():
    from mnv2deploy.ios.xcresult import CLOCK, DISPLAY_NAMES, MEMORY, MEMORY_PEAK, TO_BYTES, TO_MS

    measurement = st.one_of(st.floats(), st.integers(-(2 ** 1100), 2 ** 1100), st.sampled_from([True, None, "1", 0]))
    metric = st.fixed_dictionaries({}, optional={
        "identifier": mostly(st.sampled_from([CLOCK, MEMORY, MEMORY_PEAK, "com.apple.dt.XCTMetric_CPU.time", ""])),
        "displayName": mostly(st.sampled_from([*DISPLAY_NAMES, "CPU Time"])),
        "unitOfMeasurement": mostly(st.sampled_from([*TO_MS, *TO_BYTES, "fortnights"])),
        "measurements": mostly(st.lists(measurement, max_size=3))})
    device = st.fixed_dictionaries({}, optional={
        "deviceId": mostly(st.sampled_from(["", "00008130-001234560E12001C", "x"])),
        "deviceName": mostly(st.sampled_from(["", "iPhone"])), "modelName": json_leaf, "osVersion": json_leaf})
    run = st.fixed_dictionaries({}, optional={
        "device": mostly(device), "metrics": mostly(st.lists(mostly(metric), max_size=3)),
        "testPlanConfiguration": st.fixed_dictionaries({}, optional={"configurationName": json_leaf})})
    test = st.fixed_dictionaries({}, optional={
        "testIdentifier": mostly(st.sampled_from(["MNV2BenchTests/testPredict_all()", "MNV2BenchTests/testLoad_all()",
                                                  "MNV2BenchTests/testPredict_cpuOnly()", "T/testPredict_cpuAndGPU",
                                                  "MNV2BenchTests/testOther()"])),
        "testRuns": mostly(st.lists(mostly(run), max_size=2))})
    doc = mostly(st.lists(mostly(test), max_size=3)).map(json.dumps)
    cut = doc.flatmap(lambda s: st.integers(0, len(s)).map(lambda i: s[:i]))
    return st.one_of(doc, doc, doc, cut, st.text(max_size=40), st.just("[" * 50_000))


@FUZZ
@given(_xcresult_documents())
def test_xcresult_metrics_json(text):
    from mnv2deploy.ios.xcresult import parse_xcresult_metrics

    try:
        results = parse_xcresult_metrics(text, "m.mlpackage", "coreml", "fp16", warmup=3)
    except Mnv2Error:
        return
    for r in results:
        stats = r.latency_ms
        assert all(math.isfinite(v) for v in (stats.p50, stats.p90, stats.p99, stats.mean, stats.min, stats.max))
        assert isinstance(r.device.name, str)
        json.dumps(r.to_dict())


# ------------------------------------------------------------------------------------------ manifests

def _valid_manifest(artifact: Path) -> dict:
    from mnv2deploy.fileio import sha256_file

    return {
        "target": "tflite-int8", "format": "tflite", "precision": "int8", "artifact": artifact.name,
        "artifact_sha256": sha256_file(artifact),
        "inputs": [{"name": "input", "shape": [1, 3, 32, 32], "dtype": "int8", "layout": "NCHW", "scale": 0.02,
                    "zero_point": -3}],
        "outputs": [{"name": "logits", "shape": [1, 10], "dtype": "int8", "layout": "NC", "scale": 0.1,
                     "zero_point": 4}],
        "preprocessing": {"resolution": 32, "resize": 32, "mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26],
                          "labels": ["airplane", "automobile"], "interpolation": "bilinear"},
        "model": {"name": "mobilenet_v2", "width_mult": 1.0, "num_classes": 10, "resolution": 32, "split": 1},
        "weights": {"id": "default", "sha256": "ab" * 32}, "export_options": {"dynamic_batch": False},
        "tool_versions": {"torch": "2.13.0"}, "extra": {"quantized_reference": {"file": "x.qref.npz"}}, "schema": 1}


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def manifest_texts(draw, base: dict):
    kind = draw(st.sampled_from(["set", "set", "set", "delete", "text", "truncate", "bytes"]))
    if kind in ("set", "delete"):
        doc = copy.deepcopy(base)
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from([p for p in _paths(doc) if p]))
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            if kind == "delete":
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(st.one_of(json_any, st.sampled_from(
                    [0, -1, 1e309, float("nan"), "", "../x", "/etc/passwd", [None], "NHWC", "uint8", "float64", 2 ** 64])))
            if path[0] in ("inputs", "outputs") or kind == "delete":
                break  # the structure changed under the remaining paths
        return json.dumps(doc).encode()
    text = json.dumps(base)
    if kind == "text":
        return draw(st.text(max_size=80)).encode()
    if kind == "truncate":
        return text[: draw(st.integers(0, len(text)))].encode()
    return draw(st.binary(max_size=64))


@pytest.fixture(scope="module")
def manifest_home(tmp_path_factory):
    """In memory when the machine has /dev/shm: 10,000 rewrites of a file cost ~4 ms each on this disk."""
    import shutil
    import tempfile

    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="mnv2-fuzz-", dir=shm)) if shm.is_dir() else tmp_path_factory.mktemp("fuzz")
    yield from _manifest_home(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _manifest_home(folder: Path):
    artifact = folder / "m.int8.tflite"
    artifact.write_bytes(b"not a model, but hashed")
    yield artifact


def test_manifest_reader(manifest_home):
    from mnv2deploy.manifest import DTYPES, LAYOUTS, Manifest, manifest_path, read_manifest
    from mnv2deploy.tolerance import tolerance_for
    from mnv2deploy.runtimes import runtime_class
    from mnv2deploy.runtimes.edges import from_model_output, to_model_input

    artifact = manifest_home
    base = _valid_manifest(artifact)
    accepted = []

    @FUZZ
    @given(manifest_texts(base))
    def check(raw: bytes):
        manifest_path(artifact).write_bytes(raw)
        try:
            m = read_manifest(artifact)
        except Mnv2Error:
            return
        accepted.append(1)
        # a renamed pair is accepted by content: then the sha256 is the artifact's own
        assert isinstance(m, Manifest) and (m.artifact == artifact.name or m.artifact_sha256 == base["artifact_sha256"])
        assert "/" not in m.artifact
        for t in m.inputs + m.outputs:  # what the runtimes' edges rely on
            assert t.dtype in DTYPES and t.layout in LAYOUTS and isinstance(t.name, str)
            assert all(s is None or (isinstance(s, int) and s >= 0) for s in t.shape)
            assert t.scale is None or (math.isfinite(t.scale) and t.scale > 0)
        json.dumps(m.to_dict())
        for call in (lambda: to_model_input(np.ones((1, 3, 2, 2), np.float32), m.inputs[0]),
                     lambda: from_model_output(np.ones((1, 2), m.outputs[0].dtype), m.outputs[0]),
                     lambda: tolerance_for(m.precision), lambda: runtime_class(m.format)):
            try:
                call()
            except Mnv2Error:
                pass

    check()
    assert accepted, "the generator never produced a manifest the reader accepts"


# ----------------------------------------------------------------------------------- CLI option values

VALUE = st.one_of(
    st.integers(-(2 ** 70), 2 ** 70).map(str), st.floats().map(repr),
    st.text(alphabet="0123456789-,.=_ aeinfx/é\x00", max_size=10),
    st.sampled_from(["", "\u202e", "１２", "--json", "-", "=", "nan", "inf", "-inf", "-0", "1e309", "0x10", "1_000",
                     "4-7", "7-4", "0,1", "0-99999999", "1--2", "a=b", "=b", "a=", "input-type=tensor", "0", "-1", "1",
                     "2", "256", "257", "host", "iphone", "pixel", "all", "onnx", "tflite-int8", "coreml", "default",
                     "random", "imagenet", "arm64", "x86_64", "riscv", "cortex-a76", "torch", "auto", "1.0", "0.35",
                     "1.4", "1.41", "1024", "16", "100000", "100001"]))
OPTIONS = {
    "export": ("--target", "--width", "--resolution", "--num-classes", "--weights", "--calib-samples", "--split",
               "--option", "--dynamic-batch"),
    "parity": ("--samples", "--max-drop", "--min-agreement", "--arch", "--threads"),
    "bench": ("--device", "--threads", "--runs", "--warmup", "--batch", "--runtime", "--cores", "--no-xnnpack"),
    "info": ("--width", "--resolution", "--num-classes"),
}
FLAGS = {"--dynamic-batch", "--no-xnnpack"}


def _validate(command: str, p: dict) -> None:
    """What each command checks before doing any work, called directly (no process, no model)."""
    if command in ("export", "info"):
        from mnv2deploy.weights import check_model_args

        check_model_args(p["width"], p["num_classes"], p["resolution"])
    if command == "export":
        from mnv2deploy.cli.export import parse_options
        from mnv2deploy.targets.plan import plan_targets
        from mnv2deploy.weights import resolve_weights

        plan_targets(p["target"])
        parse_options(p["option"])
        resolve_weights(p["weights"], p["width"], p["num_classes"], p["resolution"])
    elif command == "parity":
        from mnv2deploy.tolerance import tolerance_for
        from mnv2deploy.runtimes import check_threads, runtime_class

        tolerance_for("fp32", p["max_drop"], p["min_agreement"])
        check_threads(p["threads"])
        runtime_class("tflite", p["arch"])
    elif command == "bench":
        from mnv2deploy.android.bench import parse_cores
        from mnv2deploy.bench.host import HostBenchConfig
        from mnv2deploy.cli.bench import device_kind, single_device

        device_kind(single_device(p["device"]), Path("m.onnx"))
        cores = parse_cores(p["cores"])
        HostBenchConfig.for_format("onnx", threads=p["threads"], runs=p["runs"], warmup=p["warmup"],
                                   batch=p["batch"], xnnpack=not p["no_xnnpack"], runtime=p["runtime"], cores=cores)


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(OPTIONS)))
    argv = {"export": ["--target", "onnx", "--out", "out"], "parity": ["m.onnx"], "bench": ["m.onnx"],
            "info": []}[command]
    for _ in range(draw(st.integers(1, 4))):
        option = draw(st.sampled_from(OPTIONS[command]))
        argv = argv + ([option] if option in FLAGS else [option, draw(VALUE)])
    return command, argv


def test_cli_option_values():
    import typer

    from mnv2deploy.cli.app import app

    group = typer.main.get_command(app)

    @FUZZ
    @given(command_lines())
    def check(case):
        command, argv = case
        try:
            ctx = group.commands[command].make_context(command, list(argv))
        except (typer.TyperException, typer.Exit):  # typer's usage errors: main prints one line, exit 2
            return
        try:
            _validate(command, ctx.params)
        except Mnv2Error:
            pass

    check()

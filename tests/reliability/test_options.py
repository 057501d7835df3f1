"""Bad option values through the real CLI: one line, exit 2, before any work (test_fuzz.py sweeps the same
validators with 10,000 generated values each)."""

from __future__ import annotations

import pytest

from .conftest import cli, expect_error

# case id, argv (ONNX = the session's artifact), what the line says
CASES = [
    ("option-resolution-out-of-range", ["export", "-t", "onnx", "-o", "OUT", "--resolution", "5"], "--resolution"),
    ("option-width-not-a-number", ["export", "-t", "onnx", "-o", "OUT", "--width", "abc"], "--width"),
    ("option-width-out-of-range", ["export", "-t", "onnx", "-o", "OUT", "--weights", "random", "--width", "2"],
     "width multiplier 2.0 is outside 0.35 to 1.4"),
    ("option-width-nan", ["info", "--width", "nan"], "width multiplier nan is outside"),
    ("option-num-classes-huge", ["info", "--num-classes", "1000000000"], "--num-classes 1000000000 is outside"),
    ("option-unknown-target", ["export", "-t", "tflite-int4", "-o", "OUT"], "unknown target 'tflite-int4'"),
    ("option-not-key-value", ["export", "-t", "onnx", "-o", "OUT", "--option", "fast"], "is not KEY=VALUE"),
    ("option-unknown-command", ["exprot"], "No such command"),
    ("option-missing-required", ["parity"], "Missing argument 'artifact'"),
    ("option-threads-huge", ["bench", "ONNX", "--threads", "100000"], "--threads must be 1 to 256"),
    ("option-cores-reversed", ["bench", "ONNX", "--cores", "7-4"], "is not a CPU list"),
    ("option-runs-huge", ["bench", "ONNX", "--runs", "10000000000"], "--runs must be 1 to 1,000,000"),
    ("option-runtime-unknown", ["bench", "ONNX", "--runtime", "gpu"], "--runtime 'gpu' unknown"),
    ("option-max-drop-nan", ["parity", "ONNX", "--max-drop", "nan"], "--max-drop nan is not a non-negative number"),
    ("option-min-agreement-above-1", ["parity", "ONNX", "--min-agreement", "1.5"], "is not in 0..1"),
    ("option-arch-unknown", ["parity", "ONNX", "--arch", "riscv"], "arch 'riscv' unknown"),
    ("option-debug-after-command", ["export", "--debug", "-t", "tflite-int4", "-o", "OUT"], "unknown target"),
]


@pytest.mark.parametrize("case,argv,needle", CASES, ids=[c[0] for c in CASES])
def test_bad_option_value(capsys, tmp_path, onnx_artifact, case, argv, needle):
    subs = {"ONNX": onnx_artifact, "OUT": tmp_path / "out"}
    result = cli(capsys, *[subs.get(a, a) for a in argv])
    expect_error(result, 2, needle, case=case, scrub=(tmp_path, onnx_artifact.parent))
    assert not (tmp_path / "out").exists()


def test_every_typed_error_carries_a_hint():
    """Raised without one, an error still says what to do: each class has a default hint (errors.py)."""
    import mnv2deploy.errors as errors

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.Mnv2Error)]
    for cls in classes:
        if cls is errors.Mnv2Error:
            continue
        line = cls("something went wrong").one_line()
        assert line.startswith("error: something went wrong (hint: ") and cls.exit_code in (2, 3, 4), cls

"""Weights files a user might pass to `mnv2deploy export --weights`: each is refused in one line with exit 2,
before any conversion, leaving the output folder empty; a checkpoint that would run code is refused without
running it. (tests/weights covers the same loaders at the API level.)"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mnv2deploy.model import build

from .conftest import cli, expect_error, visible


class RunsCode:
    """Unpickling this would create ``marker``: proof, if the file appears, that the loader executed the pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


class ExecsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _small(width=0.35, classes=10):
    return build(width, classes).state_dict()


def truncated(d: Path) -> Path:
    p = d / "w.pth"
    torch.save(_small(), p)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return p


def wrong_keys(d: Path) -> Path:
    state = _small()
    state.pop("classifier.1.bias")
    state["head.extra"] = torch.zeros(1)
    torch.save(state, d / "w.pth")
    return d / "w.pth"


def wrong_shapes(d: Path) -> Path:
    state = _small()
    state["classifier.1.weight"] = torch.zeros(7, 3)
    torch.save(state, d / "w.pth")
    return d / "w.pth"


def wrong_width(d: Path) -> Path:
    torch.save(_small(width=0.5), d / "w.pth")
    return d / "w.pth"


def pickle_runs_code(d: Path) -> Path:
    torch.save({"features.0.0.weight": RunsCode(d / "PWNED")}, d / "w.pth")
    return d / "w.pth"


def raw_pickle_execs_code(d: Path) -> Path:
    (d / "w.pkl").write_bytes(pickle.dumps(ExecsCode(d / "PWNED"), protocol=2))  # gets as far as GLOBAL exec
    return d / "w.pkl"


def text_file(d: Path) -> Path:
    (d / "w.pth").write_text("these are not weights\n")
    return d / "w.pth"


def empty_file(d: Path) -> Path:
    (d / "w.pth").write_bytes(b"")
    return d / "w.pth"


def an_image(d: Path) -> Path:
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "w.png")
    return d / "w.png"


def not_tensors(d: Path) -> Path:
    torch.save({"features.0.0.weight": [1, 2, 3], "epoch": 3}, d / "w.pth")
    return d / "w.pth"


def missing_file(d: Path) -> Path:
    return d / "nope.pth"


def a_folder(d: Path) -> Path:
    (d / "weights_dir").mkdir()
    return d / "weights_dir"


# case id, how to make the file, extra CLI args, exit code, what the line must say
CASES = [
    ("weights-truncated", truncated, ["--width", "0.35", "--num-classes", "10"], 2, "is not a readable checkpoint"),
    ("weights-wrong-keys", wrong_keys, ["--width", "0.35", "--num-classes", "10"], 2, "missing classifier.1.bias"),
    ("weights-wrong-shapes", wrong_shapes, ["--width", "0.35", "--num-classes", "10"], 2, "wrong shapes"),
    ("weights-wrong-width", wrong_width, ["--width", "1.0", "--num-classes", "10"], 2, "looks like MobileNetV2 width 0.5x"),
    ("weights-pickle-runs-code", pickle_runs_code, [], 2, "is refused: loading it would import code"),
    ("weights-raw-pickle-execs-code", raw_pickle_execs_code, [], 2, "is refused: loading it would import code"),
    ("weights-text-file", text_file, [], 2, "is not a readable checkpoint"),
    ("weights-empty-file", empty_file, [], 2, "is not a readable checkpoint"),
    ("weights-image-file", an_image, [], 2, "is not a readable checkpoint"),
    ("weights-not-tensors", not_tensors, [], 2, "does not hold a state_dict of tensors"),
    ("weights-missing-file", missing_file, [], 2, "not 'default', 'imagenet', 'random' or an existing file"),
    ("weights-folder", a_folder, [], 2, "not 'default', 'imagenet', 'random' or an existing file"),
]


@pytest.mark.parametrize("case,make,args,code,needle", CASES, ids=[c[0] for c in CASES])
def test_bad_weights_file(capsys, tmp_path, case, make, args, code, needle):
    src = tmp_path / "src"
    src.mkdir()
    weights = make(src)
    out = tmp_path / "out"
    result = cli(capsys, "export", "--target", "onnx", "--out", out, "--weights", weights, *args)
    expect_error(result, code, needle, case=case, scrub=(tmp_path,))
    assert not (src / "PWNED").exists(), "the checkpoint's code ran"
    assert visible(out) == [] and not any(out.glob(".*")) if out.exists() else True


def test_named_weights_with_another_width(capsys, tmp_path):
    result = cli(capsys, "export", "--target", "onnx", "--out", tmp_path, "--weights", "default", "--width", "0.5")
    expect_error(result, 2, "embedded default weights have width 1.0, not 0.5", case="weights-default-other-width",
                 scrub=(tmp_path,))

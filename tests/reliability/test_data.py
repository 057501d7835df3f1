"""Image folders a user might pass to `parity --data` or `export --calib`: broken ones are one line and exit 2
naming the folder or file; unusual but valid images (grayscale, RGBA, CMYK, 16-bit, palette, 1-bit) are used;
a label set that is not the model's runs unlabelled. (tests/data covers the loader at the API level.)"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import cli, expect_error, record

RNG = np.random.default_rng(3)


def _rgb(size=(40, 40)) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims width x height 8-bit gray pixels (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 1024))
                     + _chunk(b"IEND", b""))


def good_folder(root: Path, classes=("airplane", "cat")) -> Path:
    for c in classes:
        (root / c).mkdir(parents=True)
        _rgb().save(root / c / "ok.png")
    return root


def missing(root: Path) -> Path:
    return root / "nope"


def empty(root: Path) -> Path:
    root.mkdir()
    return root


def loose_images(root: Path) -> Path:
    root.mkdir()
    _rgb().save(root / "a.png")
    return root


def no_images(root: Path) -> Path:
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "notes.txt").write_text("x")
    return root


def corrupt(root: Path) -> Path:
    good_folder(root)
    (root / "cat" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def zero_byte(root: Path) -> Path:
    good_folder(root)
    (root / "cat" / "bad.png").write_bytes(b"")
    return root


def truncated_png(root: Path) -> Path:
    good_folder(root)
    _rgb((64, 64)).save(root / "cat" / "bad.png")
    data = (root / "cat" / "bad.png").read_bytes()
    (root / "cat" / "bad.png").write_bytes(data[: len(data) // 2])
    return root


def bomb_over_our_limit(root: Path) -> Path:
    good_folder(root)
    png_claiming(root / "cat" / "bomb.png", 9000, 9000)  # 81 Mpx: under PIL's own limit, over ours (64 Mpx)
    return root


def bomb_over_pil_limit(root: Path) -> Path:
    good_folder(root)
    png_claiming(root / "cat" / "bomb.png", 30000, 30000)  # 900 Mpx: PIL refuses it at open
    return root


CASES = [
    ("data-missing-folder", missing, "is not a folder"),
    ("data-empty-folder", empty, "has no class subfolders"),
    ("data-no-class-subfolders", loose_images, "has no class subfolders"),
    ("data-no-images", no_images, "has class folders but no .jpg/.png images"),
    ("data-corrupt-image", corrupt, "cannot read image"),
    ("data-zero-byte-image", zero_byte, "cannot read image"),
    ("data-truncated-image", truncated_png, "cannot read image"),
    ("data-decompression-bomb", bomb_over_our_limit, "over the 64,000,000-pixel limit"),
    ("data-decompression-bomb-huge", bomb_over_pil_limit, "decompression bomb"),
]


@pytest.mark.parametrize("case,make,needle", CASES, ids=[c[0] for c in CASES])
def test_broken_image_folder(capsys, tmp_path, onnx_artifact, case, make, needle):
    data = make(tmp_path / "data")
    line = expect_error(cli(capsys, "parity", onnx_artifact, "--data", data), 2, needle, case=case,
                        scrub=(tmp_path, onnx_artifact.parent))
    if needle == "cannot read image" or "bomb" in case:
        assert "/cat/b" in line  # the file is named


@pytest.mark.parametrize("target", ["onnx-int8", "tflite-int8"])
def test_broken_calibration_folder_fails_before_converting(capsys, tmp_path, target):
    out = tmp_path / "out"
    result = cli(capsys, "export", "--target", target, "--out", out, "--calib", corrupt(tmp_path / "calib"))
    expect_error(result, 2, "cannot read image", case=f"calib-corrupt-image ({target})", scrub=(tmp_path,))
    assert not out.exists() or list(out.iterdir()) == []


def _save_mode(img: Image.Image, mode: str, path: Path) -> None:
    if mode == "I;16":
        Image.fromarray((np.asarray(img.convert("L"), np.uint16) * 257)).save(path)
    elif mode == "CMYK":
        img.convert("CMYK").save(path.with_suffix(".jpg"))
    else:
        img.convert(mode).save(path)


MODES = ("L", "LA", "RGBA", "CMYK", "I;16", "P", "1")


def test_unusual_image_modes_are_used(capsys, tmp_path, onnx_artifact):
    """Grayscale, alpha, CMYK JPEG, 16-bit PNG, palette and 1-bit images in the model's class folders: parity
    runs on all of them, labelled."""
    root = tmp_path / "data"
    for i, mode in enumerate(MODES):
        folder = root / ("airplane", "cat")[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        _save_mode(_rgb((37, 29)), mode, folder / f"img_{i}.png")
    result = cli(capsys, "parity", onnx_artifact, "--data", root, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["samples"] == len(MODES) and report["reference_accuracy"] is not None
    record("data-image-modes", f"passes: parity on {len(MODES)} images ({', '.join(MODES)}), labelled", 0)


def test_label_set_that_is_not_the_models_runs_unlabelled(capsys, tmp_path, onnx_artifact):
    root = good_folder(tmp_path / "data", classes=("cat", "zebra"))
    result = cli(capsys, "parity", onnx_artifact, "--data", root, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["reference_accuracy"] is None and report["top1_agreement"] == 1.0
    record("data-label-mismatch", "passes unlabelled: agreement and logit metrics, accuracies null", 0)


def test_calibration_folder_needs_no_labels(tmp_path):
    from mnv2deploy.data import load_dataset
    from mnv2deploy.weights import resolve_weights

    root = good_folder(tmp_path / "calib", classes=("n01440764", "n01443537"))  # ImageNet-style names
    batch = load_dataset(root, resolve_weights("default").contract, None, kind="calib")
    assert len(batch) == 2 and batch.labels is None

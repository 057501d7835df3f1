"""The int8 input edge: in place, reused scratch, same integers as the plain numpy expression, and LiteRT's
set_input writing straight into the interpreter's input tensor gives the same logits as set_tensor."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mnv2deploy.manifest import TensorSpec, read_manifest
from mnv2deploy.runtimes.edges import INT_RANGES, to_model_input


def _plain(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The textbook expression (the previous implementation)."""
    lo, hi = INT_RANGES[spec.dtype]
    if spec.layout == "NHWC":
        x = x.transpose(0, 2, 3, 1)
    return np.clip(np.round(x / spec.scale) + spec.zero_point, lo, hi).astype(spec.dtype)


@pytest.mark.parametrize("dtype,zero_point", [("int8", -3), ("int8", 0), ("uint8", 128), ("uint8", 0)])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_in_place_edge_equals_the_plain_expression(dtype, zero_point, layout):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 3, 5, 7)) * 3).astype(np.float32)
    x.flat[:6] = [0.25, 0.75, -0.25, -0.75, 1e9, -1e9]  # exact ties at scale 0.5 (half to even) and far out of range
    shape = (2, 5, 7, 3) if layout == "NHWC" else (2, 3, 5, 7)
    spec = TensorSpec("x", shape, dtype, layout, scale=0.5, zero_point=zero_point)
    expected = _plain(x, spec)
    q = to_model_input(x, spec)
    assert q.dtype == np.dtype(dtype) and q.shape == shape and q.flags.c_contiguous
    np.testing.assert_array_equal(q, expected)
    assert {int(q.min()), int(q.max())} == set(INT_RANGES[dtype])  # both clip bounds reached, nothing wrapped
    out = np.full(shape, 7, dtype)
    assert to_model_input(x, spec, out=out) is out
    np.testing.assert_array_equal(out, expected)


def test_scratch_is_reused_and_shapes_do_not_mix():
    spec = TensorSpec("x", (1, 3, 4, 4), "int8", "NCHW", scale=0.1, zero_point=1)
    small, big = np.ones((1, 3, 4, 4), np.float32), np.full((1, 3, 8, 8), -1, np.float32)
    a = to_model_input(small, spec)
    b = to_model_input(big, TensorSpec("x", (1, 3, 8, 8), "int8", "NCHW", scale=0.1, zero_point=1))
    c = to_model_input(small, spec)
    assert a is not c and np.array_equal(a, c)  # a result never aliases the scratch buffer
    assert np.all(a == 11) and np.all(b == -9)


def test_threads_do_not_share_the_scratch_buffer():
    spec = TensorSpec("x", (1, 3, 64, 64), "int8", "NCHW", scale=0.05, zero_point=0)
    wrong = []

    def work(value: float):
        x = np.full((1, 3, 64, 64), value, np.float32)
        expected = _plain(x, spec)
        for _ in range(200):
            if not np.array_equal(to_model_input(x, spec), expected):
                wrong.append(value)
                return

    threads = [threading.Thread(target=work, args=(v,)) for v in (-3.0, -1.0, 1.0, 3.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


@pytest.mark.slow
def test_litert_set_input_writes_the_interpreter_tensor_and_matches_set_tensor(tflite_int8, images):
    from ai_edge_litert.interpreter import Interpreter

    from mnv2deploy.runtimes.litert import LiteRtRuntime, set_input

    manifest = read_manifest(tflite_int8)
    ispec = manifest.inputs[0]
    interp = Interpreter(model_path=str(tflite_int8), num_threads=1)
    interp.allocate_tensors()
    i_idx, o_idx = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    direct, copied = [], []
    for i in range(len(images)):
        x = images[i:i + 1]
        set_input(interp, i_idx, x, ispec)
        np.testing.assert_array_equal(interp.get_tensor(i_idx), _plain(x, ispec))
        interp.invoke()
        direct.append(interp.get_tensor(o_idx))
        interp.set_tensor(i_idx, _plain(x, ispec))
        interp.invoke()
        copied.append(interp.get_tensor(o_idx))
    np.testing.assert_array_equal(np.concatenate(direct), np.concatenate(copied))
    rt = LiteRtRuntime()
    rt.load(tflite_int8, manifest, threads=1)
    out = manifest.outputs[0]
    expected = (np.concatenate(copied).astype(np.float32) - out.zero_point) * np.float32(out.scale)
    np.testing.assert_array_equal(rt.run(images), expected)  # the runtime's own path, through set_input


@pytest.mark.parametrize("mean, std", [((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
                                       ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
def test_camera_bytes_are_exactly_the_pixels_preprocessing_started_from(mean, std):
    """A uint8 NHWC input with the normalization inside the model (``pixels``): preprocessed floats go back to
    the very bytes, so the artifact sees what a camera gives and the reference the same image normalized."""
    from PIL import Image

    from mnv2deploy.contract import InputContract
    from mnv2deploy.data import preprocess

    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    x = preprocess(Image.fromarray(rgb), InputContract(16, 16, mean, std))[None]
    spec = TensorSpec("x", (1, 16, 16, 3), "uint8", "NHWC", pixels={"mean": list(mean), "std": list(std)})
    assert np.array_equal(to_model_input(x, spec), rgb[None])
    out = np.zeros((1, 16, 16, 3), np.uint8)
    assert to_model_input(x, spec, out=out) is out and np.array_equal(out, rgb[None])


def test_int8_camera_input_is_the_bytes_with_their_top_bit_flipped():
    """tflite-int8's camera input (int8 byte - 128, zero point 0, the converter's scale 1 - 2**-11): the edge from
    preprocessed floats and the app's path from the frame give the same int8 tensor, byte - 128 exactly."""
    from PIL import Image

    from mnv2deploy.contract import InputContract
    from mnv2deploy.data import preprocess
    from mnv2deploy.errors import BadArtifactError
    from mnv2deploy.runtimes.edges import from_camera_bytes

    mean, std = (0.4914, 0.4822, 0.4465), (0.247, 0.2435, 0.2616)
    rgb = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    rgb[0, :3] = [[0, 0, 0], [255, 255, 255], [127, 128, 129]]  # both ends and the flip point
    x = preprocess(Image.fromarray(rgb), InputContract(16, 16, mean, std))[None]
    pixels = {"mean": list(mean), "std": list(std)}
    spec = TensorSpec("x", (1, 16, 16, 3), "int8", "NHWC", scale=1 - 2 ** -11, zero_point=0, pixels=pixels)
    expected = (rgb.astype(np.int16) - 128).astype(np.int8)[None]
    assert np.array_equal(to_model_input(x, spec), expected)
    out = np.zeros((1, 16, 16, 3), np.int8)
    assert from_camera_bytes(rgb[None], spec, out=out) is out and np.array_equal(out, expected)
    uint8 = TensorSpec("x", (1, 16, 16, 3), "uint8", "NHWC", pixels=pixels)
    assert np.array_equal(from_camera_bytes(rgb[None], uint8), rgb[None])
    for scale, zp in ((0.99, 0), (1.0, -128)):  # a coarser scale; the bytes uncentred
        wrong = TensorSpec("x", (1, 16, 16, 3), "int8", "NHWC", scale=scale, zero_point=zp, pixels=pixels)
        with pytest.raises(BadArtifactError, match="does not map bytes"):
            from_camera_bytes(rgb[None], wrong)
    with pytest.raises(BadArtifactError, match="does not take camera bytes"):
        from_camera_bytes(rgb[None], TensorSpec("x", (1, 3, 16, 16), "int8", "NCHW", scale=0.02, zero_point=0))

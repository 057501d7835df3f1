"""Android image pipelines: an artifact that takes what a camera gives (NHWC, and optionally raw RGB bytes with the
normalization inside the model), so the app does no per-pixel float work (``--option input-layout=nhwc``,
``--option input-dtype=uint8``).

fp32 models take uint8 and cast; tflite-int8 takes int8 ``byte - 128`` (the app flips each byte's top bit;
``runtimes/edges.from_camera_bytes``). Either way the normalization is folded into the stem conv's weights, with the
stem's zero padding replaced by padding with the mean colour: zero in normalized space is the mean colour in byte
space, so folding alone would change every border pixel's output. A model without a plain stem conv (a split one)
normalizes with a per-channel multiply-add in front of it instead."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..contract import InputContract
from ..manifest import TensorSpec
from . import _common as c
from .base import ExportRequest

LAYOUTS = ("nchw", "nhwc")
DTYPES = ("float32", "uint8")
INT8_OFFSET = 128  # int8 camera input: byte - 128, centred, so the folded stem's weights see no large DC term


def camera_options(target: str, request: ExportRequest, given: dict[str, Any],
                   dtypes: tuple[str, ...] = DTYPES) -> tuple[bool, bool]:
    """(nhwc, bytes) from ``--option input-layout=nchw|nhwc`` and ``--option input-dtype=<dtypes>`` (the first
    is the default; ``uint8`` means camera bytes)."""
    layout = c.choose(target, "input_layout", given.get("input_layout", "nchw"), LAYOUTS)
    dtype = c.choose(target, "input_dtype", given.get("input_dtype", dtypes[0]), dtypes)
    return layout == "nhwc", dtype == "uint8"


def recorded_options(export_options: dict[str, Any]) -> tuple[bool, bool]:
    """(nhwc, bytes) as an export recorded them in its manifest (``camera_record``)."""
    return export_options.get("input_layout") == "NHWC", export_options.get("input_dtype") == "uint8"


def camera_record(nhwc: bool, uint8: bool, default_dtype: str = "float32") -> dict[str, str]:
    return {"input_layout": "NHWC" if nhwc else "NCHW", "input_dtype": "uint8" if uint8 else default_dtype}


def _scale_shift(contract: InputContract, offset: int = 0) -> tuple[list[float], list[float]]:
    """(byte / 255 - mean) / std as one multiply-add per channel on ``byte - offset``: x * scale + shift."""
    scale = [1 / (255 * s) for s in contract.std]
    return scale, [offset * k - m / s for k, m, s in zip(scale, contract.mean, contract.std)]


def folded_stem(model: Any, contract: InputContract, resolution: int, offset: int) -> Any | None:
    """A copy of ``model`` taking ``byte - offset`` (float) with the normalization and the stem's batch norm folded
    into its stem conv, and the stem's zero padding replaced by padding with the mean colour, so every output,
    borders included, is the model's own. None if the model has no such stem (a split one).

    Why: MUL and ADD broadcast over NHWC's last axis of 3 are slow in XNNPACK: at 1.0@224 on an AVX2 host the int8
    ones cost ~0.75 ms (the model call 10.66 ms against 9.91 ms without them), the fp32 camera model's call is
    0.94-0.95x with the fold; the stem's own weights do it for free."""
    import copy

    import torch
    from torch import nn

    features = getattr(model, "features", None)
    block = features[0] if isinstance(features, nn.Sequential) else None
    stem = block[0] if isinstance(block, nn.Sequential) else None
    if not (isinstance(stem, nn.Conv2d) and stem.in_channels == 3 and stem.groups == 1
            and stem.padding_mode == "zeros" and isinstance(stem.padding, tuple)):
        return None
    bn = block[1] if len(block) > 1 and isinstance(block[1], nn.BatchNorm2d) else None
    scale, shift = (torch.tensor(v).view(1, 3, 1, 1) for v in _scale_shift(contract, offset))
    folded = nn.Conv2d(3, stem.out_channels, stem.kernel_size, stem.stride, 0, stem.dilation, bias=True)
    with torch.no_grad():
        weight = stem.weight * scale
        bias = (stem.bias if stem.bias is not None else torch.zeros(stem.out_channels)) + \
            (stem.weight * shift).sum(dim=(1, 2, 3))
        if bn is not None:  # folded here as well: the quantizer's conv + batch norm pattern is gone with the padding
            gain = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            weight, bias = weight * gain.view(-1, 1, 1, 1), (bias - bn.running_mean) * gain + bn.bias
        folded.weight.copy_(weight)
        folded.bias.copy_(bias)
    (ph, pw), r = stem.padding, resolution
    pad_value = torch.tensor([m * 255 - offset for m in contract.mean]).view(1, 3, 1, 1)

    class MeanColourPad(nn.Module):
        """Pads NCHW input with the per-channel mean colour by concatenating constant strips (no single op pads
        with a value per channel; strips of full size, so the converter has no broadcast left to run)."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("cols", pad_value.expand(1, 3, r, pw).clone())
            self.register_buffer("rows", pad_value.expand(1, 3, ph, r + 2 * pw).clone())

        def forward(self, x: Any) -> Any:
            x = torch.cat([self.cols, x, self.cols], dim=3) if pw else x
            return torch.cat([self.rows, x, self.rows], dim=2) if ph else x

    model = copy.deepcopy(model)
    model.features[0][0] = nn.Sequential(MeanColourPad(), folded)
    if bn is not None:
        model.features[0][1] = nn.Identity()
    return model.eval()


def camera_model(model: Any, contract: InputContract, resolution: int, nhwc: bool, uint8: bool,
                 quantized: bool = False) -> tuple[Any, Any]:
    """The model behind the camera edge and a sample input of the shape and dtype it takes; with bytes, the
    normalization folded into the stem where the model allows it (``folded_stem``). ``quantized`` (int8 targets):
    bytes arrive as float ``byte - 128``, for the quantizer to calibrate on and give the int8 input scale 1 and
    zero point 0."""
    import torch
    from torch import nn

    offset = INT8_OFFSET if quantized else 0
    inside = folded_stem(model, contract, resolution, offset) if uint8 else None
    scale, shift = _scale_shift(contract, offset)

    class CameraInput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model if inside is None else inside
            self.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1))
            self.register_buffer("shift", torch.tensor(shift).view(1, 3, 1, 1))

        def forward(self, x: Any) -> Any:
            if nhwc:
                x = x.permute(0, 3, 1, 2)
            if uint8 and not quantized:
                x = x.to(torch.float32)
            if uint8 and inside is None:
                x = x * self.scale + self.shift
            return self.model(x)

    r = resolution
    shape = (1, r, r, 3) if nhwc else (1, 3, r, r)
    return CameraInput().eval(), torch.zeros(shape, dtype=torch.uint8 if uint8 and not quantized else torch.float32)


def camera_batch(images: np.ndarray, contract: InputContract, nhwc: bool, uint8: bool,
                 centred: bool = True) -> np.ndarray:
    """Preprocessed NCHW float32 images as a quantized camera model takes them: bytes as float ``byte - 128``
    (``centred``, a full-integer model's input) or as uint8 (a model that casts them itself)."""
    from ..runtimes.edges import to_pixels

    x = to_pixels(images, {"mean": list(contract.mean), "std": list(contract.std)}) if uint8 else images
    x = x - INT8_OFFSET if uint8 and centred else x
    dtype = np.uint8 if uint8 and not centred else np.float32
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1) if nhwc else x, dtype=dtype)


def from_preprocessed(camera: Any, contract: InputContract, nhwc: bool, uint8: bool, centred: bool = True) -> Any:
    """A quantized ``camera`` model called on preprocessed NCHW float32 images, as parity's quantized references
    are (``camera_batch`` inside the graph)."""
    import torch
    from torch import nn

    mean = torch.tensor(contract.mean).view(1, 3, 1, 1)
    std = torch.tensor(contract.std).view(1, 3, 1, 1)

    class FromPreprocessed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.camera = camera

        def forward(self, x: Any) -> Any:
            if uint8:  # the exact bytes preprocessing started from (runtimes/edges.to_pixels)
                x = torch.clamp(torch.round((x * std + mean) * 255), 0, 255)
                x = x - INT8_OFFSET if centred else x.to(torch.uint8)
            return self.camera(x.permute(0, 2, 3, 1) if nhwc else x)

    wrapper = FromPreprocessed()
    wrapper.training = False  # not .eval(): an exported graph module refuses it
    return wrapper


def camera_inputs(inputs: tuple[TensorSpec, ...], contract: InputContract, nhwc: bool,
                  uint8: bool) -> tuple[TensorSpec, ...]:
    """The read-back input spec with what the file cannot say: the layout and, for bytes, the mean/std inside."""
    if not (nhwc or uint8):
        return inputs
    first = replace(inputs[0], layout="NHWC" if nhwc else "NCHW")
    if uint8:
        first = replace(first, pixels={"mean": list(contract.mean), "std": list(contract.std)})
    return (first, *inputs[1:])

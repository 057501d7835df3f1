"""Android image pipelines: an artifact that takes what a camera gives (NHWC, and optionally raw uint8 RGB bytes
with the normalization inside the model), so the app does no per-pixel work (``--option input-layout=nhwc``,
``--option input-dtype=uint8``).

The normalization is a per-channel multiply-add in front of the stem, not folded into the stem's weights: the
stem pads with zeros, and zero in normalized space is the mean colour in byte space, so weights folded into the
conv would change every border pixel's output."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..manifest import TensorSpec
from . import _common as c
from .base import ExportRequest

LAYOUTS = ("nchw", "nhwc")
DTYPES = ("float32", "uint8")


def camera_options(target: str, request: ExportRequest, given: dict[str, Any]) -> tuple[bool, bool]:
    """(nhwc, uint8) from ``--option input-layout=nchw|nhwc`` and ``--option input-dtype=float32|uint8``."""
    layout = c.choose(target, "input_layout", given.get("input_layout", "nchw"), LAYOUTS)
    dtype = c.choose(target, "input_dtype", given.get("input_dtype", "float32"), DTYPES)
    return layout == "nhwc", dtype == "uint8"


def camera_model(model: Any, request: ExportRequest, nhwc: bool, uint8: bool) -> tuple[Any, Any]:
    """The model behind the camera edge and a sample input of the shape and dtype it takes."""
    import torch
    from torch import nn

    contract = request.reference.spec.contract
    r = request.resolution

    class CameraInput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            # (byte / 255 - mean) / std as one multiply-add per channel
            self.register_buffer("scale", torch.tensor([1 / (255 * s) for s in contract.std]).view(1, 3, 1, 1))
            self.register_buffer("shift", torch.tensor([-m / s for m, s in zip(contract.mean, contract.std)])
                                 .view(1, 3, 1, 1))

        def forward(self, x: Any) -> Any:
            if nhwc:
                x = x.permute(0, 3, 1, 2)
            if uint8:
                x = x.to(torch.float32) * self.scale + self.shift
            return self.model(x)

    shape = (1, r, r, 3) if nhwc else (1, 3, r, r)
    return CameraInput().eval(), torch.zeros(shape, dtype=torch.uint8 if uint8 else torch.float32)


def camera_inputs(inputs: tuple[TensorSpec, ...], request: ExportRequest, nhwc: bool,
                  uint8: bool) -> tuple[TensorSpec, ...]:
    """The read-back input spec with what the file cannot say: the layout and, for bytes, the mean/std inside."""
    if not (nhwc or uint8):
        return inputs
    first = replace(inputs[0], layout="NHWC" if nhwc else "NCHW")
    if uint8:
        contract = request.reference.spec.contract
        first = replace(first, pixels={"mean": list(contract.mean), "std": list(contract.std)})
    return (first, *inputs[1:])

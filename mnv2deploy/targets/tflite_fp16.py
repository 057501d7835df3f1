"""`tflite-fp16`: fp16 weights (dequantized to fp32 at load), fp32 input/output; litert-torch's fp16 recipe."""

from __future__ import annotations

from typing import Any, ClassVar

from . import _common as c
from .tflite import HINT, TfliteTarget


class TfliteFp16Target(TfliteTarget):
    name: ClassVar[str] = "tflite-fp16"
    precision: ClassVar[str] = "fp16"

    def quant_config(self) -> Any:
        recipes = c.require("litert_torch.generative.quantize.quant_recipes", HINT)
        return recipes.full_fp16_recipe()  # already a QuantConfig

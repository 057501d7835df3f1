"""LiteRT (ai-edge-litert) on the host CPU, XNNPACK on by default (as on phones) or the builtin kernels only."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import BadArtifactError, MissingToolError, UsageError, install_hint
from ..manifest import Manifest, TensorSpec
from .base import Runtime
from .edges import check_shape, from_model_output, run_batched, to_model_input

HINT = install_hint("tflite")


def _interpreter_module():
    try:
        from ai_edge_litert import interpreter
    except ImportError:
        raise MissingToolError("ai-edge-litert is not installed", HINT) from None
    return interpreter


class LiteRtRuntime(Runtime):
    name: ClassVar[str] = "litert"
    formats: ClassVar[tuple[str, ...]] = ("tflite",)
    option_names: ClassVar[tuple[str, ...]] = ("xnnpack",)

    def __init__(self) -> None:
        self._interp: Any = None
        self._manifest: Manifest | None = None
        self._threads: int | None = None
        self._xnnpack = True

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            _interpreter_module()
        except MissingToolError as e:
            return f"{e.message} ({e.hint})"
        return None

    def load(self, artifact: Path, manifest: Manifest, threads: int | None = None, xnnpack: bool = True,
             **options: Any) -> None:
        if options:
            raise UsageError(f"litert options {sorted(options)} unknown", "valid: threads, xnnpack")
        mod = _interpreter_module()
        resolver = (mod.OpResolverType.AUTO if xnnpack else mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        try:
            interp = mod.Interpreter(model_path=str(artifact), num_threads=threads,
                                     experimental_op_resolver_type=resolver)
            interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:  # what LiteRT raises for files it cannot parse
            raise BadArtifactError(f"LiteRT cannot load {Path(artifact).name}: {str(e).splitlines()[0][:150]}",
                                   "re-export it with `mnv2deploy export`") from None
        _check_matches(interp.get_input_details()[0], manifest.inputs[0], "input")
        _check_matches(interp.get_output_details()[0], manifest.outputs[0], "output")
        self._interp, self._manifest, self._threads, self._xnnpack = interp, manifest, threads, xnnpack

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self._interp is None or self._manifest is None:
            raise UsageError("load() an artifact before run()")
        ispec, ospec = self._manifest.inputs[0], self._manifest.outputs[0]
        interp = self._interp
        i_idx, o_idx = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]

        def run_one(x: np.ndarray) -> np.ndarray:
            try:
                interp.set_tensor(i_idx, to_model_input(x, ispec))
                interp.invoke()
            except (ValueError, RuntimeError) as e:
                raise BadArtifactError(f"LiteRT failed running the model: {str(e).splitlines()[0][:150]}",
                                       "the artifact does not match its manifest; re-export it") from None
            return from_model_output(interp.get_tensor(o_idx), ospec)

        return run_batched(run_one, np.asarray(batch, dtype=np.float32), ispec)

    def versions(self) -> dict[str, str]:
        from importlib.metadata import version

        return {"ai-edge-litert": version("ai-edge-litert")}

    def details(self) -> dict[str, Any]:
        return {"delegate": "xnnpack" if self._xnnpack else "builtin", "threads": self._threads}


def _check_matches(detail: dict[str, Any], spec: TensorSpec, what: str) -> None:
    """The manifest drives the edges; refuse a model whose tensor disagrees with it instead of guessing."""
    dtype = np.dtype(detail["dtype"]).name
    if dtype != spec.dtype:
        raise BadArtifactError(f"the model's {what} is {dtype} but its manifest says {spec.dtype}",
                               "the manifest does not belong to this model; re-export it")
    check_shape([int(d) for d in detail["shape"]], spec, what)

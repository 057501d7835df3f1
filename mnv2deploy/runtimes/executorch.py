"""ExecuTorch on the host CPU: a .pte program through ExecuTorch's Python runtime (the pybindings' portable lib, with
the XNNPACK backend registered), plus a reader of the program itself (executorch's own flatbuffer deserializer) for
the tensor specs export writes and the memory plan ``memory`` reports.

Programs lowered without a delegate run on ExecuTorch's portable kernels; an int8 one then needs the
``quantized_decomposed`` kernels, which live in a library of their own that must be loaded (RTLD_GLOBAL, so its
static registrations reach the runtime's kernel table) before the program is."""

from __future__ import annotations

import ctypes
import importlib.util
import struct
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import BadArtifactError, MissingToolError, UsageError, install_hint
from ..manifest import Manifest, TensorSpec
from .base import Runtime
from .edges import check_shape, from_model_output, run_batched, to_model_input

HINT = install_hint("executorch")
MAGIC = b"ET12"  # the flatbuffer file identifier of an ExecuTorch program, bytes 4..8
METHOD = "forward"
QUANTIZED_KERNELS = "libexecutorch_kernels_quantized.so"
# ExecuTorch's ScalarType codes (executorch/exir/scalar_type.py) for the dtypes a manifest can name
SCALAR_TYPES = {0: "uint8", 1: "int8", 3: "int32", 4: "int64", 5: "float16", 6: "float32"}
# What the flatbuffer deserializer raises on bytes that are not a program: it walks offsets read from the file, so
# garbage surfaces as any of these, never as one error class of its own.
PARSE_ERRORS = (struct.error, IndexError, ValueError, KeyError, TypeError, AttributeError, OverflowError,
                RecursionError, UnicodeDecodeError)


def _executorch_root() -> Path:
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        raise MissingToolError("executorch is not installed", HINT)
    return Path(spec.submodule_search_locations[0])


_PORTABLE_LIB: Any = None


def portable_lib() -> Any:
    """ExecuTorch's runtime bindings with the quantized portable kernels registered (once per process)."""
    global _PORTABLE_LIB
    if _PORTABLE_LIB is None:
        root = _executorch_root()
        import warnings

        with warnings.catch_warnings():  # "This API is experimental": said once per import, not ours to repeat
            warnings.simplefilter("ignore")
            from executorch.extension.pybindings import portable_lib as pl
        kernels = root / "lib" / QUANTIZED_KERNELS
        if kernels.is_file():
            ctypes.CDLL(str(kernels), mode=ctypes.RTLD_GLOBAL)
        _PORTABLE_LIB = pl
    return _PORTABLE_LIB


def check_magic(data: bytes, name: str) -> None:
    if len(data) < 8 or data[4:8] != MAGIC:
        raise BadArtifactError(f"{name} is not an ExecuTorch program (no {MAGIC.decode()} identifier)",
                               "pass a .pte file written by `mnv2deploy export --target executorch*`")


def read_program(path: Path) -> Any:
    """The program's schema object (``executorch.exir.schema.Program``), parsed with executorch's own deserializer.
    Parsing hostile bytes is pure Python but may take the process down with them: callers run it in a child."""
    path = Path(path)
    _executorch_root()
    from executorch.exir._serialize._program import deserialize_pte_binary

    data = path.read_bytes()
    check_magic(data, path.name)
    try:
        return deserialize_pte_binary(data).program
    except PARSE_ERRORS as e:
        raise BadArtifactError(f"{path.name} is not a readable ExecuTorch program ({type(e).__name__})",
                               "re-export it with `mnv2deploy export`") from None


def plan_of(program: Any, path: Path) -> Any:
    plans = [p for p in program.execution_plan if p.name == METHOD]
    if not plans:
        raise BadArtifactError(f"{Path(path).name} has no {METHOD} method", "re-export it with `mnv2deploy export`")
    return plans[0]


def value_spec(plan: Any, index: int, name: str, layout: str) -> TensorSpec:
    tensor = plan.values[index].val
    dtype = SCALAR_TYPES.get(int(getattr(tensor, "scalar_type", -1)))
    if dtype is None or not hasattr(tensor, "sizes"):
        raise BadArtifactError(f"the program's {name} is not a tensor of a supported dtype",
                               "export with `mnv2deploy export --target executorch*`")
    return TensorSpec(name, tuple(int(s) for s in tensor.sizes), dtype, layout)


def pte_tensor_specs(path: Path, input_name: str, output_name: str) -> tuple[tuple[TensorSpec, ...],
                                                                             tuple[TensorSpec, ...]]:
    """The forward method's input and output as the written program declares them (ExecuTorch keeps no names)."""
    plan = plan_of(read_program(path), path)
    return ((value_spec(plan, plan.inputs[0], input_name, "NCHW"),),
            (value_spec(plan, plan.outputs[0], output_name, "NC"),))


class ExecutorchRuntime(Runtime):
    name: ClassVar[str] = "executorch"
    formats: ClassVar[tuple[str, ...]] = ("pte",)

    def __init__(self) -> None:
        self._module: Any = None
        self._program: bytes = b""
        self._manifest: Manifest | None = None
        self._threads: int | None = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Also imports the runtime, so a bench's memory baseline includes it, as for the other runtimes."""
        try:
            portable_lib()
        except MissingToolError as e:
            return f"{e.message} ({e.hint})"
        except ImportError as e:
            return f"executorch's runtime does not import: {str(e).splitlines()[0][:120]} ({HINT})"
        return None

    def load(self, artifact: Path, manifest: Manifest, threads: int | None = None, **options: Any) -> None:
        if options:
            raise UsageError(f"executorch options {sorted(options)} unknown", "valid: threads")
        pl = portable_lib()
        data = Path(artifact).read_bytes()
        check_magic(data, Path(artifact).name)
        if threads:
            pl._unsafe_reset_threadpool(threads)  # XNNPACK runs on ExecuTorch's threadpool; we are its only user
        try:
            module = pl._load_for_executorch_from_buffer(data)
            meta = module.method_meta(METHOD)
        except (RuntimeError, ValueError) as e:  # what the bindings raise for a program they cannot load
            raise BadArtifactError(f"ExecuTorch cannot load {Path(artifact).name}: {str(e).splitlines()[0][:150]}",
                                   "re-export it with `mnv2deploy export`") from None
        for what, info, spec in (("input", meta.input_tensor_meta(0), manifest.inputs[0]),
                                 ("output", meta.output_tensor_meta(0), manifest.outputs[0])):
            dtype = SCALAR_TYPES.get(int(info.dtype()))
            if dtype != spec.dtype:
                raise BadArtifactError(f"the model's {what} is {dtype} but its manifest says {spec.dtype}",
                                       "the manifest does not belong to this model; re-export it")
            check_shape([int(s) for s in info.sizes()], spec, what)
        # the module runs from the buffer it was given without copying it: keep the bytes alive as long as it
        self._module, self._program, self._manifest, self._threads = module, data, manifest, threads

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self._module is None or self._manifest is None:
            raise UsageError("load() an artifact before run()")
        import torch

        ispec, ospec = self._manifest.inputs[0], self._manifest.outputs[0]

        def run_one(x: np.ndarray) -> np.ndarray:
            try:
                y = self._module.forward((torch.from_numpy(to_model_input(x, ispec)),))[0]
            except (RuntimeError, ValueError) as e:
                raise BadArtifactError(f"ExecuTorch failed running the model: {str(e).splitlines()[0][:150]}",
                                       "the artifact does not match its manifest; re-export it") from None
            return from_model_output(y.numpy(), ospec)

        return run_batched(run_one, np.asarray(batch, dtype=np.float32), ispec)

    def versions(self) -> dict[str, str]:
        from importlib.metadata import version

        return {"executorch": version("executorch")}

    def details(self) -> dict[str, Any]:
        delegate = (self._manifest.export_options.get("delegate") if self._manifest else None) or "xnnpack"
        return {"delegate": "xnnpack" if delegate == "xnnpack" else "portable", "threads": self._threads}

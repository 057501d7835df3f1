"""Core ML: runs .mlpackage files on macOS (coremltools predict); on Linux only static checks are possible.

``static_checks`` is what parity reports when Core ML cannot run here: the package parses as a spec and its ML
Program (with the weight blobs) loads, inputs/outputs match the manifest, weights have the dtype the precision
promises (int8 per-channel symmetric for coreml-int8), activations are quantized for W8A8, and the recorded
accuracy of the quantized torch model that was converted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import BadArtifactError, MissingToolError, PlatformError, UsageError, install_hint
from ..manifest import Manifest
from ..tolerance import tolerance_for
from .base import Runtime

COMPUTE_UNITS = {"cpuOnly": "CPU_ONLY", "cpuAndGPU": "CPU_AND_GPU", "all": "ALL", "cpuAndNeuralEngine": "CPU_AND_NE"}
SPEC_TO_IOS = {7: "iOS16", 8: "iOS17", 9: "iOS18"}
MIN_SPEC_VERSION = 7  # iOS 16
INT8_WEIGHT_OPS = ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale")
QUANTIZED_PRECISION = "int8"  # the quantized torch model is judged by parity's int8 Tolerance (tolerance.TOLERANCES)


def _check(name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "passed": bool(passed), "detail": detail}


class CoreMLRuntime(Runtime):
    name: ClassVar[str] = "coreml"
    formats: ClassVar[tuple[str, ...]] = ("mlpackage",)
    option_names: ClassVar[tuple[str, ...]] = ("compute_units",)

    def __init__(self) -> None:
        self._model: Any = None
        self._manifest: Manifest | None = None
        self._compute_units = "all"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if sys.platform != "darwin":
            return "Core ML runs only on macOS"
        try:
            import coremltools  # noqa: F401
        except ImportError:
            return f"coremltools is not installed ({install_hint('coreml')})"
        return None

    # ---- running (macOS only) ----
    def load(self, artifact: Path, manifest: Manifest, threads: int | None = None, **options: Any) -> None:
        reason = self.unavailable_reason()
        if reason:
            raise PlatformError(reason, "run parity/bench for .mlpackage on a Mac; on Linux parity reports static checks")
        import coremltools as ct

        units = options.get("compute_units") or "all"
        if units not in COMPUTE_UNITS:
            raise UsageError(f"compute units {units!r} unknown", f"choose one of {', '.join(COMPUTE_UNITS)}")
        try:
            self._model = ct.models.MLModel(str(artifact), compute_units=getattr(ct.ComputeUnit, COMPUTE_UNITS[units]))
        except (RuntimeError, ValueError, OSError) as e:  # what coremltools raises for unreadable packages
            raise BadArtifactError(f"Core ML cannot load {Path(artifact).name}: {str(e).splitlines()[0][:150]}",
                                   "re-export it with `mnv2deploy export --target coreml`") from None
        self._manifest, self._compute_units = manifest, units

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self._model is None or self._manifest is None:
            raise RuntimeError("CoreMLRuntime.run before load")
        spec = self._manifest.inputs[0]
        outputs = []
        for x in np.asarray(batch, dtype=np.float32):  # the packages are batch 1
            feed = to_pil_image(x, self._manifest) if spec.dtype == "uint8" else x[None]
            result = self._model.predict({spec.name: feed})
            outputs.append(np.asarray(result[self._manifest.outputs[0].name], dtype=np.float32).reshape(-1))
        return np.stack(outputs)

    def versions(self) -> dict[str, str]:
        from importlib.metadata import version

        return {"coremltools": version("coremltools")}

    def details(self) -> dict[str, Any]:
        return {"compute_units": self._compute_units,
                "input": self._manifest.inputs[0].name if self._manifest else None}

    # ---- what can be checked anywhere ----
    @classmethod
    def static_checks(cls, artifact: Path, manifest: Manifest) -> list[dict[str, Any]]:
        try:
            spec, program = load_spec_and_program(Path(artifact))
        except (MissingToolError, BadArtifactError) as e:
            return [_check("package loads as a spec", False, e.message)]
        version = spec.specificationVersion
        checks = [_check("package loads as a spec", spec.WhichOneof("Type") == "mlProgram",
                         f"{spec.WhichOneof('Type')}, specification version {version}, "
                         f"{len(list(program.functions['main'].operations))} ops, weight blobs read"),
                  _check("minimum deployment target iOS 16+", version >= MIN_SPEC_VERSION,
                         f"specification version {version} = {SPEC_TO_IOS.get(version, 'unknown')}")]
        checks += [compare_features("inputs match the manifest", spec.description.input, manifest.inputs),
                   compare_features("outputs match the manifest", spec.description.output, manifest.outputs),
                   check_metadata(spec, manifest), check_weights(program, manifest)]
        if manifest.export_options.get("activations") == "int8":
            checks.append(check_activations(program))
        if manifest.precision == "int8":
            checks.append(check_quantized_accuracy(manifest))
        return checks


def load_spec_and_program(artifact: Path) -> tuple[Any, Any]:
    """The protobuf spec (without compiling: works on Linux) and the MIL program with its weights."""
    try:
        import coremltools as ct
        from coremltools.converters.mil.frontend.milproto.load import load as load_mil
    except ImportError:
        raise MissingToolError("coremltools is not installed", install_hint("coreml")) from None
    from google.protobuf.message import DecodeError

    # Measured on damaged packages: DecodeError (model.mlmodel), RuntimeError (Manifest.json, missing weight.bin),
    # ValueError (truncated weight.bin).
    try:
        model = ct.models.MLModel(str(artifact), skip_model_load=True)
        spec = model.get_spec()
        program = load_mil(spec, spec.specificationVersion, model.weights_dir) if spec.WhichOneof("Type") == "mlProgram" else None
    except (DecodeError, RuntimeError, ValueError, OSError, KeyError, IndexError) as e:
        raise BadArtifactError(f"{artifact.name} does not parse as a Core ML package: "
                               f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}") from None
    if program is None:
        raise BadArtifactError(f"{artifact.name} is not an ML Program")
    return spec, program


def describe_feature(feature: Any) -> tuple[str, tuple[int, ...], str]:
    """(name, shape, dtype) of a spec feature in the manifest's terms (images: NHWC uint8)."""
    t = feature.type
    kind = t.WhichOneof("Type")
    if kind == "imageType":
        channels = 3 if t.imageType.colorSpace in (t.imageType.RGB, t.imageType.BGR) else 1
        return feature.name, (1, t.imageType.height, t.imageType.width, channels), "uint8"
    if kind == "multiArrayType":
        dtypes = {t.multiArrayType.FLOAT32: "float32", t.multiArrayType.FLOAT16: "float16",
                  t.multiArrayType.INT32: "int32", t.multiArrayType.DOUBLE: "float64"}
        return feature.name, tuple(int(d) for d in t.multiArrayType.shape), dtypes.get(t.multiArrayType.dataType, "?")
    return feature.name, (), kind or "?"


def compare_features(name: str, features: Any, expected: Any) -> dict[str, Any]:
    got = [describe_feature(f) for f in features]
    want = [(t.name, tuple(d if d is not None else -1 for d in t.shape), t.dtype) for t in expected]
    ok = len(got) == len(want) and all(g[0] == w[0] and g[2] == w[2] and (not g[1] or g[1] == w[1])
                                       for g, w in zip(got, want))
    fmt = lambda items: ", ".join(f"{n} {'x'.join(map(str, s))} {d}" for n, s, d in items)  # noqa: E731
    return _check(name, ok, f"package: {fmt(got)}" + ("" if ok else f"; manifest: {fmt(want)}"))


def check_metadata(spec: Any, manifest: Manifest) -> dict[str, Any]:
    meta = dict(spec.description.metadata.userDefined)
    try:
        labels = json.loads(meta.get("mnv2deploy.labels", "null"))
        prep = json.loads(meta.get("mnv2deploy.preprocessing", "null"))
    except json.JSONDecodeError:
        return _check("labels and preprocessing in metadata", False, "mnv2deploy.* metadata is not JSON")
    want_labels = list(manifest.labels) if manifest.labels else None
    prep_ok = prep is not None and all(prep.get(k) == v for k, v in manifest.preprocessing.to_dict().items()
                                       if k != "labels")
    ok = labels == want_labels and prep_ok
    return _check("labels and preprocessing in metadata", ok,
                  f"{len(labels) if labels else 0} labels, preprocessing {'matches' if prep_ok else 'differs from'} the manifest")


def _dtype(var: Any) -> str:
    from coremltools.converters.mil.mil import types

    return types.builtin_to_string(var.dtype)


def check_weights(program: Any, manifest: Manifest) -> dict[str, Any]:
    """Every conv/linear weight: int8 symmetric per output channel (int8 targets) or a float const of the precision."""
    ops = [op for op in program.functions["main"].operations if op.op_type in ("conv", "linear")]
    if not ops:
        return _check("weights have the promised dtype", False, "no conv/linear ops found")
    bad: list[str] = []
    if manifest.precision == "int8":
        for op in ops:
            src = op.weight.op
            if src is None or src.op_type not in INT8_WEIGHT_OPS:
                bad.append(f"{op.name} from {src.op_type if src else 'input'}")
                continue
            data = src.quantized_data if src.op_type == "constexpr_affine_dequantize" else src.data
            zero = getattr(src, "zero_point", None) if src.op_type == "constexpr_affine_dequantize" else getattr(src, "offset", None)
            scale = src.scale.val
            per_channel = np.size(scale) == data.shape[0] or (np.ndim(scale) and np.shape(scale)[0] == data.shape[0])
            symmetric = zero is None or not np.any(zero.val)
            if _dtype(data) != "int8" or not per_channel or not symmetric:
                bad.append(f"{op.name} ({_dtype(data)}, per-channel {per_channel}, symmetric {symmetric})")
        detail = f"{len(ops) - len(bad)}/{len(ops)} conv/linear weights int8, symmetric, one scale per output channel"
    else:
        want = {"fp16": "fp16", "fp32": "fp32"}.get(manifest.precision, manifest.precision)
        for op in ops:
            src = op.weight.op
            if src is None or src.op_type != "const" or _dtype(op.weight) != want:
                bad.append(f"{op.name} ({src.op_type if src else 'input'} {_dtype(op.weight)})")
        detail = f"{len(ops) - len(bad)}/{len(ops)} conv/linear weights are {want} constants"
    return _check("weights have the promised dtype", not bad, detail + (f"; not: {', '.join(bad[:3])}" if bad else ""))


def check_activations(program: Any) -> dict[str, Any]:
    ops = list(program.functions["main"].operations)
    convs = [op for op in ops if op.op_type in ("conv", "linear")]
    fed = [op for op in convs if op.x.op is not None and op.x.op.op_type == "dequantize"]
    qtypes = sorted({_dtype(op.outputs[0]) for op in ops if op.op_type == "quantize"})
    ok = bool(convs) and len(fed) == len(convs) and bool(qtypes) and set(qtypes) <= {"int8", "uint8"}
    return _check("activations quantized to 8 bits (W8A8)", ok,
                  f"{len(fed)}/{len(convs)} conv/linear inputs come from dequantize; quantize ops produce {', '.join(qtypes) or 'nothing'}")


def check_quantized_accuracy(manifest: Manifest) -> dict[str, Any]:
    """The quantized torch model that was converted, against the float one on the images recorded at export,
    judged by the same int8 Tolerance parity applies to an artifact (``mnv2deploy.tolerance.TOLERANCES``): top-1
    agreement with float, and the accuracy drop in points when the images have labels. On Linux this is the
    closest check there is to Core ML parity; ``--max-drop``/``--min-agreement`` do not reach it."""
    tol = tolerance_for(QUANTIZED_PRECISION)
    name = "quantized torch model accuracy"
    q = manifest.extra.get("quantized_torch")
    if not isinstance(q, dict) or q.get("top1_agreement_with_float") is None:
        return _check(name, False, "the manifest records no quantized_torch accuracy")
    agree = float(q["top1_agreement_with_float"])
    where = f"on {q.get('samples')} images of {q.get('source')}; {q.get('what')}"
    agree_ok = tol.min_agreement is None or agree >= tol.min_agreement
    agreement = f"top-1 agreement with float {agree:.3f} (limit >= {tol.min_agreement})"
    if q.get("accuracy") is None or q.get("float_accuracy") is None:
        scale = q.get("float_logit_std")
        return _check(name, agree_ok, f"no labels for these weights; {agreement}, max logit diff "
                      f"{q.get('max_abs_logit_diff', float('nan')):.3g}"
                      + (f", float logit std {scale:.3g}" if scale is not None else "") + f" {where}")
    drop = (q["float_accuracy"] - q["accuracy"]) * 100  # points, as parity reports it
    drop_ok = tol.max_drop is None or drop <= tol.max_drop + 1e-9
    return _check(name, agree_ok and drop_ok,
                  f"top-1 {q['accuracy']:.3f} vs float {q['float_accuracy']:.3f} (drop {drop:+.1f} pts, limit "
                  f"{tol.max_drop} pts); {agreement} {where}")


def to_pil_image(x: np.ndarray, manifest: Manifest) -> Any:
    """Undo the normalization of one CHW image back to the 8-bit RGB pixels Core ML's image input takes."""
    from PIL import Image

    c = manifest.preprocessing
    pixels = (x.transpose(1, 2, 0) * np.asarray(c.std, np.float32) + np.asarray(c.mean, np.float32)) * 255.0
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")

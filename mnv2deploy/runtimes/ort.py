"""onnxruntime on the CPU execution provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import BadArtifactError, MissingToolError, UsageError, install_hint
from ..manifest import Manifest
from .base import Runtime
from .edges import check_shape, from_model_output, run_batched, to_model_input

HINT = install_hint("onnx")


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise MissingToolError("onnxruntime is not installed", HINT) from None
    return onnxruntime


def _load_errors() -> tuple[type[BaseException], ...]:
    """What ORT raises for a file it cannot load: its own classes (plain Exception subclasses) plus the usual."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoModel", "NoSuchFile",
             "NotImplemented", "RuntimeException")
    return tuple(getattr(state, n) for n in names if hasattr(state, n)) + (RuntimeError, ValueError, OSError)


# Only settings that change numerics, never paths or libraries: the manifest is an untrusted file.
ALLOWED_SESSION_CONFIG = {"session.qdqisint8allowed": {"0", "1"}}


def _session_config(manifest: Manifest) -> dict[str, str]:
    config = manifest.extra.get("onnxruntime_session_config") or {}
    if not isinstance(config, dict) or any(ALLOWED_SESSION_CONFIG.get(str(k)) is None or str(v) not in
                                           ALLOWED_SESSION_CONFIG[str(k)] for k, v in config.items()):
        raise BadArtifactError(f"manifest asks for onnxruntime settings {config!r:.120} that are not allowed",
                               f"allowed: {ALLOWED_SESSION_CONFIG}; re-export the artifact")
    return {str(k): str(v) for k, v in config.items()}


class OrtRuntime(Runtime):
    name: ClassVar[str] = "onnxruntime"
    formats: ClassVar[tuple[str, ...]] = ("onnx",)

    def __init__(self) -> None:
        self._session: Any = None
        self._manifest: Manifest | None = None
        self._threads: int | None = None
        self._config: dict[str, str] = {}

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            _ort()
        except MissingToolError as e:
            return f"{e.message} ({e.hint})"
        return None

    def load(self, artifact: Path, manifest: Manifest, threads: int | None = None, **options: Any) -> None:
        if options:
            raise UsageError(f"onnxruntime options {sorted(options)} unknown", "valid: threads")
        ort = _ort()
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        so.log_severity_level = 3  # warnings about unused initializers are noise here
        # Session settings the exporter found the artifact needs (onnx-int8: keep S8S8 on x86, see targets/onnx_int8).
        self._config = _session_config(manifest)
        for key, value in self._config.items():
            so.add_session_config_entry(key, value)
        try:
            session = ort.InferenceSession(str(artifact), so, providers=["CPUExecutionProvider"])
        except _load_errors() as e:
            raise BadArtifactError(f"onnxruntime cannot load {Path(artifact).name}: {str(e).splitlines()[0][:150]}",
                                   "re-export it with `mnv2deploy export`") from None
        names = [i.name for i in session.get_inputs()]
        if manifest.inputs[0].name not in names:
            raise BadArtifactError(f"the model's inputs {names} do not include the manifest's {manifest.inputs[0].name!r}",
                                   "the manifest does not belong to this model; re-export it")
        model_input = session.get_inputs()[names.index(manifest.inputs[0].name)]
        check_shape([d if isinstance(d, int) else None for d in model_input.shape], manifest.inputs[0], "input")
        self._session, self._manifest, self._threads = session, manifest, threads

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self._session is None or self._manifest is None:
            raise UsageError("load() an artifact before run()")
        ispec, ospec = self._manifest.inputs[0], self._manifest.outputs[0]
        out_names = [o.name for o in self._session.get_outputs()]
        out = ospec.name if ospec.name in out_names else out_names[0]

        def run_one(x: np.ndarray) -> np.ndarray:
            try:
                y = self._session.run([out], {ispec.name: to_model_input(x, ispec)})[0]
            except _load_errors() as e:
                raise BadArtifactError(f"onnxruntime failed running the model: {str(e).splitlines()[0][:150]}",
                                       "the artifact does not match its manifest; re-export it") from None
            return from_model_output(y, ospec)

        return run_batched(run_one, np.asarray(batch, dtype=np.float32), ispec)

    def versions(self) -> dict[str, str]:
        return {"onnxruntime": _ort().__version__}

    def details(self) -> dict[str, Any]:
        return {"execution_provider": "CPUExecutionProvider", "threads": self._threads, "session_config": self._config}

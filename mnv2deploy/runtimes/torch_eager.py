"""The PyTorch reference an artifact came from, rebuilt from its manifest (weights, width, classes, split)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import BadWeightsError, UsageError
from ..manifest import Manifest
from ..threads import cap_torch
from .base import Runtime

CHUNK = 32


def reference_from_manifest(manifest: Manifest):
    """load_reference for the manifest's weights; the checkpoint must be the one the artifact was made from."""
    from ..weights import load_reference, resolve_weights

    w, m = manifest.weights, manifest.model
    wid = w.get("id", "default")
    choice = w.get("path") if wid == "file" else wid
    if wid == "file" and not (choice and Path(choice).is_file()):
        raise BadWeightsError(f"the weights this artifact was exported from ({choice}) are not here",
                              "run parity where the export ran, or re-export")
    same = wid in ("default", "imagenet")
    spec = resolve_weights(choice, None if same else m.get("width_mult"), None if same else m.get("num_classes"),
                           manifest.preprocessing.resolution)
    ref = load_reference(spec)
    want = w.get("sha256")
    if want and ref.weights_sha256 and want != ref.weights_sha256:
        raise BadWeightsError(f"the {wid} weights here (sha256 {ref.weights_sha256[:12]}...) are not the ones the "
                              f"artifact was exported from ({want[:12]}...)",
                              "re-export the artifact with the current weights")
    return ref


class TorchRuntime(Runtime):
    name: ClassVar[str] = "torch"
    formats: ClassVar[tuple[str, ...]] = ()  # runs the reference of any artifact, not an artifact file

    def __init__(self) -> None:
        self._model: Any = None
        self._threads: int | None = None
        self._split = 1

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            import torch  # noqa: F401
        except ImportError:
            return "torch is not installed (pip install torch)"
        return None

    def load(self, artifact: Path, manifest: Manifest, threads: int | None = None, **options: Any) -> None:
        if options:
            raise UsageError(f"torch options {sorted(options)} unknown", "valid: threads")
        model = reference_from_manifest(manifest).model
        split = int(manifest.model.get("split") or 1)
        if split > 1:
            from ..split import split_blocks

            model = split_blocks(model, split)
        cap_torch(threads)  # --threads, else the cap (threads.py): never torch's own all-cores default
        self._model, self._threads, self._split = model.eval(), threads, split

    @property
    def model(self) -> Any:
        """The loaded reference (split as the artifact was), e.g. to rebuild the quantized model it was made from."""
        return self._model

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        if self._model is None:
            raise UsageError("load() a manifest before run()")
        x = np.ascontiguousarray(batch, dtype=np.float32)
        with torch.inference_mode():  # chunks: 500 images at 224 in one batch would need gigabytes of activations
            return np.concatenate([self._model(torch.from_numpy(x[i:i + CHUNK])).numpy().astype(np.float32)
                                   for i in range(0, len(x), CHUNK)])

    def versions(self) -> dict[str, str]:
        import torch

        return {"torch": torch.__version__}

    def details(self) -> dict[str, Any]:
        return {"threads": self._threads, "split": self._split}

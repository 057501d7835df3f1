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


def reference_from_manifest(manifest: Manifest, weights: Path | None = None, artifact: Path | None = None):
    """load_reference for the manifest's weights; the checkpoint must be the one the artifact was made from (its
    sha256). ``weights``: where that checkpoint is now (``parity --weights``); else the exported path, then the
    file of that name beside ``artifact``."""
    from ..weights import load_reference, resolve_weights

    w, m = manifest.weights, manifest.model
    wid = w.get("id", "default")
    if weights is not None:
        return load_reference(moved_weights_spec(manifest, Path(weights)))
    choice = w.get("path") if wid == "file" else wid
    if wid == "file" and not (choice and Path(choice).is_file()):
        beside = Path(artifact).parent / str(w.get("file")) if artifact is not None and w.get("file") else None
        if beside is None or Path(str(w.get("file"))).name != w.get("file") or not beside.is_file():
            raise BadWeightsError(f"the weights this artifact was exported from ({w.get('file') or choice}) are not at "
                                  f"{choice}", "pass --weights PATH to that checkpoint (checked by its sha256)")
        return load_reference(moved_weights_spec(manifest, beside))
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


def moved_weights_spec(manifest: Manifest, path: Path):
    """The spec of a checkpoint at a new place, refused unless its sha256 is the manifest's (checked before
    anything is unpickled)."""
    from ..fileio import sha256_file
    from ..weights import WeightsSpec, check_model_args

    w, m = manifest.weights, manifest.model
    if w.get("id") == "random":
        raise UsageError("--weights does not apply: this artifact was exported from random weights (seeded)",
                         "drop --weights")
    if not path.is_file():
        raise UsageError(f"--weights {path}: no such file", "pass the checkpoint the artifact was exported from")
    want, got = w.get("sha256"), sha256_file(path)
    if not isinstance(want, str) or not want:
        raise BadWeightsError("the manifest records no weights sha256 to check --weights against",
                              "re-export the artifact with this mnv2deploy")
    if got != want:
        raise BadWeightsError(f"sha256 mismatch: --weights {path.name} is {got[:12]}..., the artifact was exported "
                              f"from {w.get('file') or 'weights'} {want[:12]}...",
                              "pass the checkpoint the artifact was exported from")
    width, classes = m.get("width_mult"), m.get("num_classes")
    check_model_args(width, classes, None)
    if width is None or classes is None:
        raise BadWeightsError("the manifest records no width_mult/num_classes for its model", "re-export the artifact")
    return WeightsSpec("file", float(width), int(classes), manifest.preprocessing, path=path.resolve())


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
        weights = options.pop("weights", None)
        if options:
            raise UsageError(f"torch options {sorted(options)} unknown", "valid: threads, weights")
        model = reference_from_manifest(manifest, weights, artifact).model
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

"""The input contract weights carry (torchvision's transforms / timm's PretrainedCfg in one frozen dataclass).

Export, parity and bench read preprocessing from here and from the manifest, never re-declare it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputContract:
    resolution: int  # square crop fed to the network
    resize: int  # shorter side is resized to this before the center crop
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    labels: tuple[str, ...] | None = None
    interpolation: str = "bilinear"

    def at_resolution(self, resolution: int) -> "InputContract":
        """The same contract for another input size, keeping the resize/crop ratio."""
        if resolution == self.resolution:
            return self
        return replace(self, resolution=resolution, resize=max(resolution, round(self.resize * resolution / self.resolution)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d["labels"] = list(self.labels) if self.labels is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputContract":
        labels = d.get("labels")
        return cls(resolution=int(d["resolution"]), resize=int(d["resize"]), mean=tuple(d["mean"]),
                   std=tuple(d["std"]), labels=tuple(labels) if labels is not None else None,
                   interpolation=d.get("interpolation", "bilinear"))

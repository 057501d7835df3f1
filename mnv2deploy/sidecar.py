"""A user checkpoint's input contract: the JSON sidecar beside it (``W.json`` next to ``W.pth``, as torchvision's
weight meta and timm's ``pretrained_cfg`` carry it) and the export options that override it.

Every value is validated here (UsageError/BadWeightsError naming the field); what neither gave is assumed and
the assumption is recorded, never hidden.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from .contract import InputContract
from .errors import BadWeightsError, UsageError

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
MAX_SIDECAR_BYTES = 4 << 20  # 100k labels fit; more is not a sidecar
MAX_LABELS_BYTES = 16 << 20
# Keys a sidecar may hold. timm's names (input_size, crop_pct) are accepted so its pretrained_cfg can be saved as is.
SIDECAR_KEYS = ("resolution", "resize", "crop", "crop_pct", "input_size", "interpolation", "mean", "std", "labels",
                "width_mult", "num_classes")


def sidecar_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def read_sidecar(weights: Path) -> dict[str, Any] | None:
    """The validated sidecar beside ``weights``, or None when there is none. Unknown keys are refused: a typo
    (``stdev``) must not silently fall back to an assumed value."""
    path = sidecar_path(weights)
    if path == Path(weights) or not path.is_file():
        return None
    where = f"sidecar {path.name}"
    try:
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            raise BadWeightsError(f"{where} is {path.stat().st_size:,} bytes, too large for a sidecar",
                                  "keep it to the input contract: resolution, resize, mean, std, labels")
        d = json.loads(path.read_bytes())
    except OSError as e:
        raise BadWeightsError(f"cannot read {where}: {e.strerror or e}", "check its permissions") from None
    except (ValueError, RecursionError) as e:
        raise BadWeightsError(f"{where} is not valid JSON ({type(e).__name__})",
                              'write an object such as {"resolution": 160, "mean": [0.5, 0.5, 0.5]}') from None
    if not isinstance(d, dict):
        raise BadWeightsError(f"{where} holds a {type(d).__name__}, not an object", "write one JSON object")
    unknown = sorted(k for k in d if k not in SIDECAR_KEYS)
    if unknown:
        raise BadWeightsError(f"{where} has unknown keys {', '.join(map(repr, unknown[:5]))[:160]}",
                              f"known keys: {', '.join(SIDECAR_KEYS)}")
    out: dict[str, Any] = {}
    for key in ("resolution", "resize", "crop", "num_classes"):
        if key in d:
            out[key] = _whole(d[key], f"{where}: {key}", BadWeightsError)
    if "input_size" in d:  # timm: [3, H, W], square only
        v = d["input_size"]
        if not (isinstance(v, list) and len(v) == 3 and v[0] == 3 and v[1] == v[2]):
            raise BadWeightsError(f"{where}: input_size {str(v)[:40]} is not [3, S, S]", "give a square input size")
        out["input_size"] = _whole(v[1], f"{where}: input_size", BadWeightsError)
    if "crop_pct" in d:
        v = d["crop_pct"]
        if not _number(v) or not 0 < v <= 1:
            raise BadWeightsError(f"{where}: crop_pct {str(v)[:20]} is not in (0, 1]", "e.g. 0.875 (timm's default)")
        out["crop_pct"] = float(v)
    if "width_mult" in d:
        if not _number(d["width_mult"]):
            raise BadWeightsError(f"{where}: width_mult is not a number", "e.g. 0.5")
        out["width_mult"] = float(d["width_mult"])
    if "interpolation" in d:
        out["interpolation"] = interpolation(d["interpolation"], f"{where}: interpolation", BadWeightsError)
    for key in ("mean", "std"):
        if key in d:
            out[key] = triple(d[key], f"{where}: {key}", positive=key == "std", error=BadWeightsError)
    if "labels" in d:
        labels = d["labels"]
        if not isinstance(labels, list) or not all(isinstance(x, str) and x.strip() for x in labels):
            raise BadWeightsError(f"{where}: labels must be a list of non-empty strings", "one class name per entry")
        out["labels"] = tuple(x.strip() for x in labels)
    sizes = {k: out[k] for k in ("resolution", "crop", "input_size") if k in out}
    if len(set(sizes.values())) > 1:
        raise BadWeightsError(f"{where}: {', '.join(f'{k} {v}' for k, v in sizes.items())} disagree",
                              "the network's input is the center crop: give one size")
    out["file"] = path.name
    return out


def contract_from_sidecar(side: dict[str, Any], base: InputContract) -> tuple[InputContract, tuple[str, ...]]:
    """The contract the sidecar states, ``base`` (ImageNet's) for the rest; and the names of what was assumed."""
    assumed = []
    size = side.get("resolution") or side.get("crop") or side.get("input_size")
    if size is None:
        assumed.append("resolution")
        size = base.resolution
    if "resize" in side:
        resize = side["resize"]
    elif "crop_pct" in side:
        resize = round(size / side["crop_pct"])
    else:
        assumed.append("resize")
        resize = round(base.resize * size / base.resolution)
    if resize < size:
        raise BadWeightsError(f"sidecar {side.get('file')}: resize {resize} is smaller than the crop {size}",
                              "resize is the shorter side before the center crop: at least the resolution")
    for key in ("interpolation", "mean", "std", "labels"):
        if key not in side:
            assumed.append(key)
    contract = InputContract(resolution=size, resize=resize, mean=side.get("mean", base.mean),
                             std=side.get("std", base.std), labels=side.get("labels"),
                             interpolation=side.get("interpolation", base.interpolation))
    return contract, tuple(assumed)


def override(contract: InputContract, assumed: tuple[str, ...], mean: str | None = None, std: str | None = None,
             resize: int | None = None, labels: Path | None = None) -> tuple[InputContract, tuple[str, ...]]:
    """Export options over the contract (they win over the sidecar); what they give is no longer assumed."""
    changes: dict[str, Any] = {}
    if mean is not None:
        changes["mean"] = triple(mean, "--mean")
    if std is not None:
        changes["std"] = triple(std, "--std", positive=True)
    if resize is not None:
        if isinstance(resize, bool) or not isinstance(resize, int) or not contract.resolution <= resize <= 1 << 15:
            raise UsageError(f"--resize {resize} is smaller than the resolution {contract.resolution}",
                             "give the shorter side before the center crop, at least the resolution")
        changes["resize"] = resize
    if labels is not None:
        changes["labels"] = read_labels_file(labels)
    given = set(changes)
    return replace(contract, **changes), tuple(a for a in assumed if a not in given)


def read_labels_file(path: Path) -> tuple[str, ...]:
    """``--labels FILE``: one class name a line (blank lines ignored), in the model's output order."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_LABELS_BYTES:
            raise UsageError(f"--labels {path}: {path.stat().st_size:,} bytes is too large for a labels file",
                             "one class name per line")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--labels {path}: no such file", "give a text file with one class name per line") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--labels {path}: cannot read it ({type(e).__name__})",
                         "give a UTF-8 text file with one class name per line") from None
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise UsageError(f"--labels {path} is empty", "one class name per line")
    return names


def check_labels(labels: tuple[str, ...] | None, num_classes: int, source: str) -> None:
    if labels is None:
        return
    if len(labels) != num_classes:
        raise UsageError(f"{source} names {len(labels)} classes, the model has {num_classes}",
                         "give one name per model output, in output order")
    dup = sorted({x for x in labels if labels.count(x) > 1}) if len(set(labels)) != len(labels) else []
    if dup:
        raise UsageError(f"{source} repeats class names ({', '.join(dup[:3])[:80]})", "give each class one unique name")


def triple(value: Any, what: str, positive: bool = False, error: type = UsageError) -> tuple[float, float, float]:
    """Three finite numbers, from a JSON list or 'a,b,c' text."""
    items = value.split(",") if isinstance(value, str) else value
    try:
        nums = tuple(float(x) for x in items) if isinstance(items, list) and all(
            _number(x) or isinstance(x, str) for x in items) else None
    except ValueError:
        nums = None
    if nums is None or len(nums) != 3 or not all(math.isfinite(x) for x in nums) or \
            (positive and not all(x > 0 for x in nums)):
        kind = "positive numbers" if positive else "numbers"
        raise error(f"{what} {str(value)[:40]!r} is not three finite {kind}", "e.g. 0.5,0.5,0.5 (one per RGB channel, on 0..1 pixels)")
    return nums  # type: ignore[return-value]


def interpolation(value: Any, what: str, error: type = UsageError) -> str:
    v = str(value).strip().lower()
    if v not in INTERPOLATIONS:
        raise error(f"{what} {str(value)[:30]!r} is not supported", f"choose one of {', '.join(INTERPOLATIONS)}")
    return v


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v: Any, what: str, error: type) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1 << 17:
        raise error(f"{what} {str(v)[:20]} is not a whole number of pixels/classes", "e.g. 160")
    return v

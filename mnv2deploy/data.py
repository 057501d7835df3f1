"""Images in, preprocessed float batches out: one path for the embedded sets and users' image folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .contract import InputContract
from .errors import BadDataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
              "nearest": Image.Resampling.NEAREST}  # the contract's interpolation (sidecar.INTERPOLATIONS)
MAX_PIXELS = 64_000_000  # refuse decompression bombs: checked from the header, before decoding


@dataclass(frozen=True)
class Batch:
    """Preprocessed images (float32 NCHW) with labels indexed into ``class_names`` (or None)."""
    images: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None
    source: str

    def __len__(self) -> int:
        return len(self.images)


def preprocess(img: Image.Image, contract: InputContract) -> np.ndarray:
    """RGB, resize shorter side, center crop, scale to [0, 1], normalize; returns CHW float32."""
    img = img.convert("RGB")
    w, h = img.size
    scale = contract.resize / min(w, h)
    size = (max(contract.resolution, round(w * scale)), max(contract.resolution, round(h * scale)))
    if size != (w, h):
        img = img.resize(size, RESAMPLING.get(contract.interpolation, Image.Resampling.BILINEAR))
    left, top = (size[0] - contract.resolution) // 2, (size[1] - contract.resolution) // 2
    img = img.crop((left, top, left + contract.resolution, top + contract.resolution))
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - np.asarray(contract.mean, dtype=np.float32)) / np.asarray(contract.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    return np.stack(arrays).astype(np.float32, copy=False)


def load_embedded(kind: str, contract: InputContract, samples: int | None = None) -> Batch:
    """The shipped CIFAR-10 held-out evaluation ('eval') or calibration ('calib') set."""
    from .weights import DATA_DIR, default_meta

    path = DATA_DIR / f"cifar10_{kind}.npz"
    try:
        with np.load(path) as npz:
            images, labels = npz["images"], npz["labels"]
    except (OSError, KeyError, ValueError) as e:
        raise BadDataError(f"embedded {kind} set unreadable ({path}: {e})", "reinstall mnv2deploy") from None
    picked = _spread(len(images), samples)
    x = _stack([preprocess(Image.fromarray(images[i]), contract) for i in picked])
    names = tuple(default_meta()["labels"])
    return Batch(x, _relabel(labels[picked], names, contract, f"embedded {kind} set"), names, f"embedded:{kind}")


def _spread(n: int, samples: int | None) -> np.ndarray:
    """Evenly spaced indices, so a small sample still covers every class of a class-sorted set."""
    if samples is None or samples >= n:
        return np.arange(n)
    if samples < 1:
        raise BadDataError(f"--samples must be at least 1, got {samples}")
    return np.linspace(0, n - 1, samples).round().astype(int)


def _relabel(labels: np.ndarray, names: tuple[str, ...], contract: InputContract, source: str) -> np.ndarray | None:
    """Map folder/set class indices onto the model's label order; None when the model has no label names."""
    if contract.labels is None:
        return None
    missing = [n for n in names if n not in contract.labels]
    if missing:
        raise BadDataError(f"{source} has classes the model does not know: {', '.join(missing[:5])}",
                           f"the model's labels are {', '.join(contract.labels[:10])}{'...' if len(contract.labels) > 10 else ''}")
    lut = np.array([contract.labels.index(n) for n in names])
    return lut[labels]


def list_image_folder(root: Path) -> tuple[list[tuple[Path, int]], tuple[str, ...]]:
    """``root/<class>/<image>`` files, sorted; raises a clear error for empty or class-less folders."""
    root = Path(root)
    if not root.is_dir():
        raise BadDataError(f"{root} is not a folder", "pass a folder laid out as DIR/<class>/<image>.jpg")
    try:
        classes = tuple(sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")))
        if not classes:
            raise BadDataError(f"{root} has no class subfolders", "lay images out as DIR/<class>/<image>.jpg")
        files = [(p, i) for i, c in enumerate(classes) for p in sorted((root / c).iterdir())
                 if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    except OSError as e:
        raise BadDataError(f"cannot list {e.filename or root}: {e.strerror or e}", "check the folder's permissions") from None
    if not files:
        raise BadDataError(f"{root} has class folders but no .jpg/.png images", "put images in DIR/<class>/")
    return files, classes


def load_image_folder(root: Path, contract: InputContract, samples: int | None = None,
                      labelled: bool = True) -> Batch:
    """Load a user's image folder; unreadable images are an error naming the file (nothing is skipped silently)."""
    files, classes = list_image_folder(root)
    picked = [files[i] for i in _spread(len(files), samples)]
    arrays = []
    for path, _ in picked:
        try:
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise BadDataError(f"image {path} is {img.width}x{img.height}, over the {MAX_PIXELS:,}-pixel limit",
                                       "downscale it; such sizes are refused as possible decompression bombs")
                img.load()
                arrays.append(preprocess(_to_8bit(img), contract))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError) as e:
            raise BadDataError(f"cannot read image {path}: {str(e).splitlines()[0][:120]}",
                               "remove or replace the file") from None
    labels = np.array([i for _, i in picked])
    mapped = _relabel(labels, classes, contract, str(root)) if labelled else None
    return Batch(_stack(arrays), mapped, classes, str(root))


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float PNGs convert to RGB badly in PIL: scale them to 8 bits first."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        return Image.fromarray((a / peak * 255).clip(0, 255).astype(np.uint8))
    if img.mode == "F":
        return Image.fromarray((np.asarray(img).clip(0, 1) * 255).astype(np.uint8))
    return img


def load_dataset(data: Path | None, contract: InputContract, samples: int | None, kind: str = "eval") -> Batch:
    """A user folder when given (unlabelled for ``calib``), else the embedded set of that kind."""
    if data is None:
        return load_embedded(kind, contract, samples)
    # calibration only needs pixels: its folder's class names need not be the model's labels
    return load_image_folder(data, contract, samples, labelled=kind != "calib")

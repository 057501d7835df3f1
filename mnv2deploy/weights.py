"""Where weights come from and the input contract they carry.

``resolve_weights`` turns what a user typed (``default``, ``imagenet``, ``random`` or a path) into a frozen
``WeightsSpec``; ``load_reference`` builds the model and loads the weights without ever unpickling code.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from .contract import IMAGENET_MEAN, IMAGENET_STD, InputContract
from .errors import BadWeightsError, MissingToolError, UsageError

DATA_DIR = Path(str(resources.files("mnv2deploy") / "_data"))
DEFAULT_CHECKPOINT = DATA_DIR / "mobilenet_v2_cifar10.pt"
DEFAULT_META = DATA_DIR / "default_weights.json"

IMAGENET_URL = "https://download.pytorch.org/models/mobilenet_v2-7ebf99e0.pth"
# torchvision names its files <name>-<first 8 hex of sha256>.pth; torch.hub checks that prefix the same way.
IMAGENET_SHA256_PREFIX = "7ebf99e0"
IMAGENET_CONTRACT = InputContract(resolution=224, resize=232, mean=IMAGENET_MEAN, std=IMAGENET_STD)
RANDOM_SEED = 0


@dataclass(frozen=True)
class WeightsSpec:
    id: str  # "default", "imagenet", "random" or "file"
    width_mult: float
    num_classes: int
    contract: InputContract
    path: Path | None = None
    url: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    # user files: what nobody stated (contract fields taken from ImageNet's defaults) and what the shapes told
    assumed: tuple[str, ...] = field(default=(), compare=False)
    inferred: tuple[str, ...] = field(default=(), compare=False)
    sidecar: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        # "file" (the name) travels with the artifact: parity --weights finds the checkpoint anywhere by sha256
        return {"id": self.id, "width_mult": self.width_mult, "num_classes": self.num_classes,
                "path": str(self.path) if self.path else None, "file": self.path.name if self.path else None,
                "url": self.url, "sidecar": self.sidecar, "assumed": list(self.assumed),
                "inferred": list(self.inferred)}

    def with_contract(self, contract: InputContract, assumed: tuple[str, ...]) -> "WeightsSpec":
        from .sidecar import check_labels

        check_labels(contract.labels, self.num_classes, "--labels")
        return replace(self, contract=contract, assumed=assumed)


def assumption_warning(spec: WeightsSpec) -> str | None:
    """One line naming what was assumed rather than given (None when nothing was)."""
    if not spec.assumed:
        return None
    c = spec.contract
    said = {"resolution": f"resolution {c.resolution}", "resize": f"resize {c.resize} (ImageNet's 232/224 ratio)",
            "interpolation": f"{c.interpolation} interpolation", "mean": "ImageNet mean", "std": "ImageNet std",
            "labels": "no labels"}
    where = spec.path.with_suffix(".json").name if spec.path else "a sidecar"
    return (f"warning: assumed, not given: {', '.join(said[a] for a in spec.assumed)} "
            f"(state them in {where} or with --mean/--std/--resize/--labels)")


@lru_cache(maxsize=1)
def default_meta() -> dict[str, Any]:
    try:
        return json.loads(DEFAULT_META.read_text())
    except FileNotFoundError:
        raise BadWeightsError(f"the embedded default is missing ({DEFAULT_META})",
                              "reinstall mnv2deploy or run scripts/train_default.py") from None


def default_contract() -> InputContract:
    m = default_meta()
    r = int(m["resolution"])
    return InputContract(resolution=r, resize=r, mean=tuple(m["mean"]), std=tuple(m["std"]), labels=tuple(m["labels"]))


def cache_dir() -> Path:
    """Per-user cache (XDG), overridable with MNV2DEPLOY_CACHE."""
    env = os.environ.get("MNV2DEPLOY_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("mnv2deploy"))


MAX_CLASSES = 100_000  # 1280 x 100k fp32 weights = 0.5 GB already; more is a typo, not a model
RESOLUTION_RANGE = (16, 1024)


def check_model_args(width_mult: float | None, num_classes: int | None, resolution: int | None) -> None:
    """Refuse values no MobileNetV2 can be built with, before anything is loaded (UsageError, exit 2)."""
    from .model import WIDTH_RANGE

    if width_mult is not None:
        if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) \
                or not WIDTH_RANGE[0] <= width_mult <= WIDTH_RANGE[1]:
            raise UsageError(f"width multiplier {width_mult} is outside {WIDTH_RANGE[0]} to {WIDTH_RANGE[1]}",
                             "pick a width such as 0.35, 0.5, 0.75, 1.0 or 1.4")
    for name, value, lo, hi in (("num-classes", num_classes, 1, MAX_CLASSES),
                                ("resolution", resolution, *RESOLUTION_RANGE)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi):
            raise UsageError(f"--{name} {value} is outside {lo} to {hi}", f"give a whole number from {lo} to {hi}")


def resolve_weights(weights: str | os.PathLike | None = "default", width_mult: float | None = None,
                    num_classes: int | None = None, resolution: int | None = None) -> WeightsSpec:
    """The spec for a weights choice; width/classes/resolution default to what the weights were made for."""
    check_model_args(width_mult, num_classes, resolution)
    w = "default" if weights is None else weights
    if w == "default":
        m = default_meta()
        _require_same("embedded default", "width", width_mult, m["width_mult"])
        _require_same("embedded default", "num_classes", num_classes, m["num_classes"])
        contract = default_contract()
        return WeightsSpec("default", m["width_mult"], m["num_classes"], contract.at_resolution(resolution or contract.resolution),
                           path=DEFAULT_CHECKPOINT, meta=m)
    if w == "imagenet":
        _require_same("imagenet", "width", width_mult, 1.0)
        _require_same("imagenet", "num_classes", num_classes, 1000)
        return WeightsSpec("imagenet", 1.0, 1000, IMAGENET_CONTRACT.at_resolution(resolution or 224),
                           path=cache_dir() / "weights" / Path(IMAGENET_URL).name, url=IMAGENET_URL)
    if w == "random":
        return WeightsSpec("random", width_mult or 1.0, num_classes or 1000,
                           IMAGENET_CONTRACT.at_resolution(resolution or 224), meta={"seed": RANDOM_SEED})
    path = Path(w)
    if not path.is_file():
        raise UsageError(f"--weights {w}: not 'default', 'imagenet', 'random' or an existing file",
                         "pass one of those names or the path of a state_dict file")
    return _file_spec(path.resolve(), width_mult, num_classes, resolution)


def _file_spec(path: Path, width_mult: float | None, num_classes: int | None, resolution: int | None) -> WeightsSpec:
    """A user checkpoint: its sidecar's contract (ImageNet's for what it leaves out, recorded as assumed), width
    and classes from the options, the sidecar, or else the checkpoint's own shapes (recorded as inferred)."""
    from .sidecar import check_labels, contract_from_sidecar, read_sidecar

    side = read_sidecar(path) or {}
    width = width_mult if width_mult is not None else side.get("width_mult")
    classes = num_classes if num_classes is not None else side.get("num_classes")
    inferred = []
    if width is None or classes is None:
        guess_w, guess_n = infer_architecture(path)
        if width is None:
            width = guess_w
            inferred.append(f"width {guess_w:g}")
        if classes is None:
            classes = guess_n
            inferred.append(f"{guess_n} classes")
    check_model_args(width, classes, None)
    contract, assumed = contract_from_sidecar(side, IMAGENET_CONTRACT)
    if resolution is not None:  # --resolution states it
        assumed = tuple(a for a in assumed if a != "resolution")
    check_labels(contract.labels, classes, f"sidecar {side.get('file')} labels")
    return WeightsSpec("file", width, classes, contract.at_resolution(resolution or contract.resolution), path=path,
                       assumed=assumed, inferred=tuple(inferred), sidecar=side.get("file"))


def infer_architecture(path: Path) -> tuple[float, int]:
    """(width, classes) from a checkpoint's shapes; BadWeightsError when no standard width fits them all."""
    state = read_state_dict(path)
    head = state.get("classifier.1.weight")
    width = _matching_width(state, int(head.shape[0])) if head is not None and head.ndim == 2 else None
    if width is None:
        raise BadWeightsError(f"{path.name}: width and classes cannot be inferred ({guess_architecture(state)})",
                              "pass --width and --num-classes")
    return width, int(head.shape[0])


def _require_same(what: str, name: str, given: Any, expected: Any) -> None:
    if given is not None and given != expected:
        raise UsageError(f"{what} weights have {name} {expected}, not {given}",
                         f"drop --{name.replace('_', '-')} or use --weights random|PATH")


def fetch_imagenet(spec: WeightsSpec) -> Path:
    """Download torchvision's IMAGENET1K_V2 into the cache once (with progress), verify, reuse."""
    assert spec.path is not None and spec.url is not None
    if spec.path.is_file():
        _verify_prefix(spec.path)
        return spec.path
    from .fileio import atomic_path

    try:
        with urllib.request.urlopen(spec.url, timeout=20) as resp, atomic_path(spec.path) as tmp:
            total = int(resp.headers.get("Content-Length") or 0)
            from rich.progress import Progress

            with Progress(transient=True, console=_stderr_console()) as bar, open(tmp, "wb") as out:
                task = bar.add_task(f"downloading {spec.path.name}", total=total or None)
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    out.write(chunk)
                    bar.advance(task, len(chunk))
            _verify_prefix(tmp)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise MissingToolError(
            f"cannot download {spec.url} ({getattr(e, 'reason', e)})",
            f"fetch it elsewhere and drop it at {spec.path}, or pass --weights PATH") from None
    return spec.path


def _verify_prefix(path: Path) -> None:
    from .fileio import sha256_file

    digest = sha256_file(path)
    if not digest.startswith(IMAGENET_SHA256_PREFIX):
        raise BadWeightsError(f"{path} has sha256 {digest[:12]}..., expected {IMAGENET_SHA256_PREFIX}...",
                              "delete it and download again")


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def read_state_dict(path: Path) -> dict[str, Any]:
    """Load a checkpoint without executing code; accepts a bare state_dict or {'state_dict'|'model': ...}."""
    import pickle
    import struct
    import zipfile

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = _unpickler_detail(str(e))
        if "global" in detail.lower():  # it names code to import: refused, never run
            raise BadWeightsError(f"{path} is refused: loading it would import code ({detail[:120]})",
                                  "save weights with torch.save(model.state_dict(), path); load other files only "
                                  "if you trust them") from None
        raise BadWeightsError(f"{path} is not a readable checkpoint ({detail[:120]})",
                              "check the file is complete, e.g. re-download or re-save it") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, IndexError, struct.error,
            UnicodeDecodeError, MemoryError) as e:
        # a non-checkpoint file fails inside the legacy unpickler with any of these
        raise BadWeightsError(f"{path} is not a readable checkpoint ({_first_line(e)})",
                              "check the file is complete, e.g. re-download or re-save it") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BadWeightsError(f"{path} does not hold a state_dict of tensors", "save model.state_dict(), not the model")
    return obj


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else type(e).__name__


def _unpickler_detail(message: str) -> str:
    """The useful sentence of torch's weights_only refusal (after 'WeightsUnpickler error:'), not its boilerplate."""
    _, _, tail = message.partition("WeightsUnpickler error:")
    for line in (tail or message).splitlines():
        if line.strip():
            return line.strip().split(" was not an allowed global")[0]
    return "not a tensor checkpoint"


STANDARD_WIDTHS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


def guess_architecture(state: dict[str, Any]) -> str:
    """'width W, N classes' as far as the file tells, for error hints."""
    head = state.get("classifier.1.weight")
    if head is not None and getattr(head, "ndim", 0) == 2:
        width = _matching_width(state, int(head.shape[0]))
        if width is not None:  # every shape agrees with one standard width (the stem alone cannot tell 0.35 from 0.5)
            return f"MobileNetV2 width {width:g}x, {head.shape[0]} classes"
    parts = []
    stem = state.get("features.0.0.weight")
    if stem is not None and getattr(stem, "ndim", 0) == 4:
        from .model import STEM_CHANNELS, make_divisible

        widths = [f"{w:g}x" for w in STANDARD_WIDTHS if make_divisible(STEM_CHANNELS * w) == stem.shape[0]]
        parts.append(f"stem {stem.shape[0]} channels (width {' or '.join(widths) or 'not a standard one'})")
    if head is not None and getattr(head, "ndim", 0) == 2:
        parts.append(f"{head.shape[0]} classes")
    return ", ".join(parts) or "not a MobileNetV2 layout"


def _matching_width(state: dict[str, Any], num_classes: int) -> float | None:
    import torch

    from .model import build

    shapes = {k: tuple(getattr(v, "shape", ())) for k, v in state.items()}
    for width in STANDARD_WIDTHS:
        with torch.device("meta"):  # shapes only: nothing is allocated
            expected = {k: tuple(v.shape) for k, v in build(width, num_classes).state_dict().items()}
        if all(shapes.get(k) == v for k, v in expected.items() if k in shapes) and \
                sum(k in shapes for k in expected) >= len(expected) // 2:
            return width
    return None


def load_state_into(model: Any, state: dict[str, Any], source: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(filter(None, [
            f"missing {_few(missing)}" if missing else "", f"unexpected {_few(unexpected)}" if unexpected else "",
            f"wrong shapes {_few(wrong)}" if wrong else ""]))
        raise BadWeightsError(f"{source} does not fit MobileNetV2 width {model.width_mult:g} / {model.num_classes} classes: {detail}",
                              f"the file looks like {guess_architecture(state)}; set --width/--num-classes to match")
    model.load_state_dict(state)


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


@dataclass(frozen=True)
class Reference:
    """A loaded PyTorch reference: the model in eval mode, where it came from, and its weights' sha256."""
    model: Any
    spec: WeightsSpec
    weights_sha256: str | None


def load_reference(spec: WeightsSpec) -> Reference:
    import torch

    from .fileio import sha256_file
    from .model import build

    if spec.id == "random":
        torch.manual_seed(spec.meta.get("seed", RANDOM_SEED))
    model = build(spec.width_mult, spec.num_classes)
    digest = None
    if spec.id != "random":
        path = fetch_imagenet(spec) if spec.id == "imagenet" else spec.path
        assert path is not None
        if spec.id == "default" and not path.is_file():
            raise BadWeightsError(f"the embedded default checkpoint is missing ({path})", "reinstall mnv2deploy")
        load_state_into(model, read_state_dict(path), str(path))
        digest = sha256_file(path)
    return Reference(model.eval(), spec, digest)


def mobilenet_v2(width_mult: float = 1.0, num_classes: int = 1000, weights: str | os.PathLike | None = None):
    """The public builder: random init (``weights=None``), ``"imagenet"``, ``"default"`` or a state_dict path."""
    if weights is None:
        from .model import build

        return build(width_mult, num_classes)
    spec = resolve_weights(weights, width_mult if weights not in ("default", "imagenet") else None,
                           num_classes if weights not in ("default", "imagenet") else None)
    model = load_reference(spec).model
    model.weights_spec = spec
    return model


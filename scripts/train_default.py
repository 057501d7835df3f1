"""Train the embedded default: MobileNetV2 width 1.0 on CIFAR-10 (real photographs) at 32x32.

Reproducible: fixed seeds, fixed sample lists, 2 CPU threads. Writes into mnv2deploy/_data/:
  mobilenet_v2_cifar10.pt     state_dict (torchvision layout, 10 classes)
  cifar10_eval.npz            500 held-out test images (50 per class), never trained on
  cifar10_calib.npz           200 training images (20 per class) for int8 calibration
  default_weights.json        sha256 of each file, epochs, held-out accuracy

Usage: python scripts/train_default.py --data ../shared/data/cifar10 [--epochs 20]
Data: CIFAR-10 (Krizhevsky, 2009, "Learning Multiple Layers of Features from Tiny Images").
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mnv2deploy.model import MobileNetV2  # noqa: E402

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)
OUT = ROOT / "mnv2deploy" / "_data"


def read_split(tar_path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """All images of one tarball as uint8 NHWC, sorted by class then file name."""
    found = {}
    with tarfile.open(tar_path) as tar:  # stream in archive order: seeking back in a .gz re-reads it
        for m in tar:
            if m.isfile() and m.name.endswith(".jpg"):
                img = Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB")
                found[m.name] = np.asarray(img, dtype=np.uint8)
    names = sorted(found)
    labels = np.array([CLASSES.index(Path(n).parent.name) for n in names], dtype=np.int64)
    return np.stack([found[n] for n in names]), labels, names


def first_per_class(labels: np.ndarray, k: int) -> np.ndarray:
    return np.concatenate([np.flatnonzero(labels == c)[:k] for c in range(len(CLASSES))])


def to_tensor(images: np.ndarray) -> torch.Tensor:
    x = (images.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random crop with 4-pixel padding and horizontal flip, the standard CIFAR recipe."""
    n = x.shape[0]
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    dx, dy = torch.randint(0, 9, (2, n), generator=gen)
    out = torch.stack([padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32] for i in range(n)])
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = sum((model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item() for i in range(0, len(x), 500))
    return correct / len(x)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "cifar10")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=4e-5 * 10)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)

    t0 = time.time()
    train_img, train_lbl, _ = read_split(args.data / "train.tar.gz")
    test_img, test_lbl, _ = read_split(args.data / "test.tar.gz")
    print(f"decoded {len(train_img)} train / {len(test_img)} test images in {time.time() - t0:.0f}s", flush=True)

    OUT.mkdir(parents=True, exist_ok=True)
    eval_idx, calib_idx = first_per_class(test_lbl, 50), first_per_class(train_lbl, 20)
    np.savez_compressed(OUT / "cifar10_eval.npz", images=test_img[eval_idx], labels=test_lbl[eval_idx])
    np.savez_compressed(OUT / "cifar10_calib.npz", images=train_img[calib_idx], labels=train_lbl[calib_idx])

    x_train, y_train = to_tensor(train_img), torch.from_numpy(train_lbl)
    x_test, y_test = to_tensor(test_img), torch.from_numpy(test_lbl)
    model = MobileNetV2(width_mult=1.0, num_classes=len(CLASSES))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.wd)
    steps_per_epoch = math.ceil(len(x_train) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.epochs * steps_per_epoch, pct_start=0.15)
    ckpt = OUT / "mobilenet_v2_cifar10.pt"
    history = []
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        t_epoch, loss_sum = time.time(), 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * args.batch:(i + 1) * args.batch]
            loss = F.cross_entropy(model(augment(x_train[idx], gen)), y_train[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item()
        acc = accuracy(model, x_test, y_test)
        history.append({"epoch": epoch + 1, "loss": loss_sum / steps_per_epoch, "test_accuracy": acc})
        print(f"epoch {epoch + 1}/{args.epochs} loss {loss_sum / steps_per_epoch:.3f} "
              f"test acc {acc:.4f} ({time.time() - t_epoch:.0f}s)", flush=True)
        torch.save(model.state_dict(), ckpt)

    meta = {
        "id": "cifar10-default", "width_mult": 1.0, "num_classes": len(CLASSES), "resolution": 32,
        "labels": list(CLASSES), "mean": MEAN.tolist(), "std": STD.tolist(),
        "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "weight_decay": args.wd,
        "test_accuracy_10000": history[-1]["test_accuracy"],
        "eval_accuracy_500": accuracy(model, x_test[eval_idx], y_test[eval_idx]),
        "train_minutes": round((time.time() - t0) / 60, 1), "history": history,
        "sha256": {p.name: sha256(p) for p in (ckpt, OUT / "cifar10_eval.npz", OUT / "cifar10_calib.npz")},
        "data": "CIFAR-10 (Krizhevsky, 2009), ../shared/data/cifar10",
    }
    (OUT / "default_weights.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps({k: v for k, v in meta.items() if k != "history"}, indent=2))


if __name__ == "__main__":
    main()

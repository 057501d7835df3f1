"""Plot the embedded default's training history (from default_weights.json) to docs/default-model-training.png."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    meta = json.loads((ROOT / "mnv2deploy" / "_data" / "default_weights.json").read_text())
    epochs = [h["epoch"] for h in meta["history"]]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2))
    ax_loss.plot(epochs, [h["loss"] for h in meta["history"]], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss (label smoothing 0.1)")
    ax_acc.plot(epochs, [100 * h["test_accuracy"] for h in meta["history"]], marker="o", color="tab:green")
    ax_acc.set(xlabel="epoch", ylabel="CIFAR-10 test top-1 (%)", ylim=(0, 100))
    fig.suptitle(f"MobileNetV2 1.0 on CIFAR-10 at {meta['resolution']}x{meta['resolution']}, "
                 f"{meta['train_minutes']:.0f} min on 2 CPU threads")
    fig.tight_layout()
    out = ROOT / "docs" / "default-model-training.png"
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()

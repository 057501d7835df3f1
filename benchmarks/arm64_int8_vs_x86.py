"""ARM vs x86 int8 numerics: the same .tflite and inputs through host (x86) LiteRT and the aarch64 LiteRT kernels
under qemu (cortex-a76 dot-product, cortex-a57 plain NEON). Prints max abs logit diff and top-1 agreement.

  .venv/bin/python benchmarks/arm64_int8_vs_x86.py MODEL.tflite [N]
Inputs: the first N embedded CIFAR-10 eval images (preprocessed), NCHW float32 as the model takes them.
"""

import json
import sys
import time

import numpy as np

from mnv2deploy.runtimes.litert_arm64 import run_model_inputs
from mnv2deploy.data import load_dataset
from mnv2deploy.weights import resolve_weights


def edges(model: str):
    """(input details, output details) of the model: full-int8 exports take and give int8."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=model, num_threads=1)
    return it, it.get_input_details()[0], it.get_output_details()[0]


def quantize(x: np.ndarray, d: dict) -> np.ndarray:
    scale, zp = d["quantization"]
    if not np.issubdtype(d["dtype"], np.integer):
        return x.astype(d["dtype"])
    info = np.iinfo(d["dtype"])
    return np.clip(np.round(x / scale) + zp, info.min, info.max).astype(d["dtype"])


def dequantize(y: np.ndarray, d: dict) -> np.ndarray:
    scale, zp = d["quantization"]
    return (y.astype(np.float32) - zp) * scale if np.issubdtype(d["dtype"], np.integer) else y.astype(np.float32)


def host_run(model: str, x: np.ndarray) -> np.ndarray:
    it, i, o = edges(model)
    it.allocate_tensors()
    ys = []
    for k in range(len(x)):
        it.set_tensor(i["index"], x[k:k + 1].astype(i["dtype"]))
        it.invoke()
        ys.append(it.get_tensor(o["index"]).copy())
    return np.concatenate(ys)


def main(model: str, n: int) -> dict:
    batch = load_dataset(None, resolve_weights("default").contract, n)
    _, i, o = edges(model)
    x = quantize(batch.images.astype(np.float32), i)
    host = dequantize(host_run(model, x), o)
    out = {"model": model, "samples": n, "host_top1_acc": float((host.argmax(1) == batch.labels).mean())}
    for cpu in ("cortex-a76", "cortex-a57"):
        t = time.monotonic()
        arm = dequantize(run_model_inputs(model, x, cpu), o)
        out[cpu] = {"max_abs_diff": float(np.abs(arm - host).max()),
                    "mean_abs_diff": float(np.abs(arm - host).mean()),
                    "top1_agreement": float((arm.argmax(1) == host.argmax(1)).mean()),
                    "output_scale": float(o["quantization"][0]),
                    "max_diff_in_output_steps": float(np.abs(arm - host).max() / o["quantization"][0])
                    if o["quantization"][0] else None,
                    "exact_equal_fraction": float((arm == host).all(1).mean()),
                    "top1_acc": float((arm.argmax(1) == batch.labels).mean()),
                    "wall_s_emulated": round(time.monotonic() - t, 1)}
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200), indent=1))

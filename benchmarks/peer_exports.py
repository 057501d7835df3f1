"""The peer export routes, run in the peers venv (benchmarks/requirements-peers.txt), never in the main one.

    python peer_exports.py executorch MODEL.pt2 CALIB.npy OUT.pte
    python peer_exports.py onnx2tf MODEL.onnx CALIB_RAW_NHWC.npy MEAN STD OUT_DIR [per-channel|per-tensor]

MODEL.pt2 is the same PyTorch reference mnv2deploy exports (torch.export.save'd by compare_routes.py), CALIB the
same embedded calibration images; so only the route differs. Prints one JSON line with what it wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def executorch_int8(model_pt2: str, calib_npy: str, out: str) -> dict:
    """ExecuTorch's documented XNNPACK int8 flow: PT2E with XNNPACKQuantizer (symmetric, per-channel), lowered
    with the XnnpackPartitioner."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)
    from executorch.exir import to_edge_transform_and_lower
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    calib = np.load(calib_npy).astype(np.float32)
    sample = (torch.from_numpy(calib[:1]),)
    model = torch.export.load(model_pt2).module()
    graph = torch.export.export(model, sample).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(len(calib)):
            prepared(torch.from_numpy(calib[i:i + 1]))
    converted = convert_pt2e(prepared)
    program = to_edge_transform_and_lower(torch.export.export(converted, sample),
                                          partitioner=[XnnpackPartitioner()]).to_executorch()
    tmp = out + ".partial"
    with open(tmp, "wb") as fh:
        program.write_to_file(fh)
    os.replace(tmp, out)
    return {"pte": out}


def onnx2tf_int8(onnx_path: str, calib_raw: str, mean: str, std: str, out_dir: str, quant_type: str) -> dict:
    """onnx2tf's own full-integer flow (TF converter calibration on our images, mean/std as the model expects).

    onnx2tf downloads a sample calibration file unless one is in the working directory; we pass -cind with our
    own images and run it inside out_dir, so it never reaches for the internet."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    import onnx

    raw = np.load(calib_raw)
    idx = (np.arange(128) * raw.shape[1] / 128).astype(int)  # nearest-neighbour 128x128, the size it expects
    np.save(Path(out_dir) / "calibration_image_sample_data_20x128x128x3_float32.npy",
            np.ascontiguousarray(raw[:20][:, idx][:, :, idx], dtype=np.float32))
    name = onnx.load(onnx_path, load_external_data=False).graph.input[0].name
    cmd = [sys.executable, "-m", "onnx2tf", "-i", str(Path(onnx_path).resolve()), "-o", str(Path(out_dir).resolve()),
           "-oiqt", "-qt", quant_type, "-cind", name, str(Path(calib_raw).resolve()), mean, std, "-n"]
    done = subprocess.run(cmd, cwd=out_dir, capture_output=True, text=True)
    (Path(out_dir) / "onnx2tf.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"onnx2tf failed ({done.returncode}); see {out_dir}/onnx2tf.log")
    found = {p.name: str(p) for p in Path(out_dir).glob("*.tflite")}
    return {"tflite": found, "command": " ".join(cmd)}


def main() -> None:
    route, args = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    if route == "executorch":
        result = executorch_int8(*args)
    elif route == "onnx2tf":
        result = onnx2tf_int8(*args[:5], args[5] if len(args) > 5 else "per-channel")
    else:
        raise SystemExit(f"unknown route {route}")
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("torch", "executorch", "torchao", "onnx2tf", "tensorflow", "onnx", "onnxruntime"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    print(json.dumps({**result, "seconds": time.perf_counter() - started, "versions": versions}))


if __name__ == "__main__":
    main()

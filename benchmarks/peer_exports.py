"""The peer export routes, run in the peers venv (benchmarks/requirements-peers.txt), never in the main one.

    python peer_exports.py onnx2tf MODEL.onnx CALIB_RAW_NHWC.npy MEAN STD OUT_DIR [per-channel|per-tensor]

The ONNX model is mnv2deploy's own export and the calibration images the embedded ones, so only the route differs
(ExecuTorch is no longer a peer: it is mnv2deploy's executorch-int8 target). Prints one JSON line with what it
wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


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
    if route == "onnx2tf":
        result = onnx2tf_int8(*args[:5], args[5] if len(args) > 5 else "per-channel")
    else:
        raise SystemExit(f"unknown route {route}")
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("torch", "onnx2tf", "tensorflow", "onnx", "onnxruntime"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    print(json.dumps({**result, "seconds": time.perf_counter() - started, "versions": versions}))


if __name__ == "__main__":
    main()

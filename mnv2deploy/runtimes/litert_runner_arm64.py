"""Runs a .tflite with the aarch64 LiteRT wheel from the emulation environment's aarch64 Python (standalone: it runs
under qemu). Usage: litert_runner_arm64.py MODEL IN.npy OUT.npy THREADS; one invoke per sample of IN."""

import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter
model, inp, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
it = Interpreter(model_path=model, num_threads=threads if threads > 0 else None)
it.allocate_tensors()
i, o = it.get_input_details()[0], it.get_output_details()[0]
x = np.load(inp)
ys = []
for k in range(x.shape[0]):
    it.set_tensor(i["index"], x[k:k + 1].astype(i["dtype"]))
    it.invoke()
    ys.append(it.get_tensor(o["index"]).copy())
np.save(out, np.concatenate(ys, 0))

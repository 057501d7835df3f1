"""Runs a .pte with ExecuTorch's aarch64 runtime from an aarch64 Python (numpy + ctypes over the shim that
`mnv2deploy setup arm64` builds; see mnv2deploy/emulation.py). Standalone: it imports nothing of mnv2deploy, because
it runs under qemu (parity --arch arm64) and is pushed to the emulated Android device as ExecuTorch's runner.

Two uses, flags spelled as ExecuTorch's executor_runner spells them:
  python3 pte_runner_arm64.py --model_path=m.pte --num_executions=N --cpu_threads=T
      the emulated tier's stand-in for executor_runner: inputs all ones, and the lines executor_runner logs
      ("Model loaded in X ms.", "Iteration i of N: X ms", "Model executed successfully N time(s) in X ms.")
  python3 pte_runner_arm64.py --model_path=m.pte --cpu_threads=T --batch_inputs=x.npy --batch_outputs=y.npy
      parity: one execute per sample of x (already in the model's layout and dtype), outputs stacked into y.
The shim is --shim=PATH or $MNV2DEPLOY_PTE_SHIM. Errors: one line on stderr, exit 1.
"""

import ctypes
import os
import sys
import time

import numpy as np

# ExecuTorch ScalarType codes <-> numpy
DTYPES = {0: np.uint8, 1: np.int8, 3: np.int32, 4: np.int64, 6: np.float32}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}
T0 = time.monotonic()


def log(message):
    """ExecuTorch's posix log line format, so the same parser reads the stand-in and the real runner."""
    t = time.monotonic() - T0
    print(f"I {int(t // 3600):02d}:{int(t // 60) % 60:02d}:{t % 60:09.6f} executorch:pte_runner_arm64.py:0] "
          f"{message}", flush=True)


def fail(message):
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


class Program:
    def __init__(self, shim, path, threads):
        self.lib = lib = ctypes.CDLL(shim)
        p = ctypes.c_void_p
        lib.mnv2_pte_load.restype = p
        lib.mnv2_pte_load.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.mnv2_pte_input.argtypes = [p, p, p, p]
        lib.mnv2_pte_run.argtypes = [p, p, p, ctypes.c_int, ctypes.c_int, p, ctypes.c_int64, p, p, p,
                                     ctypes.c_char_p, ctypes.c_int]
        lib.mnv2_pte_free.argtypes = [p]
        self.err = ctypes.create_string_buffer(512)
        self.handle = lib.mnv2_pte_load(path.encode(), threads, self.err, 512)
        if not self.handle:
            fail(f"ExecuTorch cannot load {os.path.basename(path)}: {self.err.value.decode(errors='replace')}")
        sizes, ndim, code = (ctypes.c_int64 * 8)(), ctypes.c_int(), ctypes.c_int()
        if lib.mnv2_pte_input(self.handle, sizes, ctypes.byref(ndim), ctypes.byref(code)) or code.value not in DTYPES:
            fail(f"{os.path.basename(path)}: the forward method's input is not a tensor this runner feeds")
        self.input_shape, self.input_dtype = tuple(sizes[:ndim.value]), DTYPES[code.value]
        self.out = np.empty(1 << 20, np.uint8)  # 1 MB: far above any classifier's logits

    def run(self, x):
        x = np.ascontiguousarray(x)
        if x.dtype not in CODES:
            fail(f"input dtype {x.dtype} not supported")
        shape = (ctypes.c_int64 * x.ndim)(*x.shape)
        sizes, ndim, code = (ctypes.c_int64 * 8)(), ctypes.c_int(), ctypes.c_int()
        rc = self.lib.mnv2_pte_run(self.handle, x.ctypes.data, shape, x.ndim, CODES[x.dtype], self.out.ctypes.data,
                                   self.out.nbytes, sizes, ctypes.byref(ndim), ctypes.byref(code), self.err, 512)
        if rc != 0:
            fail(self.err.value.decode(errors="replace"))
        if code.value not in DTYPES:
            fail(f"output of ExecuTorch scalar type {code.value} not supported")
        dtype = np.dtype(DTYPES[code.value])
        shape = tuple(sizes[:ndim.value])
        return self.out[:int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape).copy()


def flags(argv):
    out = {"model_path": "model.pte", "num_executions": "1", "cpu_threads": "-1", "shim": None,
           "batch_inputs": None, "batch_outputs": None}
    for a in argv:
        if not a.startswith("--") or "=" not in a:
            fail(f"Extra commandline args: {a}")
        k, v = a[2:].split("=", 1)
        out[k] = v  # others (e.g. --print_output) are accepted and ignored
    return out


def main(argv):
    f = flags(argv)
    shim = f["shim"] or os.environ.get("MNV2DEPLOY_PTE_SHIM")
    if not shim or not os.path.isfile(shim):
        fail("the ExecuTorch shim is not set up (run `mnv2deploy setup arm64`)")
    try:
        threads, runs = int(f["cpu_threads"]), int(f["num_executions"])
    except ValueError:
        fail("--cpu_threads and --num_executions take integers")
    start = time.perf_counter()
    program = Program(shim, f["model_path"], threads)
    log(f"Model loaded in {(time.perf_counter() - start) * 1e3:f} ms.")
    if f["batch_inputs"]:
        x = np.load(f["batch_inputs"])
        ys = [program.run(x[k:k + 1]) for k in range(x.shape[0])]
        np.save(f["batch_outputs"], np.concatenate(ys, 0))
        return
    x = np.ones(program.input_shape, program.input_dtype)
    total = 0.0
    for i in range(runs):
        t = time.perf_counter()
        program.run(x)
        ms = (time.perf_counter() - t) * 1e3
        total += ms
        log(f"Iteration {i + 1} of {runs}: {ms:f} ms")
    log(f"Model executed successfully {runs} time(s) in {total:f} ms.")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Stand-in for LiteRT's benchmark_model, for the emulated tier: real aarch64 LiteRT kernels, same flags, same output.

Runs on an aarch64 Python with the aarch64 ai-edge-litert wheel (under qemu-aarch64 in CI, or on a phone with
Termux). Prints exactly the lines benchmark_model prints (``INFO: `` prefix), times in microseconds. Memory is
read from /proc/self/status (VmRSS) like the tool does. Usage matches the tool:
  python3 benchmark_model.py --graph=m.tflite --num_threads=1 --warmup_runs=1 --num_runs=5 \
      --report_peak_memory_footprint=true [--use_xnnpack=false] [--print_preinvoke_state=true] \
      [--xnnpack_runtime_flags=32]

--print_preinvoke_state prints the tool's arena summary (PrintInterpreterState's "kTfLiteArenaRw Info" lines:
the span of the addresses of the tensors LiteRT placed in its arena, after allocation, before any invoke);
--xnnpack_runtime_flags=32 (XNN_FLAG_TRANSIENT_INDIRECTION_BUFFER) is passed to XNNPACK as the delegate flag of
the same meaning through LiteRT's CompiledModel, the only Python API that takes XNNPACK flags. One line the
real tool does not print, marked as the stand-in's: the bytes glibc's malloc holds (mallinfo2), which under
qemu, unlike the resident set, do not include the emulator's own code cache.
"""

import ctypes
import sys
import threading
import time

QS8_QU8 = 0x3  # XNNPACK delegate flags that must stay set when flags are given (int8 ops)


def _flags(argv):
    # the tool's own defaults (1 s / 0.5 s minimum time, 150 s maximum): run counts differ from the asked ones
    # unless the caller sets them, as mnv2deploy's Android bench does
    flags = {"graph": None, "num_threads": "-1", "warmup_runs": "1", "num_runs": "50", "min_secs": "1.0",
             "max_secs": "150", "warmup_min_secs": "0.5", "use_xnnpack": "true",
             "report_peak_memory_footprint": "false", "memory_footprint_check_interval_ms": "50",
             "print_preinvoke_state": "false", "xnnpack_runtime_flags": "0"}
    for a in argv:
        if not a.startswith("--") or "=" not in a:
            print(f"ERROR: Unconsumed cmdline flags: {a}")
            sys.exit(1)
        k, v = a[2:].split("=", 1)
        flags[k] = v  # unknown flags are accepted and ignored, as the tool does for most of its options
    if not flags["graph"]:
        print("ERROR: Please specify the name of your TF Lite input file with --graph")
        sys.exit(1)
    return flags


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _heap_bytes():
    """glibc's bytes in use (small blocks + mmapped ones), or None off glibc."""
    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                   "fsmblks", "uordblks", "fordblks", "keepcost")]
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = Info
    except (OSError, AttributeError):
        return None
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


def _print_arena(it):
    """What PrintInterpreterState prints for kTfLiteArenaRw: non-constant tensors that have data, after
    allocation (with XNNPACK only the delegate's inputs and outputs are left in LiteRT's arena)."""
    import numpy as np

    ops = it._get_ops_details()
    produced = {o for op in ops for o in op["outputs"] if o >= 0}
    read = {i for op in ops for i in op["inputs"] if i >= 0}
    inputs = {d["index"] for d in it.get_input_details()}
    placed = []
    for d in it.get_tensor_details():
        i = d["index"]
        if i in read and i not in produced and i not in inputs:
            continue  # a constant: kTfLiteMmapRo, in the model's buffer
        try:
            view = it.tensor(i)()
        except ValueError:
            continue
        if view.nbytes:
            placed.append((view.__array_interface__["data"][0], int(view.nbytes), i))
    print("kTfLiteArenaRw Info: ", end="")
    if not placed:
        print("not holding any allocation.")
        return
    start, end = min(a for a, _, _ in placed), max(a + n for a, n, _ in placed)
    size, index = max((n, i) for _, n, i in placed)
    print(f"\nTensor {index} has the max size {size} bytes ({size / 2 ** 20:.3f} MB).")
    print(f"This memory arena is estimated as[0x{end:x}, 0x{start:x}), taking {end - start} bytes "
          f"({(end - start) / 2 ** 20:.3f} MB).", flush=True)


def _stat_line(us):
    n = len(us)
    avg = sum(us) / n
    std = (sum((u - avg) ** 2 for u in us) / n) ** 0.5
    return (f"count={n} first={int(us[0])} curr={int(us[-1])} min={int(min(us))} max={int(max(us))} "
            f"avg={avg:.6g} std={int(std)}")


def _log(msg):
    print(f"INFO: {msg}", flush=True)


def _runs(invoke, count, min_secs, max_secs):
    out, start = [], time.perf_counter()
    while ((len(out) < count or time.perf_counter() - start < min_secs)
           and time.perf_counter() - start <= max_secs):
        t = time.perf_counter()
        invoke()
        out.append((time.perf_counter() - t) * 1e6)
    return out


def main(argv):
    f = _flags(argv)
    start_rss = _rss_mb()
    peak = [start_rss]
    stop = threading.Event()
    if f["report_peak_memory_footprint"] == "true":
        interval = int(f["memory_footprint_check_interval_ms"]) / 1000.0

        def poll():
            while not stop.wait(interval):
                peak[0] = max(peak[0], _rss_mb())
        threading.Thread(target=poll, daemon=True).start()
    _log(f"Graph: [{f['graph']}]")
    _log(f"#threads used for CPU inference: [{f['num_threads']}]")
    xnnpack = f["use_xnnpack"] == "true"
    runtime_flags = int(f["xnnpack_runtime_flags"], 0) if xnnpack else 0
    _log(f"Use xnnpack: [{int(xnnpack)}]")
    if runtime_flags:
        _log(f"Extra flags for XNNPACK runtime: [{runtime_flags}]")
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    threads = int(f["num_threads"])
    environment = None
    if runtime_flags:
        from ai_edge_litert.compiled_model import CompiledModel, _create_default_environment
        from ai_edge_litert.options import CpuOptions, Options

        environment = _create_default_environment()
    _log(f"Loaded model {f['graph']}")
    start_heap = _heap_bytes()
    t0 = time.perf_counter()
    if runtime_flags:  # the Interpreter API takes no XNNPACK flags; CompiledModel's CPU options do
        options = Options(cpu_options=CpuOptions(num_threads=max(threads, 1), xnnpack_flags=QS8_QU8 | runtime_flags))
        model = CompiledModel.from_file(f["graph"], environment=environment, options=options)
        buffers = model.create_input_buffers(0), model.create_output_buffers(0)

        def invoke():
            model.run_by_index(0, *buffers)
    else:
        kwargs = {} if xnnpack else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
        it = Interpreter(model_path=f["graph"], num_threads=threads if threads > 0 else None, **kwargs)
        it.allocate_tensors()
        invoke = it.invoke
    init_ms = (time.perf_counter() - t0) * 1000
    init_rss, init_heap = _rss_mb(), _heap_bytes()
    _log(f"Initialized session in {init_ms:.3f}ms.")
    if f["print_preinvoke_state"] == "true":
        _log("")
        _log("====Printing out TfLite interpreter pre-invoke state begins====")
        if runtime_flags:
            print("kTfLiteArenaRw Info: not available through CompiledModel (the stand-in cannot see it)")
        else:
            _print_arena(it)
        _log("====Printing out TfLite interpreter pre-invoke state ends====")
    rng = np.random.default_rng(0)
    for d in [] if runtime_flags else it.get_input_details():  # random input, as the tool does
        shape, dtype = d["shape"], d["dtype"]
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            x = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        else:
            x = rng.standard_normal(shape).astype(dtype)
        it.set_tensor(d["index"], x)
    _log(f"Running benchmark for at least {f['warmup_runs']} iterations and at least {f['warmup_min_secs']} "
         f"seconds but terminate if exceeding {f['max_secs']} seconds.")
    warm = _runs(invoke, max(1, int(f["warmup_runs"])), float(f["warmup_min_secs"]), float(f["max_secs"]))
    _log(_stat_line(warm))
    _log("")
    _log(f"Running benchmark for at least {f['num_runs']} iterations and at least {f['min_secs']} seconds but "
         f"terminate if exceeding {f['max_secs']} seconds.")
    timed = _runs(invoke, max(1, int(f["num_runs"])), float(f["min_secs"]), float(f["max_secs"]))
    _log(_stat_line(timed))
    _log("")
    _log(f"Inference timings in us: Init: {int(init_ms * 1000)}, First inference: {int(warm[0])}, "
         f"Warmup (avg): {sum(warm) / len(warm):.6g}, Inference (avg): {sum(timed) / len(timed):.6g}")
    stop.set()
    end_rss, end_heap = _rss_mb(), _heap_bytes()
    peak[0] = max(peak[0], end_rss)
    _log("Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the "
         "actual memory footprint of the model at runtime. Take the information at your discretion.")
    _log(f"Memory footprint delta from the start of the tool (MB): init={init_rss - start_rss:.6g} "
         f"overall={end_rss - start_rss:.6g}")
    if f["report_peak_memory_footprint"] == "true":
        _log(f"Overall peak memory footprint (MB) via periodic monitoring: {peak[0]:.6g}")
    if start_heap is not None:
        _log(f"Stand-in only: heap bytes in use (glibc mallinfo2) since the model was loaded: "
             f"init={init_heap - start_heap} overall={end_heap - start_heap}")
    _log("Memory status at the end of exeution:")
    _log(f"- VmRSS              : {int(end_rss)} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

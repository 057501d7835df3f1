"""Stand-in for LiteRT's benchmark_model, for the emulated tier: real aarch64 LiteRT kernels, same flags, same output.

Runs on an aarch64 Python with the aarch64 ai-edge-litert wheel (under qemu-aarch64 in CI, or on a phone with
Termux). Prints exactly the lines benchmark_model prints (``INFO: `` prefix), times in microseconds. Memory is
read from /proc/self/status (VmRSS) like the tool does. Usage matches the tool:
  python3 benchmark_model.py --graph=m.tflite --num_threads=1 --warmup_runs=1 --num_runs=5 \
      --report_peak_memory_footprint=true
"""

import sys
import threading
import time


def _flags(argv):
    flags = {"graph": None, "num_threads": "-1", "warmup_runs": "1", "num_runs": "50", "min_secs": "0",
             "max_secs": "150", "warmup_min_secs": "0", "use_xnnpack": "true",
             "report_peak_memory_footprint": "false", "memory_footprint_check_interval_ms": "50"}
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


def _stat_line(us):
    n = len(us)
    avg = sum(us) / n
    std = (sum((u - avg) ** 2 for u in us) / n) ** 0.5
    return (f"count={n} first={int(us[0])} curr={int(us[-1])} min={int(min(us))} max={int(max(us))} "
            f"avg={avg:.6g} std={int(std)}")


def _log(msg):
    print(f"INFO: {msg}", flush=True)


def _runs(invoke, count, min_secs):
    out, start = [], time.perf_counter()
    while len(out) < count or time.perf_counter() - start < min_secs:
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
    _log(f"Use xnnpack: [{int(f['use_xnnpack'] == 'true')}]")
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    _log(f"Loaded model {f['graph']}")
    t0 = time.perf_counter()
    threads = int(f["num_threads"])
    kwargs = {} if f["use_xnnpack"] == "true" else {
        "experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    it = Interpreter(model_path=f["graph"], num_threads=threads if threads > 0 else None, **kwargs)
    it.allocate_tensors()
    init_ms = (time.perf_counter() - t0) * 1000
    init_rss = _rss_mb()
    _log(f"Initialized session in {init_ms:.3f}ms.")
    rng = np.random.default_rng(0)
    for d in it.get_input_details():  # random input, as the tool does
        shape, dtype = d["shape"], d["dtype"]
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            x = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        else:
            x = rng.standard_normal(shape).astype(dtype)
        it.set_tensor(d["index"], x)
    _log(f"Running benchmark for at least {f['warmup_runs']} iterations and at least {f['warmup_min_secs']} "
         f"seconds but terminate if exceeding {f['max_secs']} seconds.")
    warm = _runs(it.invoke, max(1, int(f["warmup_runs"])), float(f["warmup_min_secs"]))
    _log(_stat_line(warm))
    _log("")
    _log(f"Running benchmark for at least {f['num_runs']} iterations and at least {f['min_secs']} seconds but "
         f"terminate if exceeding {f['max_secs']} seconds.")
    timed = _runs(it.invoke, max(1, int(f["num_runs"])), float(f["min_secs"]))
    _log(_stat_line(timed))
    _log("")
    _log(f"Inference timings in us: Init: {int(init_ms * 1000)}, First inference: {int(warm[0])}, "
         f"Warmup (avg): {sum(warm) / len(warm):.6g}, Inference (avg): {sum(timed) / len(timed):.6g}")
    stop.set()
    end_rss = _rss_mb()
    peak[0] = max(peak[0], end_rss)
    _log("Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the "
         "actual memory footprint of the model at runtime. Take the information at your discretion.")
    _log(f"Memory footprint delta from the start of the tool (MB): init={init_rss - start_rss:.6g} "
         f"overall={end_rss - start_rss:.6g}")
    if f["report_peak_memory_footprint"] == "true":
        _log(f"Overall peak memory footprint (MB) via periodic monitoring: {peak[0]:.6g}")
    _log("Memory status at the end of exeution:")
    _log(f"- VmRSS              : {int(end_rss)} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

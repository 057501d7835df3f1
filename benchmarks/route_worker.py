"""One benchmark worker process per (route, threads), driven by compare_routes.py over stdin/stdout JSON lines.

Runs in the main venv (LiteRT, onnxruntime, ExecuTorch, PyTorch eager). Each timed run is two inferences:
``call``, the model alone on input already in its own dtype and layout (what LiteRT's benchmark_model times:
set_tensor + invoke + get_tensor), and ``e2e``, float32 NCHW in to float32 logits out through the very code the
mnv2deploy runtimes use for the edges (LiteRT: runtimes/litert.set_input quantizes straight into the
interpreter's input tensor; ORT: runtimes/edges), which is what ``mnv2deploy bench`` times. A camera route
(``options.camera``) takes the image's bytes instead, as an app with a camera frame would
(runtimes/edges.from_camera_bytes).

Protocol: first line {"kind", "path", "threads", "cpus", "input", "in_spec", "out_spec", "options", "check"}
-> {"ok": ...}
(with "check", an .npy of images: their top-1 classes come back too);
then {"runs": N} -> {"call_ns": [...], "e2e_ns": [...]}; {"quit": true} ends it.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np


def _edges(in_spec: dict | None, out_spec: dict | None):
    """-> (ispec, ospec, prepare, finish): the conversions of runtimes/edges.py, from TensorSpec dicts."""
    if in_spec is None:
        return None, None, (lambda x: x), (lambda y: y)
    from mnv2deploy.manifest import TensorSpec
    from mnv2deploy.runtimes.edges import from_model_output, to_model_input

    ispec, ospec = TensorSpec.from_dict(in_spec), TensorSpec.from_dict(out_spec)
    return ispec, ospec, (lambda x: to_model_input(x, ispec).copy()), (lambda y: from_model_output(y, ospec))


def load(kind: str, path: str, threads: int, in_spec: dict | None, out_spec: dict | None,
         options: dict | None = None):
    """-> (prepare, call, e2e, facts): ``call(prepare(x))`` is the model call on native input, ``e2e(x)`` float32
    NCHW to float32 logits. ``options`` (ort): ``session_config`` entries as the manifest's
    ``onnxruntime_session_config`` gives them, ``graph_optimization_level`` (basic|extended|all)."""
    options = options or {}
    ispec, _, prepare, finish = _edges(in_spec, out_spec)
    if kind == "litert" and options.get("api") == "compiled":
        return _compiled_model(path, threads, options, prepare, finish)
    if kind == "litert":
        from importlib.metadata import version

        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=path, num_threads=threads)
        interp.allocate_tensors()
        i_idx, o_idx = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]

        def call(x):
            interp.set_tensor(i_idx, x)
            interp.invoke()
            return interp.get_tensor(o_idx)

        if ispec is None:
            e2e = call
        elif options.get("camera"):  # a camera frame's bytes in: all an app does is flip their top bits
            from mnv2deploy.runtimes.edges import from_camera_bytes, to_pixels

            def e2e(frame):
                view = interp.tensor(i_idx)()
                from_camera_bytes(frame, ispec, out=view)
                del view  # invoke() refuses to run while a view into the arena is alive
                interp.invoke()
                return finish(interp.get_tensor(o_idx))

            # what e2e takes, made from the float images once, outside the timing: the bytes they came from
            e2e.feed = lambda x: np.ascontiguousarray(to_pixels(x, ispec.pixels).transpose(0, 2, 3, 1)).astype(np.uint8)
        else:
            from mnv2deploy.runtimes.litert import set_input

            def e2e(x):
                set_input(interp, i_idx, x, ispec)
                interp.invoke()
                return finish(interp.get_tensor(o_idx))

        return prepare, call, e2e, {"runtime": f"ai-edge-litert {version('ai-edge-litert')}", "delegate": "xnnpack"}
    if kind == "ort":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.log_severity_level = 3
        for key, value in (options.get("session_config") or {}).items():
            so.add_session_config_entry(key, str(value))
        level = options.get("graph_optimization_level")
        if level:
            so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, f"ORT_ENABLE_{level.upper()}")
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name

        def call(x):
            return sess.run(None, {name: x})[0]

        return prepare, call, (lambda x: finish(call(prepare(x)))), \
            {"runtime": f"onnxruntime {ort.__version__}", "delegate": "CPUExecutionProvider", **options}
    if kind == "torch":
        import torch

        from mnv2deploy.manifest import read_manifest
        from mnv2deploy.runtimes.torch_eager import reference_from_manifest

        torch.set_num_threads(threads)
        model = reference_from_manifest(read_manifest(path, verify=False)).model.eval()

        def call(x):
            with torch.inference_mode():
                return model(x)

        return torch.from_numpy, call, (lambda x: call(torch.from_numpy(x)).numpy()), \
            {"runtime": f"torch {torch.__version__}", "delegate": "eager"}
    if kind == "executorch":
        import torch
        from executorch.extension.pybindings import portable_lib as pl
        from importlib.metadata import version

        pl._unsafe_reset_threadpool(threads)  # XNNPACK runs on ExecuTorch's threadpool
        module = pl._load_for_executorch(path)

        def call(x):
            return module.forward((x,))[0]

        return torch.from_numpy, call, (lambda x: call(torch.from_numpy(x)).numpy()), \
            {"runtime": f"executorch {version('executorch')}", "delegate": "XnnpackBackend",
             "threadpool": pl._threadpool_get_thread_count()}
    raise SystemExit(f"unknown kind {kind}")


def _compiled_model(path: str, threads: int, options: dict, prepare, finish):
    """LiteRT's CompiledModel API, the one whose CpuOptions reach XNNPACK's flags and YNNPACK (an experiment:
    the Interpreter API mnv2deploy uses has neither)."""
    from importlib.metadata import version

    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    from ai_edge_litert.options import CpuOptions, Options

    cpu = CpuOptions(num_threads=threads, enable_ynnpack=bool(options.get("ynnpack")),
                     xnnpack_flags=options.get("xnnpack_flags"))
    model = CompiledModel.from_file(path, options=Options(hardware_accelerators=HardwareAccelerator.CPU,
                                                          cpu_options=cpu))
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    detail = outputs[0].get_tensor_details()
    out_shape, out_dtype = tuple(detail["shape"]), np.dtype(detail["dtype"])

    def call(x):
        inputs[0].write(x)
        model.run_by_index(0, inputs, outputs)
        return outputs[0].read(int(np.prod(out_shape)), out_dtype).reshape(out_shape)

    return prepare, call, (lambda x: finish(call(prepare(x)))), \
        {"runtime": f"ai-edge-litert {version('ai-edge-litert')} CompiledModel", "delegate": "xnnpack", **options}


def main() -> None:
    cfg = json.loads(sys.stdin.readline())
    if cfg.get("cpus"):
        os.sched_setaffinity(0, cfg["cpus"])
    x = np.ascontiguousarray(np.load(cfg["input"]), dtype=np.float32)
    prepare, call, e2e, facts = load(cfg["kind"], cfg["path"], cfg["threads"], cfg.get("in_spec"),
                                     cfg.get("out_spec"), cfg.get("options"))
    feed = getattr(e2e, "feed", lambda v: v)  # float NCHW images -> what e2e takes (a camera route: bytes)
    t = time.perf_counter_ns()
    logits = np.asarray(e2e(feed(x)))
    first = time.perf_counter_ns() - t
    facts.update({"first_ns": first, "top1": int(np.argmax(logits)), "pid": os.getpid(),
                  "cpus": sorted(os.sched_getaffinity(0))})
    if cfg.get("check"):  # top-1 on more images, for an agreement check against PyTorch fp32
        images = np.load(cfg["check"])
        facts["check_top1"] = [int(np.argmax(np.asarray(e2e(feed(images[i:i + 1]))))) for i in range(len(images))]
    print(json.dumps({"ok": facts}), flush=True)
    native, x = prepare(x), feed(x)
    perf = time.perf_counter_ns
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            break
        call_ns, e2e_ns = [], []
        for _ in range(int(cmd["runs"])):
            t0 = perf()
            call(native)
            t1 = perf()
            e2e(x)
            t2 = perf()
            call_ns.append(t1 - t0)
            e2e_ns.append(t2 - t1)
        print(json.dumps({"call_ns": call_ns, "e2e_ns": e2e_ns}), flush=True)


if __name__ == "__main__":
    main()

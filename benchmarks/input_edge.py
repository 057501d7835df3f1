"""The int8 input edge of tflite-int8 at 1.0@224, side by side in one process on one interpreter: the model call
alone, end to end with the previous numpy edge, end to end with the current one (runtimes/litert.set_input:
quantized in place straight into the interpreter's input tensor), the float input copied once with and without a
model call after it (how much of the end-to-end gap is memory traffic rather than arithmetic), and what an app
feeding camera frames pays before the model call: through the float edge, or with tflite-int8's camera input
(``--option input-layout=nhwc --option input-dtype=uint8``: bytes in, top bit flipped, normalization inside), timed
on an interpreter of its own in the same process and rounds.

    .venv/bin/python benchmarks/input_edge.py [--threads 1 2] [--reps 8] [--runs 50]

Blocks of runs alternate between the variants in a new random order each repetition, pinned like
compare_routes (1 thread: the last usable CPU; 2 threads: both). Writes this host class's key of
docs/input_edge.json and its block in docs/benchmarks.md (one per class).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from compare_routes import artifact_root, cpus_for, export_mnv2deploy, log, machine_facts, write_host_docs  # noqa: E402


def previous_to_model_input(x: np.ndarray, spec: Any) -> np.ndarray:
    """runtimes/edges.to_model_input as it was before this benchmark (four temporaries per call)."""
    lo, hi = {"int8": (-128, 127), "uint8": (0, 255)}[spec.dtype]
    return np.clip(np.round(x / spec.scale) + spec.zero_point, lo, hi).astype(spec.dtype)


def camera_frame_to_float(frame: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """uint8 HWC (a camera frame already at the model's size) -> float32 NCHW normalized, as data.preprocess
    does after resizing: what an app must compute to call today's float-in runtimes."""
    x = frame.astype(np.float32) * np.float32(1 / 255)
    x -= mean
    x /= std
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None]


def camera_variants(interp: Any, ispec: Any, ospec: Any, frame: np.ndarray) -> dict[str, Callable[[], Any]]:
    """tflite-int8 with the camera input: its model call on input already int8, and a camera frame (uint8 NHWC)
    to float logits, the bytes flipped straight into the interpreter's input tensor."""
    from mnv2deploy.runtimes.edges import from_camera_bytes, from_model_output

    i_idx = interp.get_input_details()[0]["index"]
    o_idx = interp.get_output_details()[0]["index"]
    frame = frame[None]
    native = from_camera_bytes(frame, ispec)

    def call():
        interp.set_tensor(i_idx, native)
        interp.invoke()
        return interp.get_tensor(o_idx)

    def frame_e2e():
        view = interp.tensor(i_idx)()
        from_camera_bytes(frame, ispec, out=view)
        del view  # invoke() refuses to run while a view into the arena is alive
        interp.invoke()
        return from_model_output(interp.get_tensor(o_idx), ospec)

    return {"camera-input int8 model: model call": call, "camera-input int8 model: frame end to end": frame_e2e}


def variants(interp: Any, ispec: Any, ospec: Any, contract: Any, x: np.ndarray,
             frame: np.ndarray) -> dict[str, Callable[[], Any]]:
    from mnv2deploy.runtimes.edges import from_model_output, to_model_input
    from mnv2deploy.runtimes.litert import set_input

    mean = np.asarray(contract.mean, np.float32)
    std = np.asarray(contract.std, np.float32)
    i_idx = interp.get_input_details()[0]["index"]
    o_idx = interp.get_output_details()[0]["index"]
    native = to_model_input(x, ispec).copy()

    def call():
        interp.set_tensor(i_idx, native)
        interp.invoke()
        return interp.get_tensor(o_idx)

    def e2e_previous():
        interp.set_tensor(i_idx, previous_to_model_input(x, ispec))
        interp.invoke()
        return from_model_output(interp.get_tensor(o_idx), ospec)

    def e2e_now():
        set_input(interp, i_idx, x, ispec)
        interp.invoke()
        return from_model_output(interp.get_tensor(o_idx), ospec)

    def camera_today():  # frame -> float NCHW -> int8 -> model
        set_input(interp, i_idx, camera_frame_to_float(frame, mean, std), ispec)
        interp.invoke()
        return from_model_output(interp.get_tensor(o_idx), ospec)

    def edge_previous():
        return previous_to_model_input(x, ispec)

    def edge_now():
        return to_model_input(x, ispec, out=native)

    def camera_preprocess():
        return to_model_input(camera_frame_to_float(frame, mean, std), ispec, out=native)

    scratch = np.empty_like(x)

    def traffic_alone():  # the float input read and a float buffer written: memory traffic, no arithmetic
        np.copyto(scratch, x)

    def traffic_then_call():  # what that traffic costs the model call after it (caches), beside the copy itself
        np.copyto(scratch, x)
        return call()

    def camera_copy():  # what an 8-bit camera-input model needs before its call: the frame copied in
        view = interp.tensor(i_idx)()
        np.copyto(view.reshape(-1), frame.reshape(-1).view(np.int8))
        del view

    assert np.array_equal(previous_to_model_input(x, ispec), to_model_input(x, ispec)), "edges disagree"
    return {"model call": call, "end to end, previous edge": e2e_previous, "end to end, in-place edge": e2e_now,
            "camera frame end to end today": camera_today, "edge alone, previous": edge_previous,
            "edge alone, in place": edge_now, "camera preprocessing + edge alone": camera_preprocess,
            "8-bit camera input: frame copy alone": camera_copy, "float input copied once alone": traffic_alone,
            "float input copied once + model call": traffic_then_call}


def measure(fns: dict[str, Callable[[], Any]], reps: int, runs: int, warmup: int, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for n in names:
        for _ in range(warmup):
            fns[n]()
    perf = time.perf_counter_ns
    for _ in range(reps):
        for i in rng.permutation(len(names)):
            f, out = fns[names[i]], times[names[i]]
            for _ in range(runs):
                t = perf()
                f()
                out.append((perf() - t) / 1e6)
    return times


def measure_threads(t: int, artifact: str, ispec: Any, ospec: Any, contract: Any, x: np.ndarray, frame: np.ndarray,
                    reps: int, runs: int, warmup: int, camera: tuple[str, Any, Any] | None = None) -> list[dict[str, Any]]:
    """Every variant at ``t`` threads, pinned like compare_routes: the table's rows. ``camera``: (artifact, input
    spec, output spec) of the camera-input export, on an interpreter of its own at the same thread count."""
    import os

    from ai_edge_litert.interpreter import Interpreter

    os.sched_setaffinity(0, cpus_for(t))
    interp = Interpreter(model_path=artifact, num_threads=t)
    interp.allocate_tensors()
    fns = variants(interp, ispec, ospec, contract, x, frame)
    if camera is not None:
        cam = Interpreter(model_path=camera[0], num_threads=t)
        cam.allocate_tensors()
        fns.update(camera_variants(cam, camera[1], camera[2], frame))
    log(f"{t} thread(s): {reps} interleaved repetitions of {runs} runs")
    times = measure(fns, reps, runs, warmup, seed=t)
    call = float(np.median(times["model call"]))
    return [{"what": name, "threads": t, "p50_ms": float(np.median(ts)), "x_model_call": float(np.median(ts)) / call}
            for name, ts in times.items()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--reps", type=int, default=8)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--cache", type=Path, default=None)
    p.add_argument("--artifact", type=Path, default=None,
                   help="a tflite-int8 file of the default model at 224 (default: compare_routes' cached export)")
    p.add_argument("--no-camera", action="store_true", help="leave out tflite-int8's camera-input export")
    p.add_argument("--md", type=Path, default=REPO / "docs" / "benchmarks.md")
    p.add_argument("--json", type=Path, default=REPO / "docs" / "input_edge.json")
    p.add_argument("--label", default="")
    args = p.parse_args(argv)
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    from mnv2deploy.bench.host import cpu_busy_seconds
    from mnv2deploy.data import load_embedded
    from mnv2deploy.manifest import read_manifest
    from mnv2deploy.targets.tflite import tflite_tensor_specs
    from mnv2deploy.weights import cache_dir, load_reference, resolve_weights

    spec = resolve_weights("default", resolution=224)
    artifact = args.artifact
    if artifact is None:
        ref = load_reference(spec)
        cache = (args.cache or cache_dir() / "compare_routes").resolve()
        artifact = export_mnv2deploy("tflite-int8", ref, 224, artifact_root(cache, spec, ref, 224) / "tflite-int8")
    (ispec,), (ospec,) = tflite_tensor_specs(artifact)  # what the manifest records, read from the file
    camera = None
    if not args.no_camera:
        ref = load_reference(spec)
        cache = (args.cache or cache_dir() / "compare_routes").resolve()
        cam_art = export_mnv2deploy("tflite-int8", ref, 224, artifact_root(cache, spec, ref, 224) / "tflite-int8-camera",
                                    input_layout="nhwc", input_dtype="uint8")
        manifest = read_manifest(cam_art)
        camera = (str(cam_art), manifest.inputs[0], manifest.outputs[0])
    x = load_embedded("eval", spec.contract.at_resolution(224), 1).images
    frame = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    machine = machine_facts()
    rows = []
    busy0, t0 = cpu_busy_seconds(), time.monotonic()
    own0 = sum(os.times()[:4])  # this process and its finished children (the measuring ones)
    for t in args.threads:
        # each thread count in a fresh process: a second interpreter in one process got no more speed from 2 threads
        # (model call 3.99 ms after a 1-thread interpreter, 1.94 ms in a process of its own)
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            rows += pool.submit(measure_threads, t, str(artifact), ispec, ospec, spec.contract.at_resolution(224), x,
                                frame, args.reps, args.runs, args.warmup, camera).result()
    busy1, wall = cpu_busy_seconds(), time.monotonic() - t0
    other = (max(0.0, (busy1[0] - busy0[0] - (sum(os.times()[:4]) - own0)) / wall) if busy0 and busy1 else None)
    doc = {"machine": machine, "artifact": str(artifact), "camera_artifact": camera and camera[0], "rows": rows, "other_busy_cpus": other,
           "settings": {"reps": args.reps, "runs": args.runs, "warmup": args.warmup}, "label": args.label}
    m = machine
    L = [f"Measured {m['date_utc']} with `python benchmarks/input_edge.py{' ' + ' '.join(argv or sys.argv[1:]) if (argv or sys.argv[1:]) else ''}`.",
         "",
         f"Machine: {m['cpu']}, SIMD {', '.join(m.get('simd', []))}; load average at start "
         f"{m['load_average_at_start']}; other processes used "
         + (f"{other:.2f} CPUs on average while it ran." if other is not None else "an unknown share of the CPUs.")
         + (f" **{args.label}**" if args.label else ""), "",
         "mnv2deploy tflite-int8, 1.0@224, batch 1; p50 of "
         f"{args.reps} x {args.runs} runs per row; ratios to the model call at the same thread count.", "",
         "| what | threads | p50 (ms) | x model call |", "|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['what']} | {r['threads']} | {r['p50_ms']:.3f} | {r['x_model_call']:.3f} |")
    text = "\n".join(L) + "\n"
    print(text)
    write_host_docs(args.md, args.json, doc, text, "input_edge")
    return 0


if __name__ == "__main__":
    sys.exit(main())

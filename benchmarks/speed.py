"""Wall time of what a user waits for, idle and beside a CPU hog (issue 17): `mnv2deploy export --target tflite-int8`
of the embedded default, `mnv2deploy run` (the main job as `make demo` runs it), and with --make-test the whole
`make test`. Each command runs in a fresh process from this tree, exactly as typed; "hog" is one extra process
spinning on one core for the whole measurement (a busy CI neighbour). The load average before and after, the CPU,
its SIMD flags and the thread cap are recorded beside every number; medians over --repeats.

    .venv/bin/python benchmarks/speed.py [--repeats 3] [--make-test] [--no-hog] [--out DIR] [--no-doc]
    .venv/bin/python benchmarks/speed.py --smoke --out /tmp/speed     # seconds: proves the script, measures nothing

Targets (issue 17, idle 2-core machine): export <= 20 s, run <= 180 s, make test <= 20 min; with the hog no more
than 2x those. Writes DIR/speed.json and, unless --no-doc or --smoke, this host class's block of the speed section of
docs/benchmarks.md (one block per class: machines are never mixed in one table).
Measure on an otherwise quiet machine: the point is the ratio to the targets, and other work inflates both columns.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare_routes import write_host_docs  # noqa: E402  (one definition of the host classes and their blocks)


DOC = ROOT / "docs" / "benchmarks.md"
JSON = ROOT / "docs" / "speed.json"  # one result per host class, beside DOC's blocks
TARGET_SECONDS = {"export": 20.0, "run": 180.0, "make test": 1200.0}
HOG_LIMIT = 2.0  # with one core busy elsewhere: at most this many times the idle target

# name -> argv after `python -m mnv2deploy` ({out} is a fresh folder per repeat); smoke: a tiny random model
COMMANDS = {
    "export": ["export", "--target", "tflite-int8", "--out", "{out}", "--json"],
    "run": ["run", "--out", "{out}", "--json"],
}
SMOKE = {
    "export": ["export", "--target", "tflite-int8", "--weights", "random", "--width", "0.35", "--num-classes", "10",
               "--resolution", "32", "--calib-samples", "4", "--out", "{out}", "--json"],
    "run": ["run", "--out", "{out}", "--target", "onnx", "--samples", "8", "--runs", "2", "--warmup", "0",
            "--split", "1", "--json"],
}


def _spin() -> None:
    while True:
        pass


class Hog:
    """One process keeping one core busy (a CPU-bound neighbour), started and stopped around a measurement."""

    def __enter__(self) -> "Hog":
        self.proc = mp.get_context("spawn").Process(target=_spin, daemon=True)
        self.proc.start()
        time.sleep(1.0)  # let it reach the scheduler's steady state
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.join(5)


def timed(argv: list[str], cwd: Path, timeout: float) -> dict:
    """Wall seconds of one command in a fresh process, with the load average around it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {last}")
    return {"seconds": round(seconds, 2), "load_before": before, "load_after": os.getloadavg()}


def measure(name: str, argv: list[str], repeats: int, hog: bool, timeout: float) -> dict:
    runs = []
    with tempfile.TemporaryDirectory(prefix=f"speed-{name.replace(' ', '-')}-") as tmp:
        for i in range(repeats):
            cmd = [a.replace("{out}", str(Path(tmp) / f"r{i}")) for a in argv]
            if hog:
                with Hog():
                    runs.append(timed(cmd, ROOT, timeout))
            else:
                runs.append(timed(cmd, ROOT, timeout))
    median = statistics.median(r["seconds"] for r in runs)
    return {"command": " ".join(argv).replace(sys.executable, "python"), "median_seconds": median, "runs": runs}


def verdicts(results: dict) -> dict:
    out = {}
    for name, by in results.items():
        limit = TARGET_SECONDS[name]
        row = {"target_seconds": limit, "idle_ok": by["idle"]["median_seconds"] <= limit if "idle" in by else None}
        if "hog" in by:
            row["hog_ok"] = by["hog"]["median_seconds"] <= HOG_LIMIT * limit
            if "idle" in by:
                row["hog_over_idle"] = round(by["hog"]["median_seconds"] / by["idle"]["median_seconds"], 2)
        out[name] = row
    return out


def render(report: dict) -> str:
    h = report["host"]
    lines = [
        ("SMOKE RUN (a tiny random model, one repeat): proves the script, measures nothing. " if report["smoke"] else "")
        + f"Measured {report['date']} by `benchmarks/speed.py` (commit {report['commit']}): {h['cpu']}, "
        f"{h['logical_cpus']} logical CPUs, flags {', '.join(h['simd']) or '-'}; torch and math libraries capped at "
        f"{h['thread_cap']} thread(s) (mnv2deploy/threads.py); medians of {report['repeats']} repeat(s) of export "
        f"(one of the others); load average "
        f"{report['load_start'][0]:.2f} at the start. Hog: one extra process spinning on one core throughout.",
        "",
        "| command | target (idle) | idle s | with hog s | hog / idle | idle within target | hog within 2x target |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, by in report["results"].items():
        v = report["verdicts"][name]
        cell = lambda k: f"{by[k]['median_seconds']:.1f}" if k in by else "-"  # noqa: E731
        yes = lambda b: "-" if b is None else ("yes" if b else "**no**")  # noqa: E731
        lines.append(f"| `{by.get('idle', by.get('hog'))['command'].replace('{out}', 'OUT')}` | <= {v['target_seconds']:.0f} | "
                     f"{cell('idle')} | {cell('hog')} | {v.get('hog_over_idle', '-')} | {yes(v['idle_ok'])} | "
                     f"{yes(v.get('hog_ok'))} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="repeats of export (run and make test: 1)")
    ap.add_argument("--make-test", action="store_true", help="also time `make test` (about 20 minutes each)")
    ap.add_argument("--no-hog", action="store_true", help="idle only")
    ap.add_argument("--smoke", action="store_true", help="tiny random model, one repeat: proves the script works")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "speed")
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()

    from mnv2deploy.bench.host import cpu_facts, cpu_model
    from mnv2deploy.threads import cap

    commands = {n: [sys.executable, "-m", "mnv2deploy", *a] for n, a in (SMOKE if args.smoke else COMMANDS).items()}
    repeats = {"export": 1 if args.smoke else args.repeats, "run": 1, "make test": 1}
    if args.make_test and not args.smoke:
        commands["make test"] = ["make", "test"]
    conditions = ["idle"] + ([] if args.no_hog else ["hog"])
    load_start = os.getloadavg()
    results: dict = {}
    for name, argv in commands.items():
        for condition in conditions:
            print(f"speed: {name} ({condition})", file=sys.stderr, flush=True)
            timeout = 3 * TARGET_SECONDS[name] * HOG_LIMIT + 600
            results.setdefault(name, {})[condition] = measure(name, argv, repeats[name], condition == "hog", timeout)
    facts = cpu_facts()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "?"
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit, "smoke": args.smoke,
              "repeats": 1 if args.smoke else args.repeats, "load_start": load_start, "load_end": os.getloadavg(),
              "host": {"cpu": cpu_model(), "logical_cpus": facts.get("logical_cpus"), "simd": facts.get("simd", []),
                       "thread_cap": cap()},
              "results": results, "verdicts": verdicts(results)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(report, indent=1) + "\n")
    section = render(report)
    print(section)
    if not args.no_doc and not args.smoke:
        write_host_docs(DOC, JSON, report, section + "\n\n", "speed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

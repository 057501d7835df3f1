#!/bin/sh
# Run benchmark_model on a phone by hand, the way `mnv2deploy bench --device` does (for checking its numbers).
# The AWS Device Farm test spec (`mnv2deploy bench --farm aws`) runs this same script on the farm's host.
# usage: android_bench/run_benchmark.sh MODEL.tflite [THREADS] [RUNS] [SERIAL]
# Optional environment:
#   RUNNER       benchmark_model for android_aarch64 (default: the mnv2deploy cache path)
#   INTERPRETER  e.g. python3 when RUNNER is the aarch64 Python stand-in (android_bench/benchmark_model.py)
#   WARMUP (5)   warm-up runs;  REPEATS (1) benchmark_model invocations, each after COOLDOWN (0) idle seconds
#   OUT_DIR      also keep the raw output, pinning and the device state before/after there
set -eu
MODEL=$1; THREADS=${2:-1}; RUNS=${3:-50}; SERIAL=${4:-}
RUNNER=${RUNNER:-${MNV2DEPLOY_CACHE:-$HOME/.cache/mnv2deploy}/android/android_aarch64_benchmark_model}
WARMUP=${WARMUP:-5}; REPEATS=${REPEATS:-1}; COOLDOWN=${COOLDOWN:-0}; OUT_DIR=${OUT_DIR:-}; INTERPRETER=${INTERPRETER:-}
ADB="adb${SERIAL:+ -s $SERIAL}"
DIR=/data/local/tmp/mnv2deploy-manual
[ -f "$RUNNER" ] || { echo "no runner at $RUNNER (see android_bench/README.md)" >&2; exit 4; }
KEEP=${OUT_DIR:-$(mktemp -d)}
mkdir -p "$KEEP"
trap '$ADB shell rm -rf $DIR >/dev/null 2>&1 || true; [ -n "$OUT_DIR" ] || rm -rf "$KEEP"' EXIT
$ADB shell mkdir -p $DIR
$ADB push "$MODEL" $DIR/model.tflite >/dev/null
$ADB push "$RUNNER" $DIR/benchmark_model >/dev/null
$ADB shell chmod 755 $DIR/benchmark_model
MASK=$(sh "$(dirname "$0")/big_cores_mask.sh" ${SERIAL:+"$SERIAL"})
# Non-rooted phones may refuse a new affinity: then run unpinned and say so.
if [ -n "$MASK" ] && [ "$MASK" != 0 ] && $ADB shell "taskset $MASK true && echo PINNING_OK" | grep -q PINNING_OK; then
  PIN="taskset $MASK "; echo "pinning: taskset $MASK" > "$KEEP/pinning.txt"
else
  PIN=""; echo "pinning: none (taskset refused or no cpufreq information)" > "$KEEP/pinning.txt"
fi
cat "$KEEP/pinning.txt" >&2
# thermal zones (milli-degC), current CPU frequencies where readable (cpuinfo_cur_freq is often root-only), battery
STATE='for z in /sys/class/thermal/thermal_zone*; do [ -r $z/temp ] && echo "thermal ${z##*/} $(cat $z/type 2>/dev/null || echo -) $(cat $z/temp)"; done; for d in /sys/devices/system/cpu/cpu[0-9]*; do for f in cpuinfo_cur_freq scaling_cur_freq scaling_governor; do [ -r $d/cpufreq/$f ] && echo "cpufreq ${d##*/} $f $(cat $d/cpufreq/$f)"; done; done; dumpsys battery 2>/dev/null | grep -E "level|temperature"; true'
$ADB shell "$STATE" > "$KEEP/state_before.txt" || true
cat "$KEEP/state_before.txt" >&2
i=1
while [ "$i" -le "$REPEATS" ]; do
  if [ "$COOLDOWN" -gt 0 ]; then echo "cooling down ${COOLDOWN}s before run $i" >&2; sleep "$COOLDOWN"; fi
  # into a file, not a pipe, so a failing run still fails this script (sh has no pipefail)
  $ADB shell "${PIN}${INTERPRETER:+$INTERPRETER }$DIR/benchmark_model --graph=$DIR/model.tflite \
      --num_threads=$THREADS --warmup_runs=$WARMUP --num_runs=$RUNS --warmup_min_secs=0 --min_secs=0 \
      --max_secs=86400 --report_peak_memory_footprint=true" \
      > "$KEEP/benchmark_output.$i.txt" 2>&1 || { cat "$KEEP/benchmark_output.$i.txt"; exit 1; }
  cat "$KEEP/benchmark_output.$i.txt"
  i=$((i + 1))
done
$ADB shell "$STATE" > "$KEEP/state_after.txt" || true
cat "$KEEP/state_after.txt" >&2

#!/bin/sh
# Run benchmark_model on a phone by hand, the way `mnv2deploy bench --device` does (for checking its numbers).
# usage: android_bench/run_benchmark.sh MODEL.tflite [THREADS] [RUNS] [SERIAL]
# Needs benchmark_model for android_aarch64 in $RUNNER (default: the mnv2deploy cache path).
set -eu
MODEL=$1; THREADS=${2:-1}; RUNS=${3:-50}; SERIAL=${4:-}
RUNNER=${RUNNER:-${MNV2DEPLOY_CACHE:-$HOME/.cache/mnv2deploy}/android/android_aarch64_benchmark_model}
ADB="adb${SERIAL:+ -s $SERIAL}"
DIR=/data/local/tmp/mnv2deploy-manual
[ -f "$RUNNER" ] || { echo "no runner at $RUNNER (see android_bench/README.md)" >&2; exit 4; }
trap '$ADB shell rm -rf $DIR >/dev/null 2>&1 || true' EXIT
$ADB shell mkdir -p $DIR
$ADB push "$MODEL" $DIR/model.tflite >/dev/null
$ADB push "$RUNNER" $DIR/benchmark_model >/dev/null
$ADB shell chmod 755 $DIR/benchmark_model
MASK=$(sh "$(dirname "$0")/big_cores_mask.sh" ${SERIAL:+"$SERIAL"})
echo "pinning to CPU mask $MASK" >&2
$ADB shell "cat /sys/class/thermal/thermal_zone*/temp 2>/dev/null | sort -n | tail -1; dumpsys battery | grep -E 'level|temperature'" >&2
$ADB shell "taskset $MASK $DIR/benchmark_model --graph=$DIR/model.tflite --num_threads=$THREADS \
    --warmup_runs=5 --num_runs=$RUNS --report_peak_memory_footprint=true"

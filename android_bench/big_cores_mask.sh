#!/bin/sh
# Print the taskset mask (hex) of the CPUs with the highest cpuinfo_max_freq on the device.
# usage: android_bench/big_cores_mask.sh [SERIAL]
set -eu
adb ${1:+-s "$1"} shell 'for d in /sys/devices/system/cpu/cpu[0-9]*; do f=$d/cpufreq/cpuinfo_max_freq; [ -r $f ] && echo ${d##*/} $(cat $f); done' |
  tr -d '\r' | awk '{n=substr($1,4)+0; f[n]=$2; if ($2>max) max=$2} END {m=0; for (n in f) if (f[n]==max) m+=2^n; printf "%x\n", m}'

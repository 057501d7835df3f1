#!/bin/sh
# `make test`: the suite as two pytest processes side by side, one per core of a 2-core machine. Every test
# process caps torch and the math libraries at one thread (mnv2deploy/threads.py), so a single pytest left one
# core idle: 27 min on an AVX2-only host. The side process takes the directories whose exports are few and
# cheap (fp32 and int8 at 32x32), the job's and the user-model tests' own runs and the parsers' fuzzing; the
# main one keeps the heavy shared session exports of tests/conftest.py (ExecuTorch, int8, CoreML) in one
# process, so none is made twice. Arguments go to both (e.g. -m "not fuzz"). Exit: the main run's code if it
# failed, else the side run's (5, no tests collected, only if neither half collected any).
set -u
PY=${PY:-.venv/bin/python}
SIDE="tests/reliability tests/farm tests/ios tests/data tests/weights tests/model tests/architecture tests/job
tests/memory tests/cli"

log=$(mktemp)
base=$(mktemp -d)  # its own temporary root: two pytest sessions must not clean up each other's folders
trap 'rm -rf "$log" "$base"' EXIT
# shellcheck disable=SC2086  # SIDE is a list of paths
"$PY" -m pytest -q -p no:cacheprovider --basetemp="$base/t" --durations=10 "$@" $SIDE >"$log" 2>&1 &
side=$!

ignore=""
for d in $SIDE; do ignore="$ignore --ignore=$d"; done
# shellcheck disable=SC2086
"$PY" -m pytest -q --durations=25 "$@" $ignore
main=$?

wait "$side"
side_rc=$?
echo
echo "--- the side process (${SIDE%% *} ...):"
cat "$log"
# 5 is pytest's "no tests collected": with a filter, one half may hold none of the selected tests
if [ "$main" -eq 5 ] && [ "$side_rc" -eq 5 ]; then exit 5; fi
[ "$main" -eq 5 ] && main=0
[ "$side_rc" -eq 5 ] && side_rc=0
[ "$main" -ne 0 ] && exit "$main"
exit "$side_rc"

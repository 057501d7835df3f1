"""Parse the log of ExecuTorch's ``executor_runner`` (examples/portable/executor_runner/executor_runner.cpp, the
same lines in v1.4 and v1.5): ``Model loaded in X ms.``, one ``Iteration i of N: X ms`` per execute, and
``Model executed successfully N time(s) in X ms.`` at the end (runners before v1.3 print only that last line). With the posix PAL each line carries the prefix
``I 00:00:00.123456 executorch:executor_runner.cpp:781] ``; logcat (android PAL) shows them as
``I ExecuTorch: ...``; the parser reads the message wherever it sits on the line.

The runner has no warm-up flag: the first ``warmup`` of the ``--num_executions`` iterations are the warm-up, the
rest are timed. It prints no memory figures."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_N = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
_LOADED = re.compile(rf"Model loaded in {_N} ms\.")
_ITERATION = re.compile(rf"Iteration (\d{{1,9}}) of (\d{{1,9}}): {_N} ms")
_DONE = re.compile(rf"Model executed successfully (\d{{1,9}}) time\(s\) in {_N} ms\.")


@dataclass(frozen=True)
class ExecutorRunnerOutput:
    load_ms: float | None
    iterations_ms: tuple[float, ...]  # in order, warm-up first
    planned: int | None  # N of "Iteration i of N"
    executions: int | None  # N and total of the closing "executed successfully N time(s) in X ms" line
    total_ms: float | None

    def split(self, warmup: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(warm-up, timed) iteration times."""
        return self.iterations_ms[:warmup], self.iterations_ms[warmup:]

    @property
    def per_iteration(self) -> bool:
        """False for runners before v1.3: only the total over all executions, warm-up included."""
        return bool(self.iterations_ms)

    def complete(self, warmup: int) -> bool:
        if self.executions is None:
            return False
        return len(self.iterations_ms) > warmup if self.per_iteration else self.executions > 0


def parse_executor_runner_output(text: str) -> ExecutorRunnerOutput:
    load_ms = planned = executions = total_ms = None
    times: list[float] = []
    for line in text.splitlines():
        if m := _ITERATION.search(line):
            ms = float(m.group(3))
            if int(m.group(1)) == len(times) + 1 and math.isfinite(ms) and ms >= 0:
                times.append(ms)  # a garbled or repeated line is skipped, never a crash
                planned = int(m.group(2))
        elif m := _LOADED.search(line):
            value = float(m.group(1))
            load_ms = value if math.isfinite(value) else None
        elif m := _DONE.search(line):
            total = float(m.group(2))
            if math.isfinite(total) and (not times or int(m.group(1)) == len(times)):
                executions, total_ms = int(m.group(1)), total
    return ExecutorRunnerOutput(load_ms, tuple(times), planned, executions, total_ms)

"""Independent pieces of long work (one target's export and parity check) run in parallel worker processes.

Why processes: the converters hold the GIL and, under the thread cap (threads.py), use one core each; on a 2-core
machine a sequential `run` left one core idle for its whole length. Timed work never runs here: benchmarks run
after the pool has finished, on a quiet machine.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Hashable, TypeVar

from .errors import Mnv2Error
from .threads import cap_torch, child_environment

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class WorkerCrashedError(Mnv2Error):
    """A worker process died without a result (exit code 1, as any failure the user cannot fix by input)."""


def run_all(tasks: dict[K, Callable[[], T]], workers: int, done: Callable[[K, T], None] = lambda _k, _v: None,
            ) -> dict[K, T]:
    """Call every task, ``workers`` at a time in spawned processes (1: here, in order; what tests that patch
    this process rely on); ``done(key, result)`` as each finishes. Tasks must be picklable (top-level functions,
    ``functools.partial``); the dict's order is the submission order (put the longest first)."""
    results: dict[K, T] = {}
    if workers <= 1 or len(tasks) <= 1:
        for key, task in tasks.items():
            results[key] = task()
            done(key, results[key])
        return results
    with child_environment():  # the math libraries read their caps at import in each worker (threads.py)
        pool = ProcessPoolExecutor(min(workers, len(tasks)), mp_context=mp.get_context("spawn"),
                                   initializer=cap_torch)
    with pool:
        futures = {pool.submit(task): key for key, task in tasks.items()}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                done(futures[future], results[futures[future]])
        except BrokenProcessPool:
            raise WorkerCrashedError("a converter worker process died (a native crash or the OOM killer)",
                                     "rerun with --workers 1 to see which step, or free memory") from None
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return results

"""Thread caps for torch and the native math libraries (OpenMP, MKL, OpenBLAS) in this process and every child.

Why: on a shared 2-core machine an uncapped pool per library oversubscribes the CPUs and spin-waits; docs/memory.md
recorded ~100x slowdowns of torch's many small grouped convs that way. The cap is ``MNV2DEPLOY_THREADS`` when set,
else half the usable CPUs (at least 1, at most 4); a value the user already put in OMP_NUM_THREADS & co. wins.
Runtime threads for parity and bench (``--threads``) are separate: they size LiteRT's and onnxruntime's own pools.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

ENV = "MNV2DEPLOY_THREADS"
WORKERS_ENV = "MNV2DEPLOY_WORKERS"
LIBRARY_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
               "NUMEXPR_NUM_THREADS")
MAX_DEFAULT = 4


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _positive_env(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) >= 1 else None


def cap() -> int:
    """Threads for torch and the math libraries: $MNV2DEPLOY_THREADS, else half the usable CPUs (1..4)."""
    return _positive_env(ENV) or max(1, min(MAX_DEFAULT, _usable_cpus() // 2))


def workers() -> int:
    """Parallel worker processes for independent long work (`run`'s exports): $MNV2DEPLOY_WORKERS, else as many as
    fit the usable CPUs at the cap's threads each (2 CPUs, cap 1: 2 workers)."""
    return _positive_env(WORKERS_ENV) or max(1, _usable_cpus() // cap())


def cap_environment() -> None:
    """Set the libraries' variables (unless already set) for this process's later imports and every child."""
    n = str(cap())
    for key in LIBRARY_ENV:
        os.environ.setdefault(key, n)


@contextlib.contextmanager
def child_environment(threads: int | None = None) -> Iterator[None]:
    """The variables a child is started with: ``threads`` exactly (a timed run), else the cap unless already set;
    this process's own environment is as it was afterwards."""
    saved = {k: os.environ.get(k) for k in LIBRARY_ENV}
    if threads is not None:
        os.environ.update({k: str(threads) for k in LIBRARY_ENV})
    else:
        cap_environment()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def cap_torch(threads: int | None = None, only_if_loaded: bool = False) -> None:
    """torch's intra-op pool to ``threads`` (default: the cap), its inter-op pool to 1 when still settable."""
    if only_if_loaded and "torch" not in sys.modules:
        return
    import torch

    torch.set_num_threads(threads or cap())
    with contextlib.suppress(RuntimeError):  # settable only before any inter-op work has started
        torch.set_num_interop_threads(1)

"""Run a function in a fresh spawned process, so a native crash (segfault on a corrupt model) or a hang
becomes a one-line error instead of taking the CLI down.

Generic on purpose: parity, memory probes and timed bench runs all go through ``call_in_child``.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import signal
import threading
import time
from multiprocessing.reduction import ForkingPickler
from typing import Any, Callable

from ..errors import BadArtifactError, Mnv2Error
from ..threads import cap_torch, child_environment


class ChildTimeoutError(BadArtifactError):
    """The child did not finish in time and was killed."""


def _child_main(work: Any, conn: Any) -> None:
    try:
        func, args, kwargs = pickle.loads(work.recv_bytes())
        work.close()
        cap_torch(only_if_loaded=True)  # the math libraries' pools were sized by the environment it started with
        result = func(*args, **kwargs)
    except Mnv2Error as e:  # typed errors cross unchanged (errors.py pickles the hint)
        conn.send(("error", e))
    except BaseException as e:  # report a bug in the child as a bug in the parent, not as a crash
        conn.send(("bug", f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"))
    else:
        conn.send(("ok", result))
    finally:
        conn.close()


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code} without a result"


def _exit_hint(code: int | None) -> str:
    if code == -signal.SIGKILL:  # nothing in the runtime sends SIGKILL: the OOM killer or a person did
        return ("SIGKILL usually means the machine ran out of memory (the kernel's OOM killer); "
                "use fewer --samples or a smaller --batch, or stop other work")
    if code is not None and code > 0:  # Python exited, no native crash: most often the child failed to start
        return ('a script that calls mnv2deploy needs an `if __name__ == "__main__":` guard (runtimes run in a '
                "spawned process that imports it again); if it has one, re-export the artifact")
    return "the artifact is probably corrupt or truncated; re-export it"


def _send_work(conn: Any, payload: bytes) -> None:
    try:
        conn.send_bytes(payload)
    except OSError:  # the child is gone; the caller sees EOF on the result pipe and says how it exited
        pass
    finally:
        conn.close()


def call_in_child(func: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
    """``func(*args, **kwargs)`` in a spawned child; ``func`` must be a top-level (picklable) function.

    A typed Mnv2Error raised in the child is re-raised here; a child killed by a signal or exiting without a
    result raises BadArtifactError naming the signal; after ``timeout`` seconds the child is killed and
    ChildTimeoutError is raised.
    """
    ctx = mp.get_context("spawn")
    payload = bytes(ForkingPickler.dumps((func, args, kwargs)))  # here, so what cannot be pickled fails here
    recv, send = ctx.Pipe(duplex=False)
    work_recv, work_send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(work_recv, send), daemon=True)
    with child_environment():  # OpenMP/MKL/OpenBLAS read their caps at import in the child (threads.py)
        proc.start()
    send.close()  # our copies: a dead child then shows up as EOF on recv, and as a broken pipe to the sender
    work_recv.close()
    # The work goes over a pipe of our own, from a thread, not as Process args: spawn writes those while holding
    # the pipe's read end itself, so a child that died starting (a script without a __main__ guard) hung the
    # parent on megabytes of images; this way the timeout below still applies and the death is reported.
    threading.Thread(target=_send_work, args=(work_send, payload), daemon=True).start()
    name = getattr(func, "__name__", "child")
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not recv.poll(None if deadline is None else max(0.0, deadline - time.monotonic())):
            proc.kill()
            proc.join(5)
            raise ChildTimeoutError(f"{name} did not finish within {timeout:g} s and was stopped",
                                    "the runtime hung or the work is larger than the timeout allows")
        try:
            kind, payload = recv.recv()
        except (EOFError, OSError):
            proc.join(10)
            raise BadArtifactError(f"the runtime process for {name} {_describe_exit(proc.exitcode)}",
                                   _exit_hint(proc.exitcode)) from None
    finally:
        recv.close()
        if proc.is_alive():
            proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    if kind == "error":
        raise payload
    if kind == "bug":
        raise RuntimeError(f"in child process ({name}): {payload}")
    return payload

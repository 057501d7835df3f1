"""The worker pool behind `run`'s parallel exports (workers.py) and how many workers it gets (threads.py)."""

from __future__ import annotations

import os
from functools import partial

import pytest

from mnv2deploy import threads
from mnv2deploy.workers import WorkerCrashedError, run_all


def square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def die(code: int) -> None:
    os._exit(code)  # a native crash as the pool sees it: the worker vanishes without a result


def test_tasks_run_in_other_processes_and_every_result_comes_back():
    finished = []
    out = run_all({k: partial(square_and_pid, k) for k in range(5)}, workers=2,
                  done=lambda key, value: finished.append(key))
    assert {k: v[0] for k, v in out.items()} == {k: k * k for k in range(5)}
    assert os.getpid() not in {v[1] for v in out.values()}
    assert sorted(finished) == list(range(5))


def test_one_worker_runs_here_in_order():
    finished = []
    out = run_all({k: partial(square_and_pid, k) for k in (3, 1, 2)}, workers=1,
                  done=lambda key, value: finished.append(key))
    assert finished == [3, 1, 2] and {v[1] for v in out.values()} == {os.getpid()}


def test_a_worker_that_dies_is_one_typed_error():
    with pytest.raises(WorkerCrashedError) as e:
        run_all({"a": partial(die, 3), "b": partial(square_and_pid, 2)}, workers=2)
    assert "--workers 1" in e.value.one_line()


def test_worker_count_follows_the_cpus_and_the_cap(monkeypatch):
    monkeypatch.setattr(threads, "_usable_cpus", lambda: 2)
    monkeypatch.delenv(threads.WORKERS_ENV, raising=False)
    monkeypatch.delenv(threads.ENV, raising=False)
    assert threads.cap() == 1 and threads.workers() == 2
    monkeypatch.setenv(threads.ENV, "2")
    assert threads.workers() == 1
    monkeypatch.setenv(threads.WORKERS_ENV, "3")
    assert threads.workers() == 3

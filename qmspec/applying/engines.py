"""Where partition work runs: in this process, in N local processes, or on Ray. qmspec schedules nothing itself:
each engine takes picklable jobs and gives their results back as they finish.

Ray runs each job as a task with retries, so a killed worker's job runs again elsewhere; local processes are
resubmitted the same way by the caller (a job is idempotent: insert-only writes, an embedding is a pure function).
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator

from ..errors import QmspecError

RETRIES = 3  # a job whose worker died is run again this many times


class InlineEngine:
    """One process: the default, and what a single worker means."""

    name = "this process"
    workers = 1
    shares_disk = True  # its workers see this machine's files (the apply's file records)

    def run(self, function: Callable, jobs: Iterable) -> Iterator:
        for job in jobs:
            yield function(job)

    def map(self, function: Callable, jobs: list) -> list:
        return [function(job) for job in jobs]

    def close(self) -> None:
        pass


def die_with(parent: int) -> None:
    """In a worker: end when the driver ends, however it ends (kill -9, an OOM kill, a cancelled CI job), instead of
    holding a model in memory, or a GPU, for minutes. On Linux the kernel sends SIGKILL when the parent dies
    (PR_SET_PDEATHSIG); elsewhere a thread watches for the parent to change."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="qmspec-die-with-driver", daemon=True).start()


class ProcessEngine:
    """N local worker processes (spawned: a fork would copy the client's threads and sockets), each ending with the
    driver (die_with)."""

    shares_disk = True

    def __init__(self, workers: int):
        self.workers = workers
        self.name = f"{workers} local processes"
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=die_with, initargs=(os.getpid(),))

    def run(self, function: Callable, jobs: Iterable) -> Iterator:
        """Results as jobs finish; a job whose process died is run again (the pool is rebuilt), RETRIES times."""
        pending = {self._pool.submit(function, job): (job, 0) for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job, tries = pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    if tries >= RETRIES:
                        raise QmspecError(f"a worker process died {tries + 1} times running the same partition; see its log") from None
                    self._pool = self._new_pool()
                    resubmitted = [(job, tries + 1)] + list(pending.values())
                    pending = {self._pool.submit(function, again): (again, count) for again, count in resubmitted}
                    break

    def map(self, function: Callable, jobs: list) -> list:
        results = {}
        indexed = list(enumerate(jobs))
        for index, result in self.run(_indexed(function), indexed):
            results[index] = result
        return [results[index] for index in range(len(jobs))]

    def close(self) -> None:
        """Stop the workers now, on any exit of the apply: an interrupted apply does not wait for their pages (what
        they wrote is journaled by the partition's checkpoint, or redone)."""
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)


class RayEngine:
    """Jobs as Ray tasks (retried by Ray when their worker dies) on the cluster at `address` (or RAY_ADDRESS), else a
    local one. Tasks rather than a Ray Data pipeline: a partition is already the unit of work, retry and journal."""

    shares_disk = False  # tasks may run on other machines: the apply's records must be in Qdrant (--state qdrant)

    def __init__(self, workers: int, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise QmspecError("--engine ray needs Ray: pip install 'qmspec[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS")
            ours = signal.getsignal(signal.SIGTERM)
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
            if callable(ours) and threading.current_thread() is threading.main_thread():
                # Ray's core worker installs its own SIGTERM handler, which exits 15 with a stack dump and leaves the
                # journal running: the command line's handler journals the interruption and exits 130
                signal.signal(signal.SIGTERM, ours)
        self.workers = workers
        self.name = f"Ray ({int(ray.cluster_resources().get('CPU', 0))} CPUs, {workers} tasks at a time)"
        self._remotes: dict = {}

    def run(self, function: Callable, jobs: Iterable) -> Iterator:
        remote = self._remote(function)
        queue, running = list(jobs), []
        while queue or running:
            while queue and len(running) < self.workers:
                running.append(remote.remote(queue.pop(0)))
            done, running = self.ray.wait(running, num_returns=1)
            yield self.ray.get(done[0])

    def map(self, function: Callable, jobs: list) -> list:
        remote = self._remote(function)
        return self.ray.get([remote.remote(job) for job in jobs])

    def _remote(self, function: Callable):
        """A task retried when its worker dies, on a GPU where the cluster has them (the embedding is the GPU's work)."""
        if function not in self._remotes:
            gpus = 1 if self.ray.cluster_resources().get("GPU", 0) >= 1 else 0
            self._remotes[function] = self.ray.remote(max_retries=RETRIES, num_gpus=gpus)(function)
        return self._remotes[function]

    def close(self) -> None:
        pass  # a cluster we joined outlives us; a local one ends with this process


def _indexed(function: Callable) -> Callable:
    return _Indexed(function)


class _Indexed:
    """(index, job) -> (index, function(job)): picklable, unlike a closure."""

    def __init__(self, function: Callable):
        self.function = function

    def __call__(self, item):
        index, job = item
        return index, self.function(job)


def engine_for(kind: str, workers: int, ray_address: str | None = None):
    if kind == "ray":
        return RayEngine(workers, ray_address)
    return ProcessEngine(workers) if workers > 1 else InlineEngine()

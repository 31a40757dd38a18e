"""A deadline for calls into worker processes that may never answer (Lava: a crashed or stuck process model
leaves the runtime waiting forever).

While :func:`watchdog` is active, a timer (``SIGALRM``, once a second, main thread only) checks two things: a worker
process (:attr:`Watch.workers`) that died, and the time since the last :meth:`Watch.alive` call. Either raises
:class:`Stalled` inside the blocked call (Python retries interrupted waits after running the handler, so the
exception surfaces even in a blocking receive); the caller then ends the workers and reports one clear error.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from contextlib import contextmanager
from dataclasses import dataclass, field

TIMEOUT_ENV = "SNN_DEPLOY_LAVA_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0
"""Seconds a Lava call may go without progress: one sample's T steps of the largest zoo model take far less."""
TICK_S = 1.0


class Stalled(Exception):
    """Workers stopped answering (``reason`` says how)."""


@dataclass
class Watch:
    timeout_s: float
    last: float = field(default_factory=time.monotonic)
    workers: list[multiprocessing.Process] = field(default_factory=list)
    """Processes that must stay alive while the block runs."""

    def alive(self) -> None:
        """Progress was made: the deadline restarts from now."""
        self.last = time.monotonic()


def timeout_from_env() -> float:
    """The deadline: ``$SNN_DEPLOY_LAVA_TIMEOUT`` seconds (a positive number), else :data:`DEFAULT_TIMEOUT_S`."""
    from snn_deploy.errors import UserError

    text = os.environ.get(TIMEOUT_ENV)
    if text is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise UserError(f"${TIMEOUT_ENV} is {text!r}; set it to a positive number of seconds or unset it")
    return value


def _failed_worker(workers: list[multiprocessing.Process]) -> str | None:
    for worker in workers:
        if worker.exitcode is not None:
            return f"worker process {worker.name} (pid {worker.pid}) ended with status {worker.exitcode}"
    return None


@contextmanager
def watchdog(timeout_s: float) -> Iterator[Watch]:
    """Raise :class:`Stalled` in the block when a worker ends or no progress is made for ``timeout_s``."""
    watch = Watch(timeout_s)
    if threading.current_thread() is not threading.main_thread():
        yield watch  # signals reach the main thread only: no deadline here
        return

    def tick(signum: int, frame: object) -> None:
        failed = _failed_worker(watch.workers)
        if failed:
            raise Stalled(failed)
        if time.monotonic() - watch.last > watch.timeout_s:
            raise Stalled(f"no answer for {watch.timeout_s:g} s")

    previous = signal.signal(signal.SIGALRM, tick)
    signal.setitimer(signal.ITIMER_REAL, TICK_S, TICK_S)
    try:
        yield watch
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def end_processes(processes: list[multiprocessing.Process]) -> None:
    """Kill ``processes`` (the workers of a run that stalled) with SIGKILL by process id (no lock of the stalled
    run is touched) and reap them."""
    for process in processes:
        if process.pid is not None and process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
    for process in processes:
        multiprocessing.Process.join(process, 5)  # Lava's SystemProcess.join takes no timeout


def within(seconds: float, cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` in a daemon thread and wait at most ``seconds``: cleanup after a stall must not hang."""
    worker = threading.Thread(target=cleanup, daemon=True)
    worker.start()
    worker.join(seconds)


STOP_TIMEOUT_S = 60.0
"""Seconds Lava's stop may take before its runtime is ended instead (a normal stop takes well under one)."""


def lava_infrastructure(process: Any) -> Any:
    """The message infrastructure of the Lava runtime ``process`` runs in: its actors (one OS process per Lava
    process and the runtime service) and its shared-memory manager. Lava offers no public handle on them."""
    return process.runtime._messaging_infrastructure


def end_runtime(process: Any) -> None:
    """Kill the workers of the Lava runtime ``process`` runs in (stopping a stalled one would wait for them
    forever), then release its shared memory through Lava's own manager so nothing is left in /dev/shm."""
    infrastructure = lava_infrastructure(process)
    end_processes(list(infrastructure.actors))
    within(10, infrastructure.smm.shutdown)


def stop_runtime(process: Any, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop the Lava runtime ``process`` runs in, as ``process.stop()`` does, within ``timeout_s``. Lava's stop waits
    without a deadline for every runtime service to acknowledge; one that never does (seen once in a test run, after
    every result had been received) would hang the caller for good. Past the deadline the runtime is ended
    (:func:`end_runtime`). Returns whether Lava stopped it; an error of Lava's stop is raised here."""
    errors: list[BaseException] = []

    def stop() -> None:
        try:
            process.stop()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=stop, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        end_runtime(process)
        return False
    if errors:
        raise errors[0]
    return True

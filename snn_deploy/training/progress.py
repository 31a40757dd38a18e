"""Progress of long runs: a rich progress bar on a terminal, one plain line per epoch otherwise, nothing on
processes other than the main one."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class Reporter:
    """Receives per-batch and per-epoch numbers; this base class stays silent (non-main processes)."""

    def start(self, label: str, epoch: int, epochs: int, batches: int) -> None:
        self._t0, self._samples, self._loss, self._correct = time.perf_counter(), 0, 0.0, 0

    def batch(self, samples: int, loss_sum: float, correct: int) -> None:
        self._samples += samples
        self._loss += loss_sum
        self._correct += correct

    def end(self, line: str) -> None:
        pass

    def close(self) -> None:
        pass

    def rate(self) -> float:
        return self._samples / max(time.perf_counter() - self._t0, 1e-9)

    def running(self) -> dict[str, Any]:
        n = max(self._samples, 1)
        return {"loss": self._loss / n, "acc": 100.0 * self._correct / n, "rate": self.rate()}


class PlainReporter(Reporter):
    """One line per epoch on stdout (logs, pipes, CI)."""

    def end(self, line: str) -> None:
        print(line, flush=True)


class RichReporter(Reporter):
    """A live bar per epoch with loss, accuracy and samples/s; finished epochs stay as one line each."""

    def __init__(self) -> None:
        self.console = Console()
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), console=self.console,
                                 transient=True)
        self.progress.start()
        self.task = None

    def start(self, label: str, epoch: int, epochs: int, batches: int) -> None:
        super().start(label, epoch, epochs, batches)
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(f"{label} {epoch}/{epochs}", total=batches, stats="")

    def batch(self, samples: int, loss_sum: float, correct: int) -> None:
        super().batch(samples, loss_sum, correct)
        r = self.running()
        self.progress.update(self.task, advance=1,
                             stats=f"loss {r['loss']:.4f}  acc {r['acc']:5.1f} %  {r['rate']:6.0f} samples/s")

    def end(self, line: str) -> None:
        self.progress.console.print(line)

    def close(self) -> None:
        self.progress.stop()


def reporter(main: bool) -> Reporter:
    """Rich on a terminal, plain lines when stdout is redirected, silent on non-main processes."""
    if not main:
        return Reporter()
    return RichReporter() if sys.stdout.isatty() else PlainReporter()

"""Stopping a Lava runtime with a deadline: Lava's own stop waits forever for a runtime service that never
acknowledges; :func:`snn_deploy.watchdog.stop_runtime` ends such a runtime instead of hanging its caller."""

from __future__ import annotations

import time

import numpy as np
import pytest

from snn_deploy.watchdog import lava_infrastructure, stop_runtime

lava = pytest.mark.lava


def _running_network(steps: int):
    """A RingBuffer into an Extractor, run for ``steps`` steps; (source, recorder)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.source import RingBuffer

    source = RingBuffer(data=np.arange(3 * steps, dtype=np.int32).reshape(3, steps))
    recorder = Extractor(shape=(3,), buffer_size=steps + 2)
    source.s_out.connect(recorder.in_port)
    source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(
        select_tag="fixed_pt", exception_proc_model_map={recorder: PyLoihiExtractorModel}))
    return source, recorder


@lava
def test_a_normal_stop_is_lavas_own():
    source, recorder = _running_network(3)
    frames = np.stack([recorder.receive() for _ in range(3)])
    assert stop_runtime(source, timeout_s=60) is True
    assert frames.shape == (3, 3)


@lava
def test_a_stop_that_never_returns_ends_the_runtime(monkeypatch):
    """A process model that never acknowledges the stop (its workers are forked, so the patch runs in them): the
    call returns after the deadline, not never, and every worker of the runtime is gone."""
    from lava.proc.io.extractor import PyLoihiExtractorModel

    monkeypatch.setattr(PyLoihiExtractorModel, "_stop", lambda self: time.sleep(3600))
    source, recorder = _running_network(2)
    [recorder.receive() for _ in range(2)]
    actors = list(lava_infrastructure(source).actors)
    start = time.monotonic()
    assert stop_runtime(source, timeout_s=3) is False
    assert time.monotonic() - start < 30
    assert actors and not any(actor.is_alive() for actor in actors)

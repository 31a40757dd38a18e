"""``snn-deploy doctor``: versions, Lava's fixed-point models, netx, and a Lava-vs-snn_deploy self-check."""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from snn_deploy.cli.options import emit_json, force_json_option, json_file, json_option, to_stdout
from snn_deploy.cli.handler import exit_on_user_error

DOCTOR_SCHEMA = 1
PACKAGES = ("torch", "numpy", "lava-nc", "lava-dl", "nir", "nirtorch", "onnx", "onnxruntime", "h5py", "scikit-learn")
MODULES = {
    "Lava fixed-point LIF model": "lava.proc.lif.models:PyLifModelBitAcc",
    "Lava fixed-point Dense model": "lava.proc.dense.models:PyDenseModelBitAcc",
    "Lava fixed-point Conv model": "lava.proc.conv.models:PyConvModelFixed",
    "lava-dl netx": "lava.lib.dl.netx.hdf5:Network",
    "NIR": "nir:NIRGraph",
    "ONNX Runtime": "onnxruntime:InferenceSession",
}


@dataclass
class Check:
    """One line of the report: what was checked, whether it passed, and the detail or the problem."""

    name: str
    ok: bool
    detail: str


def _version(package: str) -> Check:
    try:
        return Check(package, True, importlib.metadata.version(package))
    except importlib.metadata.PackageNotFoundError:
        return Check(package, False, "not installed (run scripts/run test or scripts/run demo to set up .venv)")


def _importable(label: str, target: str) -> Check:
    module, attr = target.split(":")
    try:
        getattr(importlib.import_module(module), attr)
    except Exception as exc:  # report any failure of the import chain, whatever it is
        return Check(label, False, f"cannot import {target}: {type(exc).__name__}: {exc}")
    return Check(label, True, "imports")


def lava_compat_check() -> Check:
    """Say how lava-nc's Python 3.11 import error was handled (see snn_deploy.lava_compat)."""
    from snn_deploy import lava_compat

    module = sys.modules.get("lava.magma.compiler.var_model")
    if sys.version_info < (3, 11):
        return Check("lava on this Python", True, "Python 3.10: lava-nc imports unmodified")
    if module is not None and isinstance(module.__loader__, lava_compat.PatchedSourceLoader):
        return Check("lava on this Python", True, "Python 3.11: var_model dataclass defaults rewritten at import")
    return Check("lava on this Python", False, "lava-nc was imported before snn_deploy installed its compatibility "
                                               "finder; import snn_deploy first")


def self_check(seed: int = 0, steps: int = 16) -> Check:
    """Run the same random Dense -> LIF -> Dense -> LIF network in Lava and in snn_deploy.fixedpoint."""
    import numpy as np

    from snn_deploy import lavaref
    from snn_deploy.fixedpoint.chain import random_chain, run_dense_lif_chain

    layers = random_chain([24, 16, 8], seed=seed)
    x = np.random.default_rng(seed).integers(0, 16, (steps, 24))
    start = time.perf_counter()
    try:
        lava_out = lavaref.run_dense_lif_chain(x, layers)
    except Exception as exc:
        return Check("self-check", False, f"Lava run failed: {type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - start
    ours = run_dense_lif_chain(x, layers)
    for i, (a, b) in enumerate(zip(lava_out, ours)):
        if not np.array_equal(a, b):
            t, n = np.argwhere(a != b)[0]
            return Check("self-check", False, f"layer {i} spikes differ from Lava first at step {t}, neuron {n}")
    spikes = sum(int(o.sum()) for o in ours)
    return Check("self-check", True, f"2-layer network, {steps} steps, {spikes} spikes: identical in Lava "
                                     f"({elapsed:.2f} s) and snn_deploy.fixedpoint")


def chip_check() -> Check:
    """Build the Lava network of a graph with every node kind and list its process classes: each must be one a
    Loihi 2 chip can load (sims/backends/lava_chip.py)."""
    import numpy as np

    from snn_deploy.sims.backends import lava_build, lava_chip
    graph = lava_chip.probe_graph()
    try:
        net = lava_build.build(graph, np.zeros((graph.T, 1, *graph.input.shape), dtype=np.int64))
    except Exception as exc:  # noqa: BLE001 - any failure to build is the finding
        return Check("Loihi 2 processes", False, f"building the probe network failed: {type(exc).__name__}: {exc}")
    types = lava_chip.process_types(net.all_processes())
    bad = lava_chip.non_chip_types(net.all_processes())
    if bad:
        return Check("Loihi 2 processes", False, f"not loadable by a Loihi 2 chip: {', '.join(bad)}")
    return Check("Loihi 2 processes", True, f"{len(net.all_processes())} processes, all with Loihi 2 "
                 f"implementations: {', '.join(types)}")


def run_checks() -> list[Check]:
    """Every check of the doctor, in report order. Importing Lava and running it take seconds: a terminal shows a
    progress bar (on stderr) while they run."""
    from snn_deploy.console import progress

    checks = [Check("python", sys.version_info[:2] in ((3, 10), (3, 11)),
                    f"{platform.python_version()} ({sys.executable})" + (
                        "" if sys.version_info[:2] in ((3, 10), (3, 11)) else ": lava-nc needs Python 3.10 or 3.11"))]
    checks += [_version(p) for p in PACKAGES]
    with progress("doctor: importing Lava, netx, NIR, ONNX Runtime; Lava self-check", len(MODULES) + 1) as advance:
        for label, target in MODULES.items():
            checks.append(_importable(label, target))
            advance(1)
        if all(c.ok for c in checks if c.name.startswith("Lava")):
            checks.append(lava_compat_check())
            checks.append(self_check())
            checks.append(chip_check())
        else:
            checks.append(Check("self-check", False, "skipped: Lava's fixed-point models do not import"))
        advance(1)
    return checks


@click.command()
@json_option("Write the report as JSON (schema_version, checks, ok)")
@force_json_option()
@exit_on_user_error
def doctor(json_path: Path | None, force: bool) -> None:
    """Check the environment: versions, Lava fixed-point models, netx, and a Lava self-check.

    Exits 0 only when everything is well; otherwise prints one line per problem and exits 1.
    """
    from snn_deploy.io import check_outputs

    check_outputs(json_file(json_path), force=force)
    checks = run_checks()
    ok = all(c.ok for c in checks)
    emit_json(json_path, {"schema_version": DOCTOR_SCHEMA, "ok": ok, "checks": [asdict(c) for c in checks]})
    if not to_stdout(json_path):
        from snn_deploy.console import table, table_console

        out = table("snn-deploy doctor", columns={"check": "name", "status": "text", "detail": "name"})
        for c in checks:
            out.add_row(c.name, "[green]ok[/green]" if c.ok else "[red]PROBLEM[/red]", c.detail)
        table_console().print(out)
        for c in checks:
            if not c.ok:
                click.echo(f"problem: {c.name}: {c.detail}", err=True)
    sys.exit(0 if ok else 1)

"""Meet the silicon: Intel's PilotNet LIF (lava-dl) against its golden traces, its Loihi 2 compiler's core table and
its measured Loihi 2 time and energy; fits the Loihi 2 profile's time and energy scales.

    python benchmarks/loihi2_pilotnet.py [--json out.json] [--reference DIR] [--no-traces]

Reads ``../shared/reference/pilotnet_lif/`` (relative to the repository root; ``--reference`` to override): the netx
file, ``image.npy`` (the frame lava-dl's test writes into the input layer's bias), the golden u / v / spike arrays,
and its README's compiler table and measured figures. Prints, side by side:

* golden-trace agreement of the simulator (every array lava-dl's Loihi 2 test asserts on, at every step);
* cores per layer: the mapper's Loihi 2 prediction and the compiler's allocation;
* time per step and dynamic / total energy per 16-step inference: predicted and measured, error %.

Calibration: the simulator counts PilotNet's activity on ``image.npy`` (bias image, reset interval 16, 16 steps per
inference); the cost model runs it at its priors (Loihi's per-operation figures, both scales 1) and one time scale
and one dynamic-energy scale are fitted, each the ratio of measured to predicted (static power is the measured
0.232078 W per chip). The script prints both scales next to their priors, the ``Calibration`` to paste into
``snn_deploy/graph/profiles.py`` (the package never refits), and the residuals of the constants the package holds now. One
network can only calibrate, not validate. The measured run used another frame of the same data set
(``PilotNetDataset`` frame 100, lava-dl's benchmark notebook) than ``image.npy``.

PilotNet SDNN (the sigma-delta network, second silicon check; ``--json`` key ``sdnn``): every golden array of
lava-dl's ``tests/lava/lib/dl/netx/gts/pilotnet_sdnn`` against the simulator, and the Loihi 2 compiler's per-layer
cores of the tutorial's network (``../shared/reference/pilotnet_sdnn/README.md``) against the mapper, unretuned.
The network files are lava-dl's (BSD-3-Clause, not in this repository): set ``SNN_DEPLOY_LAVA_DL`` to a lava-dl
checkout (or to a folder holding the gts files, plus the tutorial's network as ``tutorial_network.net``), or put
them in ``../shared/reference/pilotnet_sdnn/``; without them the SDNN part is skipped, saying where it looked.

SANA-FE (``sanafe``, GPL-3) is not compared here: docs/hardware.md says why (the mapped network does not fit its
shipped Loihi architecture file).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np

from snn_deploy.exporters.frontends.netx import read_netx
from snn_deploy.fixedpoint import loihi_v_register
from snn_deploy.graph import Activity, Graph
from snn_deploy.graph.profiles import LOIHI2, LOIHI2_UNCALIBRATED, Calibration, Figure, HardwareProfile
from snn_deploy.sims.hardware.cost import HardwareCost, hardware_cost
from snn_deploy.sims.runs.driver import run_dataset
from snn_deploy.sims.runs.inputs import array_input
from snn_deploy.sims.hardware.mapper import map_graph
from snn_deploy.sims.backends.simulator import simulate

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = next((p for p in (ROOT.parent / "shared", ROOT.parents[1] / "shared") if p.is_dir()),
                 ROOT.parent / "shared") / "reference" / "pilotnet_lif"
"""``../shared/reference/pilotnet_lif`` from the repository root (one level further up from a worktree)."""
STEPS_PER_INFERENCE = 16
TABLE_LAYERS = ("input", "conv-0", "conv-1", "conv-2", "conv-3", "conv-4", "fc-0", "fc-1", "fc-2", "fc-3")
"""The README table's rows (netx order) as read_netx names the layers."""


@dataclasses.dataclass(frozen=True)
class Measured:
    """Loihi 2 figures of lava-dl's PilotNet LIF benchmark notebook, as its saved output prints them."""

    time_per_step_us: float
    dynamic_energy_mj: float
    total_energy_mj: float
    static_power_w: float
    cores: dict[str, int]


def measured(reference: Path) -> Measured:
    """The README's measured table and compiler core table (data nobody on this project wrote)."""
    text = (reference / "README.md").read_text()

    def number(label: str) -> float:
        found = re.search(rf"\| {re.escape(label)} \| ([0-9.]+)", text)
        if not found:
            raise SystemExit(f"error: {reference / 'README.md'}: no '{label}' row in the measured table")
        return float(found.group(1))

    rows = re.findall(r"^\| (?:input|conv|dense)[^|]*\|(?:[^|]*\|){5} *(\d+) \|$", text, re.M)
    if len(rows) != len(TABLE_LAYERS):
        raise SystemExit(f"error: {reference / 'README.md'}: expected {len(TABLE_LAYERS)} compiler table rows, "
                         f"found {len(rows)}")
    energy = re.search(r"\| energy per inference \| ([0-9.]+) mJ total, ([0-9.]+) mJ dynamic", text)
    if not energy:
        raise SystemExit(f"error: {reference / 'README.md'}: no 'energy per inference' row in the measured table")
    return Measured(1e6 / number("throughput") / STEPS_PER_INFERENCE, float(energy.group(2)), float(energy.group(1)),
                    number("static power"), dict(zip(TABLE_LAYERS, map(int, rows))))


def pilotnet(reference: Path) -> Graph:
    return read_netx(reference / "network.net", steps=STEPS_PER_INFERENCE, reset_interval=STEPS_PER_INFERENCE)


def activity(graph: Graph, reference: Path) -> Activity:
    """The simulator's counts of one 16-step inference on image.npy (the bias image)."""
    x = array_input(graph, reference / "image.npy", steps=STEPS_PER_INFERENCE, layout="whc")
    return run_dataset(graph, x, None)


def cost(graph: Graph, act: Activity, profile: HardwareProfile) -> HardwareCost:
    return hardware_cost(graph, map_graph(graph, profile), act)


def figures(c: HardwareCost) -> dict[str, float]:
    """Time per step (us), dynamic and total energy per inference (mJ)."""
    return {"time_per_step": c.time_per_step_ns / 1e3, "dynamic_energy": c.dynamic_energy_pj / 1e9,
            "total_energy": c.energy_total_pj / 1e9}


def errors(predicted: dict[str, float], m: Measured) -> dict[str, float]:
    truth = {"time_per_step": m.time_per_step_us, "dynamic_energy": m.dynamic_energy_mj,
             "total_energy": m.total_energy_mj}
    return {k: 100 * (predicted[k] - truth[k]) / truth[k] for k in truth}


def fit(graph: Graph, act: Activity, m: Measured) -> tuple[float, float, dict[str, float]]:
    """(time scale, energy scale, errors at the priors): each scale = measured / predicted at scale 1."""
    prior = figures(cost(graph, act, LOIHI2_UNCALIBRATED))
    return m.time_per_step_us / prior["time_per_step"], m.dynamic_energy_mj / prior["dynamic_energy"], errors(prior, m)


def traces(reference: Path) -> dict[str, int]:
    """Golden-trace agreement: spikes of input, conv-0..4 and fc-0..2, u and v of conv-1..4 and fc-0..2 (the arrays
    in the snapshot), at every one of their 24 steps. Lava's layers run one step behind their source (a timed
    pipeline); the simulator's functional time base has no such delay, so a layer at depth d is compared at step
    t with the simulator's step t - d (steps t >= d). Past step 16 Intel's traces show the reset one step later
    (``reset_offset`` 1, as read_netx documents), and silicon's v register reads the refractory counter at spike
    steps (``fixedpoint.loihi_v_register``). Returns arrays compared, arrays exact, steps."""
    graph = read_netx(reference / "network.net", steps=STEPS_PER_INFERENCE, reset_interval=STEPS_PER_INFERENCE,
                      reset_offset=1)
    steps = int(np.load(reference / "input.npy", mmap_mode="r").shape[-1])
    x = array_input(graph, reference / "image.npy", steps=steps, layout="whc")
    names = [n for n in TABLE_LAYERS if n != "fc-3"]  # fc-3's 25-long arrays use another indexing
    result = simulate(graph, x, traces=set(names))
    depths = graph.depths()
    compared = exact = 0
    for name in names:
        got = {"": result.spikes[name], "-u": result.traces[name].u,
               "-v": loihi_v_register(result.traces[name].v, result.spikes[name], refractory=0)}
        d = depths[name] - depths["input"]
        for suffix, values in got.items():
            path = reference / f"{name}{suffix}.npy"
            if not path.is_file():
                continue  # conv-0-u / -v are not in the snapshot
            golden = np.load(path).astype(np.int64)
            ours = values[:, 0].numpy().astype(np.int64)  # [T, C, H, W]
            ours = ours.transpose(3, 2, 1, 0) if golden.ndim == 4 else ours.reshape(ours.shape[0], -1).T
            compared += 1
            exact += bool(np.array_equal(ours[..., :steps - d], golden[..., d:]))
    return {"layers_compared": compared, "layers_exact": exact, "steps": steps}


SDNN_ENV = "SNN_DEPLOY_LAVA_DL"
SDNN_GTS = Path("tests/lava/lib/dl/netx/gts/pilotnet_sdnn")
SDNN_TUTORIAL = Path("tutorials/lava/lib/dl/netx/pilotnet_sdnn/network.net")
SDNN_REFERENCE = REFERENCE.parent / "pilotnet_sdnn"
SDNN_STEPS = 20
SDNN_GOLDEN = (("network.net", "input", "act0.npy"), ("network.net", "conv-0", "sigma1.npy"),
               ("network.net", "conv-1", "sigma2.npy"), ("network.net", "fc-3", "output.npy"),
               ("square_network.net", "conv-0", "sigma1_square.npy"),
               ("square_network.net", "conv-1", "sigma2_square.npy"),
               ("square_network.net", "conv-2", "sigma3_square.npy"),
               ("square_network.net", "conv-3", "sigma4_square.npy"))
"""(network, layer, golden array): act0 is the input layer's payloads, sigmaN the sigma (accumulated input) of the
N-th conv layer, output the last layer's (a Sigma) output; the square network is the same with a 33 x 33 input."""
SDNN_LAYERS = ("conv-0", "conv-1", "conv-2", "conv-3", "conv-4", "fc-0", "fc-1", "fc-2", "fc-3")
"""The compiler table's rows (printed last layer first), in netx order; the input layer runs on the host."""
SDNN_STATIC_POWER_W = 0.281775
"""Measured static power of the Loihi 2 board running PilotNet SDNN (lava-dl's benchmark notebook; PilotNet
LIF's run on the same kind of board measured 0.232078 W)."""


def sdnn_files() -> tuple[Path | None, Path | None, str]:
    """(the gts folder, the tutorial's network.net, where they were looked for): from ``$SNN_DEPLOY_LAVA_DL`` (a
    lava-dl checkout, or a folder holding the files) or ``../shared/reference/pilotnet_sdnn``."""
    import os

    places = [Path(os.environ[SDNN_ENV]).expanduser()] if os.environ.get(SDNN_ENV) else []
    places.append(SDNN_REFERENCE)
    gts = tutorial = None
    for place in places:
        for folder, net in ((place / SDNN_GTS, place / SDNN_TUTORIAL), (place, place / "tutorial_network.net")):
            if gts is None and (folder / "network.net").is_file() and (folder / "act0.npy").is_file():
                gts = folder
            if tutorial is None and net.is_file():
                tutorial = net
    where = f"${SDNN_ENV} ({os.environ.get(SDNN_ENV) or 'unset'}) or {SDNN_REFERENCE}"
    return gts, tutorial, where


def _lava_layout(x) -> np.ndarray:
    """[T, 1, C, H, W] -> Lava's (W, H, C, T)."""
    return np.asarray(x)[:, 0].transpose(3, 2, 1, 0) if np.asarray(x).ndim == 5 else np.asarray(x)[:, 0].T


def sdnn_traces(gts: Path) -> dict:
    """Every golden array of lava-dl's PilotNet SDNN against the simulator on Lava's time axis (index j = Lava's
    time step j + 1, as lava-dl's probes record it; no lag): the input image (``input.npy``, held, the square
    network's a 33 x 33 crop) through the network read with lava-dl's defaults (no reset; every layer steps from
    time step 1, so biases act before the image arrives). Returns arrays compared, arrays exact, per array."""
    from snn_deploy.graph import LIFNode

    image = np.load(gts / "input.npy")[..., 0]  # (W, H, C)
    runs = {}
    for net in {n for n, _, _ in SDNN_GOLDEN}:
        graph = read_netx(gts / net, steps=SDNN_STEPS)
        w = graph.input.shape[2]
        x = image[:w].transpose(2, 1, 0).astype(np.float64)
        import torch

        held = torch.from_numpy(x)[None, None].expand(SDNN_STEPS, 1, *x.shape)
        names = {n.name for n in graph.of_kind(LIFNode)}
        runs[net] = simulate(graph, held, traces=names, lava_time=True)
    per_array = {}
    for net, layer, name in SDNN_GOLDEN:
        golden = np.load(gts / name).astype(np.int64)
        run = runs[net]
        values = run.graded[layer] if name in ("act0.npy", "output.npy") else run.traces[layer].u
        ours = _lava_layout(values.numpy())[..., :golden.shape[-1]]
        if name == "output.npy":
            ours = ours.reshape(golden.shape)
        per_array[name] = bool(ours.shape == golden.shape and np.array_equal(ours, golden))
    return {"layers_compared": len(per_array), "layers_exact": sum(per_array.values()), "arrays": per_array}


def sdnn_compiler_cores(reference: Path = SDNN_REFERENCE) -> list[int]:
    """The compiler's cores per layer (README table, printed last layer first) in netx order."""
    text = (reference / "README.md").read_text()
    rows = re.findall(r"^\|(?: *\d+ *\|){6} *(\d+) *\| *(?:dense \d+|Conv\([^)]*\)) *\|$", text, re.M)
    if len(rows) != len(SDNN_LAYERS):
        raise SystemExit(f"error: {reference / 'README.md'}: expected {len(SDNN_LAYERS)} compiler table rows, "
                         f"found {len(rows)}")
    return [int(r) for r in reversed(rows)]


def sdnn_cores(tutorial: Path) -> list[int]:
    """The mapper's Loihi 2 cores per layer of the tutorial's PilotNet SDNN (no retuning for it)."""
    mapping = map_graph(read_netx(tutorial), LOIHI2)
    return [len(mapping.layers[name].cores) for name in SDNN_LAYERS]


def sdnn(no_traces: bool) -> dict | None:
    """The ``sdnn`` part of the JSON (None where lava-dl's files are absent, said on stderr)."""
    gts, tutorial, where = sdnn_files()
    if gts is None and tutorial is None:
        print(f"\nPilotNet SDNN skipped: lava-dl's gts/pilotnet_sdnn and tutorial network are in neither {where}",
              file=sys.stderr)
        return None
    out: dict = {"static_power_w": {"measured": SDNN_STATIC_POWER_W}}
    if gts is not None and not no_traces:
        out["traces"] = sdnn_traces(gts)
        print(f"\nPilotNet SDNN golden arrays: {out['traces']['layers_exact']} of {out['traces']['layers_compared']} "
              f"exact (simulator vs lava-dl's gts/pilotnet_sdnn, every step)")
    if tutorial is not None:
        predicted, measured_cores = sdnn_cores(tutorial), sdnn_compiler_cores()
        out["cores"] = {"layers": list(SDNN_LAYERS), "predicted": predicted, "measured": measured_cores,
                        "total_predicted": sum(predicted), "total_measured": sum(measured_cores)}
        print("\nPilotNet SDNN cores   ours  compiler")
        for name, ours, theirs in zip(SDNN_LAYERS, predicted, measured_cores):
            print(f"  {name:<18} {ours:>5} {theirs:>9}")
        print(f"  {'total':<18} {sum(predicted):>5} {sum(measured_cores):>9}  "
              f"({100 * (sum(predicted) / sum(measured_cores) - 1):+.1f} %)")
    print(f"  static power measured {SDNN_STATIC_POWER_W} W (PilotNet LIF's board: 0.232078 W)")
    return out


def calibration_snippet(time_scale: float, energy_scale: float, residuals: dict[str, float],
                        prior: dict[str, float]) -> str:
    return (f"time_scale={time_scale:.4f}, energy_scale={energy_scale:.4f}, residual_pct="
            f"{ {k: round(v, 2) for k, v in residuals.items()} }, prior_error_pct="
            f"{ {k: round(v, 1) for k, v in prior.items()} }")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the comparison as JSON")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="the pilotnet_lif reference folder")
    parser.add_argument("--no-traces", action="store_true", help="skip the golden-trace comparison")
    args = parser.parse_args(argv)
    reference = args.reference.resolve()
    if not (reference / "network.net").is_file():
        print(f"error: {reference}: no network.net (the pilotnet_lif reference folder); pass --reference DIR",
              file=sys.stderr)
        return 2
    m = measured(reference)
    graph = pilotnet(reference)
    act = activity(graph, reference)

    trace = traces(reference) if not args.no_traces else {"layers_compared": 0, "layers_exact": 0,
                                                                 "steps": 0}
    print(f"golden traces: {trace['layers_exact']} of {trace['layers_compared']} arrays exact over "
          f"{trace['steps']} steps (simulator vs the arrays lava-dl asserts on Loihi 2)")

    mapping = map_graph(graph, LOIHI2)
    predicted = {name: len(mapping.layers[name].cores) for name in TABLE_LAYERS}
    print("\ncores per layer   ours  compiler")
    for name in TABLE_LAYERS:
        print(f"  {name:<14} {predicted[name]:>5} {m.cores[name]:>9}")
    total = sum(predicted.values())
    print(f"  {'total':<14} {total:>5} {sum(m.cores.values()):>9}  ({100 * (total / sum(m.cores.values()) - 1):+.1f} %)")

    time_scale, energy_scale, prior_err = fit(graph, act, m)
    print(f"\nfitted time scale   {time_scale:.4f}  (prior 1: Loihi's per-operation times; the brief's 'up to 10x "
          "faster' would be 0.1)")
    print(f"fitted energy scale {energy_scale:.4f}  (prior 1: Loihi's per-operation energies)")
    print("errors at the priors: " + ", ".join(f"{k} {v:+.1f} %" for k, v in prior_err.items()))
    rounded = round(time_scale, 4), round(energy_scale, 4)
    trial = Calibration("this fit", Figure(rounded[0], "x", "fit"), Figure(rounded[1], "x", "fit"),
                        dict.fromkeys(("time_per_step", "dynamic_energy", "total_energy"), 0.0), {}, ())
    fresh = errors(figures(cost(graph, act, dataclasses.replace(LOIHI2_UNCALIBRATED, calibration=trial))), m)
    print("paste into snn_deploy/graph/profiles.py (Calibration): " + calibration_snippet(*rounded, fresh, prior_err))

    ours = figures(cost(graph, act, LOIHI2))
    err = errors(ours, m)
    stored = LOIHI2.calibration
    label = (f"stored calibration (time x {stored.time_scale.value:.4f}, energy x {stored.energy_scale.value:.4f})"
             if stored else "no stored calibration: priors")
    print(f"\nwith the package's constants ({label}):")
    print(f"  time per step        {ours['time_per_step']:9.2f} us   measured {m.time_per_step_us:9.2f} us   "
          f"{err['time_per_step']:+.2f} %")
    print(f"  dynamic energy / inf {ours['dynamic_energy']:9.6f} mJ   measured {m.dynamic_energy_mj:9.6f} mJ   "
          f"{err['dynamic_energy']:+.2f} %")
    print(f"  total energy / inf   {ours['total_energy']:9.6f} mJ   measured {m.total_energy_mj:9.6f} mJ   "
          f"{err['total_energy']:+.2f} %")
    print("  one network calibrates, it does not validate; the measured run used another frame of the same data "
          "set (frame 100 of lava-dl's PilotNetDataset) than image.npy")

    sdnn_part = sdnn(args.no_traces)
    if args.json:
        out = {"traces": trace,
               "cores": {"predicted": predicted, "measured": m.cores, "total_predicted": total,
                         "total_measured": sum(m.cores.values())},
               "time_per_step_us": {"predicted": round(ours["time_per_step"], 3),
                                    "measured": round(m.time_per_step_us, 1)},
               "energy_per_inference_mJ": {
                   "dynamic": {"predicted": round(ours["dynamic_energy"], 6), "measured": m.dynamic_energy_mj},
                   "total": {"predicted": round(ours["total_energy"], 6), "measured": m.total_energy_mj}}}
        if sdnn_part is not None:
            out["sdnn"] = sdnn_part
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

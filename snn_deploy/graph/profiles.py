"""Hardware profiles: Loihi and Loihi 2 resource limits and per-operation costs, as plain validated data.

Every figure carries its source. Loihi's come from Davies et al., "Loihi: A Neuromorphic Manycore Processor with
On-Chip Learning", IEEE Micro 38(1), 2018 (Table 2 and text; pre-silicon figures at 0.75 V). Loihi 2's limits come
from Intel's 2021 product brief ("Taking Neuromorphic Computing to the Next Level with Loihi 2") and from what Intel's
Loihi 2 compiler printed for PilotNet LIF (lava-dl's benchmark notebook: its ``SynMem`` register and per-core
partition, :class:`CompilerModel`); inferred figures are flagged ``estimated``. Intel published no per-operation
energies or times for Loihi 2: its cost figures are Loihi's, times one time scale and one energy scale fitted on
PilotNet LIF's measured Loihi 2 figures (:class:`Calibration`, fitted by ``benchmarks/loihi2_pilotnet.py``, whose
output is pasted here: nothing is refitted at run time), plus the measured static power per chip. Integer limits carry their source in :attr:`HardwareProfile.limit_sources` (every one is required),
so a report can print each number with where it comes from.

:data:`CMOS_45NM` holds the energies the SNN papers use for their published estimates (Horowitz, ISSCC 2014).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

import numpy as np
from snn_deploy.errors import UserError
from snn_deploy.fixedpoint import limits as L

LOIHI_PAPER = "Davies et al., IEEE Micro 38(1) 2018, Table 2 (0.75 V, pre-silicon)"
LOIHI2_BRIEF = "Intel Loihi 2 product brief, 2021"
LAVA_SOURCES = "lava-nc 0.10.0 fixed-point models (see snn_deploy/fixedpoint/limits.py)"
HOROWITZ = "Horowitz, 'Computing's energy problem', ISSCC 2014 (45 nm, fp32)"


@dataclass(frozen=True)
class Figure:
    """A number with its unit, its source, and whether it is measured/published or an estimate."""

    value: float
    unit: str
    source: str
    estimated: bool = False


@dataclass(frozen=True)
class Source:
    """Where an integer limit comes from, and whether it is an estimate rather than a published figure."""

    text: str
    estimated: bool = False


LAVA_DL_BENCHMARK = ("lava-dl tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb (commit d825ac5), saved output of "
                     "Intel's Loihi 2 compiler and profilers for PilotNet LIF on an Oheo Gulch board")
TIMCHECK = "Timcheck, Pierro, Shrestha, 'A Compute and Communication Runtime Model for Loihi 2', arXiv 2601.10035 (2026)"


@dataclass(frozen=True)
class CompilerModel:
    """How Intel's Loihi 2 compiler partitions layers, as far as its printed output shows (the compiler itself is
    closed source). What it printed for PilotNet LIF (``LAVA_DL_BENCHMARK``):

    * ``Violation core_id=3 reg_name='SynMem' allocation=61440 ... registers[reg_name]=12000`` then
      ``max_ratio=6``, then ``allocation=12800 ... =12000``: the dense 2560 -> 100 layer needs 61440 units of the
      12000-unit synaptic memory register on one core; cut into 6 groups (``ceil(61440 / 12000)``) a group of 17
      neurons still needs 12800, so it is cut again (12 cores, the table's row). A layer is split by the ratio of
      allocation to register until every core fits.
    * Dense allocations per input axon: 61440 / 2560 = 24 units for 100 targets, 12800 / 2560 = 5 for 17, and the
      table's 1300 / 100 = 13 for 50, 150 / 50 = 3 for 10, 10 / 10 = 1 for 1. All five are
      ``ceil((header + n x 15) / 64)`` with a header of 19 to 36 bits (32 taken): one list per (input axon, core)
      in 64-bit words, 15 bits per synapse (Loihi's widest synapse: a 9-bit weight and a 6-bit delay). Our
      inference from the printed figures, not Intel's documentation: ``estimated``.
    * Conv rows hold 3, 4, 5, 5, 5 units per (input channel, kernel tap) list for 24, 36, 48, 64, 64 output
      channels: narrower than dense synapses. We store a conv synapse in the layer's weight bits (no delay field),
      which gives 3, 3, 4, 5, 5: within one word per list.
    * Every conv layer's per-core box is a slice of whole (H, C) planes, ``W`` columns wide, and every printed ``W``
      is a power of two (input 16, conv 4, 4, 8, 8, 16): layers with a spatial extent are cut into W slices of
      ``2^k`` columns (the whole layer first). A layer no W slice fits is cut freely.
    * Conv layers receive on 1 or 2 input axons per core (``AxonIn``): convolutional connectivity sends one
      population-coded axon per source core, not one per source neuron; dense layers one per source neuron
      (``AxonIn`` 2560). Conv-4's 2048 neurons per core, sending to 12 dense cores, use 1280 ``AxonMap`` entries:
      output axons are not one per (neuron, destination core) as on Loihi 1; we count one per (neuron,
      destination layer) for dense targets and one per (source core, destination core) for conv targets.
    """

    synmem_units_per_core: int
    word_bits: int
    list_header_bits: int
    dense_synapse_bits: int
    source: Source

    def synmem_units(self, lists: np.ndarray, synapses: np.ndarray, bits: int | None = None) -> np.ndarray:
        """Register units of ``lists`` axon lists holding ``synapses`` synapses in all (spread evenly over the
        lists), each synapse ``bits`` wide (``dense_synapse_bits`` when None)."""
        bits = self.dense_synapse_bits if bits is None else bits
        lists = np.asarray(lists)
        per_list = np.divide(synapses, lists, out=np.zeros(np.shape(synapses), dtype=float), where=lists > 0)
        words = np.ceil((self.list_header_bits + per_list * bits) / self.word_bits - 1e-9)
        return (lists * np.where(lists > 0, words, 0)).astype(np.int64)


@dataclass(frozen=True)
class Calibration:
    """One time scale and one dynamic-energy scale on the profile's per-operation figures, fitted on one measured
    network; static power as measured. Residuals are those of the stored constants on that network."""

    on: str
    """What it was fitted on, as reports print it."""
    time_scale: Figure
    energy_scale: Figure
    residual_pct: dict[str, float]
    """``time_per_step``, ``dynamic_energy``, ``total_energy``: (predicted - measured) / measured x 100."""
    prior_error_pct: dict[str, float]
    """The same errors with both scales at their prior 1 (Loihi's figures unscaled)."""
    caveats: tuple[str, ...]

    uncertainty: Uncertainty | None = None
    """What the reports' low / central / high ranges are derived from; None: figures without a range."""

    def label(self, quantity: str) -> str:
        basis = f"; {self.uncertainty.basis()}" if self.uncertainty else ""
        return f"calibrated on {self.on}, residual {self.residual_pct[quantity]:+.1f} %{basis}"


RUN_ROLES = ("fit", "validation", "static power")
"""What a measured run is used for: ``fit`` (the scales were fitted on it: its residual is 0 by construction),
``validation`` (predicted with the stored scales, never fitted: its error says how well the model extrapolates),
``static power`` (only its static power is usable, e.g. a host-I/O-bound run)."""


@dataclass(frozen=True)
class MeasuredRun:
    """One measured Loihi 2 run a calibrated profile knows about. A second calibration or validation network is a
    new entry of :attr:`Uncertainty.runs`: the reports' ranges and labels follow from the data, not from code."""

    network: str
    role: str
    """One of :data:`RUN_ROLES`."""
    static_power_w: float | None
    """Static power per chip measured in this run (None: not measured)."""
    source: str
    error_pct: dict[str, float] = field(default_factory=dict)
    """``validation`` runs: (predicted - measured) / measured x 100 with the stored scales, per quantity
    (``time_per_step``, ``dynamic_energy``)."""

    def __post_init__(self) -> None:
        if self.role not in RUN_ROLES:
            raise ValueError(f"measured run {self.network}: role {self.role!r} is not one of {', '.join(RUN_ROLES)}")
        if self.role == "validation" and not {"time_per_step", "dynamic_energy"} <= set(self.error_pct):
            raise ValueError(f"measured run {self.network}: a validation run needs its time_per_step and "
                             "dynamic_energy errors")


@dataclass(frozen=True)
class Uncertainty:
    """What a calibrated profile's ranges are derived from (method: docs/hardware.md, "How sure: ranges").

    * ``runs``: the measured runs and what each was used for (how many networks fitted, how many validated);
    * ``model_error``: relative error of a calibrated per-operation model on networks it was not fitted on, used
      while no ``validation`` run exists (then the largest validation error is used instead);
    * ``time_shares`` / ``energy_shares``: how the fit network's step time splits over the cost model's time terms
      and its dynamic energy over the energy components: what the fit exercised. The share of a workload's time or
      energy outside that mix (total variation distance) gets the prior-to-calibration error instead;
    * the static power per chip ranges over the runs' measured static powers (same board kind).
    """

    runs: tuple[MeasuredRun, ...]
    model_error: dict[str, Figure]
    """``time``, ``energy``: relative error (0.25 = 25 %) assumed for the fitted part of a workload."""
    time_shares: dict[str, float]
    energy_shares: dict[str, float]
    shares_source: str
    core_checks: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per network with a printed compiler table: (cores the mapper predicts, cores Intel's compiler allocated).
    Their relative differences make the range of a report's core count (and of the chips static power is paid
    for)."""

    def cores(self, predicted: int) -> tuple[int, int]:
        """(low, high) core count around ``predicted``: its relative error on every compiler table, either sign."""
        errors = [(compiler - ours) / ours for ours, compiler in self.core_checks.values() if ours]
        low = predicted * (1 + min([0.0, *errors]))
        high = predicted * (1 + max([0.0, *errors]))
        return int(np.floor(low + 1e-9)), int(np.ceil(high - 1e-9))

    def networks(self, role: str) -> list[str]:
        return [r.network for r in self.runs if r.role == role]

    def basis(self) -> str:
        """``fitted on 1 network: PilotNet LIF (...); not validated on another network``: what reports print."""
        fitted, validated = self.networks("fit"), self.networks("validation")
        text = f"fitted on {len(fitted)} network{'s' if len(fitted) != 1 else ''}: {', '.join(fitted)}"
        if validated:
            return text + f"; validated on {len(validated)}: {', '.join(validated)}"
        return text + "; not validated on another network"

    def static_power_w(self) -> tuple[float, float] | None:
        """(lowest, highest) static power per chip measured over the runs, or None where none measured it."""
        values = [r.static_power_w for r in self.runs if r.static_power_w is not None]
        return (min(values), max(values)) if values else None

    def fitted_error(self, quantity: str) -> tuple[float, str]:
        """(relative error, where it comes from) of the fitted part: the largest validation error of ``quantity``
        (``time`` or ``energy``) where a validation run exists, else ``model_error``."""
        key = {"time": "time_per_step", "energy": "dynamic_energy"}[quantity]
        errors = [(abs(r.error_pct[key]) / 100, r.network) for r in self.runs if r.role == "validation"]
        if errors:
            value, network = max(errors)
            return value, f"largest validation error ({network})"
        return self.model_error[quantity].value, self.model_error[quantity].source


LIMIT_UNITS = {
    "neurons_per_core": "neurons", "synaptic_memory_bytes_per_core": "bytes", "weight_bits": "bits",
    "max_synaptic_delay": "steps", "fan_in_per_core": "input axons", "fan_out_per_core": "output axons",
    "cores_per_chip": "cores", "cores_per_tile": "cores", "mesh": "tiles (rows, columns)",
    "embedded_cores_per_chip": "cores", "input_current_bits": "bits", "graded_spikes": "flag",
    "one_variable_packing": "x",
}
"""Every limit of a profile and its unit; each needs an entry in ``limit_sources``."""


@dataclass(frozen=True)
class HardwareProfile:
    """Limits and costs of one chip generation (see module docstring for sources).

    Geometry: ``cores_per_chip`` cores in tiles of ``cores_per_tile``; the tiles form a ``mesh`` of (rows,
    columns) routers per chip. Spike messages cost a within-tile delivery plus one hop per router passed.
    """

    name: str
    graded_spikes: bool
    neurons_per_core: int
    synaptic_memory_bytes_per_core: int
    weight_bits: int
    max_synaptic_delay: int
    fan_in_per_core: int
    fan_out_per_core: int
    cores_per_chip: int
    mesh: tuple[int, int]
    input_current_bits: int
    cores_per_tile: int
    embedded_cores_per_chip: int
    limit_sources: dict[str, Source]
    energy_pj: dict[str, Figure] = field(default_factory=dict)
    time_ns: dict[str, Figure] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    compiler: CompilerModel | None = None
    """Loihi 2: how its compiler partitions (synaptic memory register, W slices, population axons); None: a free
    box search against the byte limits (Loihi)."""
    calibration: Calibration | None = None
    """Scales fitted on silicon measurements; None: every cost figure is an estimate from the sources."""
    one_variable_packing: int = 1
    """One-variable neurons (graded, product, accumulator: one state variable) a core holds per two-variable
    (LIF: u and v) neuron of ``neurons_per_core``; see :meth:`neurons_per_core_for`."""
    static_power_w: Figure | None = None
    """Static (leakage) power per chip, as measured; None: not modelled."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if f.name == "mesh" else (value,)
            for v in values:
                if isinstance(v, int) and not isinstance(v, bool) and v <= 0:
                    raise ValueError(f"profile {self.name}: {f.name} must be positive, got {value}")
        for table in (self.energy_pj, self.time_ns):
            for key, figure in table.items():
                if figure.value < 0:
                    raise ValueError(f"profile {self.name}: {key} must be non-negative")
        missing = sorted(set(LIMIT_UNITS) - set(self.limit_sources))
        if missing:
            raise ValueError(f"profile {self.name}: no source for {', '.join(missing)}")
        if self.mesh[0] * self.mesh[1] * self.cores_per_tile != self.cores_per_chip:
            raise ValueError(f"profile {self.name}: mesh {self.mesh} x {self.cores_per_tile} cores per tile is not "
                             f"{self.cores_per_chip} cores per chip")

    def neurons_per_core_for(self, variant: str) -> int:
        """The per-core neuron limit of a neuron variant (``two-variable`` or ``one-variable``,
        :data:`snn_deploy.graph.hardware.NEURON_MODELS`)."""
        return self.neurons_per_core * (self.one_variable_packing if variant == "one-variable" else 1)

    def limits(self) -> dict[str, dict]:
        """Every limit with its unit and source, as plain data for reports."""
        return {name: {"value": list(v) if isinstance(v := getattr(self, name), tuple) else v, "unit": unit,
                       "source": self.limit_sources[name].text, "estimated": self.limit_sources[name].estimated}
                for name, unit in LIMIT_UNITS.items()}


def _loihi_costs(scale_energy: float, scale_time: float, estimated: bool, source: str) -> tuple[dict, dict]:
    ops = {  # operation: (energy pJ, time ns) on Loihi
        "synaptic_op": (23.6, 3.5),
        "synaptic_update": (120.0, 6.1),
        "neuron_update_active": (81.0, 8.4),
        "neuron_update_inactive": (52.0, 5.3),
        "spike_within_tile": (1.7, 2.1),
        "mesh_hop_east_west": (3.0, 4.1),
        "mesh_hop_north_south": (4.0, 6.5),
    }
    energy = {k: Figure(e * scale_energy, "pJ", source, estimated) for k, (e, _) in ops.items()}
    time = {k: Figure(t * scale_time, "ns", source, estimated) for k, (_, t) in ops.items()}
    time["barrier_sync_1_tile"] = Figure(113.0 * scale_time, "ns", source, estimated)
    time["barrier_sync_32_tiles"] = Figure(465.0 * scale_time, "ns", source, estimated)
    return energy, time


_MESH_GUESS = Source(f"{LOIHI_PAPER}: 128 cores, barrier sync quoted for 1-32 tiles, so 32 tiles of 4 cores; "
                     "their 4 x 8 arrangement is assumed", estimated=True)
_LOIHI_LIMITS = {
    "neurons_per_core": Source(f"{LOIHI_PAPER}: 1024 compartments per core"),
    "synaptic_memory_bytes_per_core": Source(f"{LOIHI_PAPER}: 128 KB synaptic memory per core"),
    "weight_bits": Source(f"{LAVA_SOURCES}: Dense clips weights to 8 bits (the paper allows 1-9)"),
    "max_synaptic_delay": Source(f"{LOIHI_PAPER}: synaptic delays up to 62 steps"),
    "fan_in_per_core": Source(f"{LOIHI_PAPER}: fan-in 4096 per core"),
    "fan_out_per_core": Source(f"{LOIHI_PAPER}: fan-out 4096 per core"),
    "one_variable_packing": Source(f"{LOIHI_PAPER}: 1024 compartments per core whatever the neuron model (no graded "
                                   "neurons)"),
    "cores_per_chip": Source(f"{LOIHI_PAPER}: 128 neuro cores per chip"),
    "cores_per_tile": _MESH_GUESS,
    "mesh": _MESH_GUESS,
    "embedded_cores_per_chip": Source(f"{LOIHI_PAPER}: 3 embedded x86 cores per chip"),
    "input_current_bits": Source(f"{LAVA_SOURCES}: a_in declared 16-bit"),
    "graded_spikes": Source(f"{LOIHI_PAPER}: binary spikes"),
}

_E1, _T1 = _loihi_costs(1.0, 1.0, False, LOIHI_PAPER)
LOIHI = HardwareProfile(
    name="loihi1", graded_spikes=False, neurons_per_core=1024, synaptic_memory_bytes_per_core=128 * 1024,
    weight_bits=L.WEIGHT_BITS, max_synaptic_delay=62, fan_in_per_core=4096, fan_out_per_core=4096,
    cores_per_chip=128, mesh=(4, 8), input_current_bits=L.A_IN_HW_BITS, cores_per_tile=4,
    embedded_cores_per_chip=3, limit_sources=_LOIHI_LIMITS,
    energy_pj=_E1, time_ns=_T1, sources=(LOIHI_PAPER,),
)

_LOIHI2_PRIORS = (f"{LOIHI2_BRIEF}: no per-operation figures published; Loihi's ({LOIHI_PAPER}) as priors, "
                  "each multiplied by the profile's fitted time or energy scale (see Calibration)")
_AS_LOIHI = f"not in the {LOIHI2_BRIEF}; Loihi's figure assumed"
_LOIHI2_LIMITS = {
    **{k: Source(f"{_AS_LOIHI} ({v.text})", estimated=True) for k, v in _LOIHI_LIMITS.items()},
    "neurons_per_core": Source(
        f"{LOIHI2_BRIEF}: up to 1 M neurons on 128 cores, i.e. 8192 one-variable neurons per core; a CUBA LIF "
        "keeps two state variables (current u and voltage v), so 4096 (our inference; consistent with the compiler "
        f"fitting 3168 but not 6336 input neurons on one core, {LAVA_DL_BENCHMARK})", estimated=True),
    "synaptic_memory_bytes_per_core": Source(
        "Loihi's 128 KB assumed (a secondary report of the brief: '128 KB of local SRAM per core, flexibly "
        "partitioned'); the Loihi 2 mapper budgets the compiler's SynMem register instead (CompilerModel)",
        estimated=True),
    "fan_in_per_core": Source(
        f"Loihi's 4096 assumed; the compiler gave a dense core 2560 input axons ({LAVA_DL_BENCHMARK}); conv "
        "projections count one axon per projection (population-coded, CompilerModel)", estimated=True),
    "fan_out_per_core": Source(
        "Loihi's 4096 assumed; counted per (neuron, destination layer) for dense targets and per (source core, "
        "destination core) for conv targets (CompilerModel)", estimated=True),
    "cores_per_chip": Source(f"{LOIHI2_BRIEF}: 128 neuro cores per chip"),
    "embedded_cores_per_chip": Source(f"{LOIHI2_BRIEF}: 6 embedded x86 cores per chip"),
    "graded_spikes": Source(f"{LOIHI2_BRIEF}: graded spikes with integer payloads"),
    "one_variable_packing": Source(
        f"{LOIHI2_BRIEF}: up to 1 M neurons on 128 cores = 8192 per core, read as neurons of one state variable "
        "(GradedVec, ProdNeuron, Sigma keep one Var v in Lava's models); 2 x the 4096 two-variable LIFs; "
        "no per-model figure is published (estimated)", estimated=True),
    "weight_bits": _LOIHI_LIMITS["weight_bits"],
    "input_current_bits": _LOIHI_LIMITS["input_current_bits"],
}
LOIHI2_COMPILER = CompilerModel(
    synmem_units_per_core=12000, word_bits=64, list_header_bits=32, dense_synapse_bits=15,
    source=Source(f"{LAVA_DL_BENCHMARK}: 'reg_name=SynMem allocation=61440 ... =12000', 'max_ratio=6', "
                  "'allocation=12800 ... =12000' and the per-core distribution table; register size as printed, "
                  "list layout inferred from the printed allocations (see CompilerModel)", estimated=True))
_E2, _T2 = _loihi_costs(1.0, 1.0, True, _LOIHI2_PRIORS)
LOIHI2_UNCALIBRATED = HardwareProfile(
    name="loihi2", graded_spikes=True, neurons_per_core=4096, synaptic_memory_bytes_per_core=128 * 1024,
    weight_bits=L.WEIGHT_BITS, max_synaptic_delay=62, fan_in_per_core=4096, fan_out_per_core=4096, cores_per_chip=128,
    mesh=(4, 8), input_current_bits=L.A_IN_HW_BITS, cores_per_tile=4, embedded_cores_per_chip=6, limit_sources=_LOIHI2_LIMITS,
    one_variable_packing=2,
    energy_pj=_E2, time_ns=_T2, sources=(LOIHI2_BRIEF, LAVA_DL_BENCHMARK, TIMCHECK, _LOIHI2_PRIORS),
    compiler=LOIHI2_COMPILER,
    static_power_w=Figure(0.232078, "W", f"{LAVA_DL_BENCHMARK}: measured static power per chip (board idle "
                          "power with the other chips removed)"),
)
"""Loihi 2 with its cost figures at their priors (both scales 1): what ``benchmarks/loihi2_pilotnet.py`` fits."""

PILOTNET_LIF = "PilotNet LIF (lava-dl benchmark)"
PILOTNET_SDNN = "PilotNet SDNN (lava-dl benchmark)"
"""The sigma-delta network: its compiler table (61 cores; the mapper, unretuned, 59: benchmarks/loihi2_pilotnet.py
--json ``sdnn.cores``) and its board's static power."""
SANA_FE = "SANA-FE (Boyle et al., IEEE TCAD 44(8) 2025)"
PILOTNET_LIF_TIME_SHARES = {"synaptic_ops": 0.9703, "neuron_updates": 0.0293, "spikes_out": 0.0, "spikes_in": 0.0,
                            "links": 0.0, "barrier": 0.0004}
"""PilotNet LIF's streamed step time by term (:data:`snn_deploy.sims.hardware.uncertainty.TIME_PARTS`), computed by
``uncertainty.time_shares`` with the stored scales (tests/test_uncertainty.py fails when they go stale)."""
PILOTNET_LIF_ENERGY_SHARES = {"synaptic_ops": 0.8734, "neuron_updates_active": 0.046, "neuron_updates_inactive": 0.0716,
                              "spike_delivery": 0.0011, "mesh_hops_east_west": 0.0072, "mesh_hops_north_south": 0.0008}
"""PilotNet LIF's dynamic energy by component (:data:`snn_deploy.sims.hardware.cost.COMPONENTS`), computed likewise."""
LOIHI2_CALIBRATION = Calibration(
    on=PILOTNET_LIF,
    time_scale=Figure(0.2187, "x", f"fitted by benchmarks/loihi2_pilotnet.py: measured 152.8 us per step "
                      f"({LAVA_DL_BENCHMARK}: 408.91 inferences / s of 16 steps) / 698.9 us predicted at the prior 1 "
                      "(Loihi's pre-silicon times); the brief's 'up to 10x faster' would be 0.1", estimated=True),
    energy_scale=Figure(0.8384, "x", "fitted by benchmarks/loihi2_pilotnet.py: measured 1.093544 mJ dynamic energy "
                        "per 16-step inference / 1.304273 mJ predicted at the prior 1 (Loihi's pre-silicon energies)",
                        estimated=True),
    residual_pct={"time_per_step": 0.0, "dynamic_energy": 0.0, "total_energy": 0.0},
    prior_error_pct={"time_per_step": 357.3, "dynamic_energy": 19.3, "total_energy": 134.8},
    caveats=("calibrated on one network (PilotNet LIF): a calibration, not a validation; the residuals are those "
             "of the stored, rounded scales on that network and say nothing about other networks",
             "the measured run used another frame of the same data set (lava-dl's PilotNetDataset frame 100) than "
             "the image.npy the activity was counted on"),
    uncertainty=Uncertainty(
        runs=(MeasuredRun(PILOTNET_LIF, "fit", 0.232078, f"{LAVA_DL_BENCHMARK}: 408.91 inferences / s, 1.093544 mJ "
                          "dynamic per inference, static 0.232078 W"),
              MeasuredRun(PILOTNET_SDNN, "static power", 0.281775,
                          "lava-dl tutorials/lava/lib/dl/netx/pilotnet_sdnn/benchmark.ipynb (commit d825ac5): static "
                          "0.281775 W on the same kind of board; frames streamed from the host (16.87 inferences / s, "
                          "host-I/O bound), so its time and dynamic energy cannot validate the model")),
        model_error={
            "time": Figure(0.25, "fraction", f"{SANA_FE}: latency within 25 % of measured Loihi on three "
                           "applications after calibration (no network validates this profile yet)", estimated=True),
            "energy": Figure(0.12, "fraction", f"{SANA_FE}: energy within 12 % of measured Loihi on three "
                             "applications after calibration (no network validates this profile yet)",
                             estimated=True)},
        time_shares=PILOTNET_LIF_TIME_SHARES, energy_shares=PILOTNET_LIF_ENERGY_SHARES,
        shares_source="PilotNet LIF's step time by term and dynamic energy by component with the stored scales "
                      "(activity of image.npy; tests/test_uncertainty.py recomputes them)",
        core_checks={PILOTNET_LIF: (72, 74), PILOTNET_SDNN: (59, 61)}),
)
"""Output of ``python benchmarks/loihi2_pilotnet.py`` (activity of image.npy, reset interval 16, 16 steps per
inference), pasted here; the package never refits."""

LOIHI2 = dataclasses.replace(LOIHI2_UNCALIBRATED, calibration=LOIHI2_CALIBRATION)

CMOS_45NM = {
    "accumulate": Figure(0.9, "pJ", f"{HOROWITZ}: fp32 add; E_AC of the Spikformer / QKFormer energy estimates"),
    "mac": Figure(4.6, "pJ", f"{HOROWITZ}: fp32 multiply 3.7 + add 0.9; E_MAC of the Spikformer / QKFormer "
                             "energy estimates"),
}
"""The papers' energy convention: accumulates of spike-driven layers and MACs of the analog input layer."""

PROFILES = {"loihi1": LOIHI, "loihi2": LOIHI2}
"""The hardware profiles by name. There is no ``loihi``: on the command line that is an export target, an alias
of ``loihi2`` (:data:`snn_deploy.workflows.EXPORT_TARGETS`)."""
DEFAULT_PROFILE = "loihi2"
"""What a deployment targets unless told otherwise (export, verify of a model file, a bundle without a target)."""


def profile(name: str) -> HardwareProfile:
    """The profile called ``name`` (``loihi1`` or ``loihi2``)."""
    if name not in PROFILES:
        raise UserError(f"unknown hardware profile {name!r}; choose one of loihi1, loihi2")
    return PROFILES[name]

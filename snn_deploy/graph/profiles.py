"""Hardware profiles: Loihi and Loihi 2 resource limits and per-operation costs, as plain validated data.

Every figure carries its source. Loihi's come from Davies et al., "Loihi: A Neuromorphic Manycore Processor with
On-Chip Learning", IEEE Micro 38(1), 2018 (Table 2 and text; pre-silicon figures at 0.75 V). Loihi 2's limits come
from Intel's 2021 product brief ("Taking Neuromorphic Computing to the Next Level with Loihi 2"); Intel published
no per-operation energies or times for Loihi 2, so those are Loihi's figures scaled as stated and marked
``estimated``. Integer limits carry their source in :attr:`HardwareProfile.limit_sources` (every one is required),
so a report can print each number with where it comes from.

:data:`CMOS_45NM` holds the energies the SNN papers use for their published estimates (Horowitz, ISSCC 2014).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

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


LIMIT_UNITS = {
    "neurons_per_core": "neurons", "synaptic_memory_bytes_per_core": "bytes", "weight_bits": "bits",
    "max_synaptic_delay": "steps", "fan_in_per_core": "input axons", "fan_out_per_core": "output axons",
    "cores_per_chip": "cores", "cores_per_tile": "cores", "mesh": "tiles (rows, columns)",
    "embedded_cores_per_chip": "cores", "input_current_bits": "bits", "graded_spikes": "flag",
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
    "cores_per_chip": Source(f"{LOIHI_PAPER}: 128 neuro cores per chip"),
    "cores_per_tile": _MESH_GUESS,
    "mesh": _MESH_GUESS,
    "embedded_cores_per_chip": Source(f"{LOIHI_PAPER}: 3 embedded x86 cores per chip"),
    "input_current_bits": Source(f"{LAVA_SOURCES}: a_in declared 16-bit"),
    "graded_spikes": Source(f"{LOIHI_PAPER}: binary spikes"),
}

_E1, _T1 = _loihi_costs(1.0, 1.0, False, LOIHI_PAPER)
LOIHI = HardwareProfile(
    name="loihi", graded_spikes=False, neurons_per_core=1024, synaptic_memory_bytes_per_core=128 * 1024,
    weight_bits=L.WEIGHT_BITS, max_synaptic_delay=62, fan_in_per_core=4096, fan_out_per_core=4096,
    cores_per_chip=128, mesh=(4, 8), input_current_bits=L.A_IN_HW_BITS, cores_per_tile=4,
    embedded_cores_per_chip=3, limit_sources=_LOIHI_LIMITS,
    energy_pj=_E1, time_ns=_T1, sources=(LOIHI_PAPER,),
)

_LOIHI2_SCALING = (f"{LOIHI2_BRIEF}: no per-operation figures published; Loihi's figures ({LOIHI_PAPER}) with "
                   "time divided by 10 (the brief's 'up to 10x faster') and energy unchanged")
_AS_LOIHI = f"not in the {LOIHI2_BRIEF}; Loihi's figure assumed"
_LOIHI2_LIMITS = {
    **{k: Source(f"{_AS_LOIHI} ({v.text})", estimated=True) for k, v in _LOIHI_LIMITS.items()},
    "neurons_per_core": Source(f"{LOIHI2_BRIEF}: up to 1 M neurons on 128 cores, about 8192 per core",
                               estimated=True),
    "cores_per_chip": Source(f"{LOIHI2_BRIEF}: 128 neuro cores per chip"),
    "embedded_cores_per_chip": Source(f"{LOIHI2_BRIEF}: 6 embedded x86 cores per chip"),
    "graded_spikes": Source(f"{LOIHI2_BRIEF}: graded spikes with integer payloads"),
    "weight_bits": _LOIHI_LIMITS["weight_bits"],
    "input_current_bits": _LOIHI_LIMITS["input_current_bits"],
}
_E2, _T2 = _loihi_costs(1.0, 0.1, True, _LOIHI2_SCALING)
LOIHI2 = HardwareProfile(
    name="loihi2", graded_spikes=True, neurons_per_core=8192, synaptic_memory_bytes_per_core=128 * 1024,
    weight_bits=L.WEIGHT_BITS, max_synaptic_delay=62, fan_in_per_core=4096, fan_out_per_core=4096,
    cores_per_chip=128, mesh=(4, 8), input_current_bits=L.A_IN_HW_BITS, cores_per_tile=4,
    embedded_cores_per_chip=6, limit_sources=_LOIHI2_LIMITS,
    energy_pj=_E2, time_ns=_T2, sources=(LOIHI2_BRIEF, _LOIHI2_SCALING),
)

CMOS_45NM = {
    "accumulate": Figure(0.9, "pJ", f"{HOROWITZ}: fp32 add; E_AC of the Spikformer / QKFormer energy estimates"),
    "mac": Figure(4.6, "pJ", f"{HOROWITZ}: fp32 multiply 3.7 + add 0.9; E_MAC of the Spikformer / QKFormer "
                             "energy estimates"),
}
"""The papers' energy convention: accumulates of spike-driven layers and MACs of the analog input layer."""

PROFILES = {"loihi": LOIHI, "loihi1": LOIHI, "loihi2": LOIHI2}


def profile(name: str) -> HardwareProfile:
    """The profile called ``name`` (``loihi`` / ``loihi1`` or ``loihi2``)."""
    if name not in PROFILES:
        raise UserError(f"unknown hardware profile {name!r}; choose one of loihi1, loihi2")
    return PROFILES[name]

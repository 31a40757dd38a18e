"""Hardware profiles: Loihi and Loihi 2 resource limits and per-operation costs, as plain validated data.

Every figure carries its source. Loihi's come from Davies et al., "Loihi: A Neuromorphic Manycore Processor with
On-Chip Learning", IEEE Micro 38(1), 2018 (Table 2 and text; pre-silicon figures at 0.75 V). Loihi 2's limits come
from Intel's 2021 product brief ("Taking Neuromorphic Computing to the Next Level with Loihi 2"); Intel published
no per-operation energies or times for Loihi 2, so those are Loihi's figures scaled as stated and marked
``estimated``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

LOIHI_PAPER = "Davies et al., IEEE Micro 38(1) 2018, Table 2 (0.75 V, pre-silicon)"
LOIHI2_BRIEF = "Intel Loihi 2 product brief, 2021"


@dataclass(frozen=True)
class Figure:
    """A number with its unit, its source, and whether it is measured/published or an estimate."""

    value: float
    unit: str
    source: str
    estimated: bool = False


@dataclass(frozen=True)
class HardwareProfile:
    """Limits and costs of one chip generation (see module docstring for sources)."""

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
    energy_pj: dict[str, Figure] = field(default_factory=dict)
    time_ns: dict[str, Figure] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
                raise ValueError(f"profile {self.name}: {f.name} must be positive, got {value}")
        for table in (self.energy_pj, self.time_ns):
            for key, figure in table.items():
                if figure.value < 0:
                    raise ValueError(f"profile {self.name}: {key} must be non-negative")


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


_E1, _T1 = _loihi_costs(1.0, 1.0, False, LOIHI_PAPER)
LOIHI = HardwareProfile(
    name="loihi", graded_spikes=False, neurons_per_core=1024, synaptic_memory_bytes_per_core=128 * 1024,
    weight_bits=8, max_synaptic_delay=62, fan_in_per_core=4096, fan_out_per_core=4096, cores_per_chip=128,
    mesh=(8, 16), input_current_bits=16, energy_pj=_E1, time_ns=_T1, sources=(LOIHI_PAPER,),
)

_LOIHI2_SCALING = (f"{LOIHI2_BRIEF}: no per-operation figures published; Loihi's figures ({LOIHI_PAPER}) with "
                   "time divided by 10 (the brief's 'up to 10x faster') and energy unchanged")
_E2, _T2 = _loihi_costs(1.0, 0.1, True, _LOIHI2_SCALING)
LOIHI2 = HardwareProfile(
    name="loihi2", graded_spikes=True, neurons_per_core=8192, synaptic_memory_bytes_per_core=128 * 1024,
    weight_bits=8, max_synaptic_delay=62, fan_in_per_core=4096, fan_out_per_core=4096, cores_per_chip=128,
    mesh=(8, 16), input_current_bits=16, energy_pj=_E2, time_ns=_T2, sources=(LOIHI2_BRIEF, _LOIHI2_SCALING),
)

PROFILES = {"loihi": LOIHI, "loihi1": LOIHI, "loihi2": LOIHI2}


def profile(name: str) -> HardwareProfile:
    """The profile called ``name`` (``loihi`` / ``loihi1`` or ``loihi2``)."""
    from snn_deploy.errors import UserError

    if name not in PROFILES:
        raise UserError(f"unknown hardware profile {name!r}; choose one of loihi1, loihi2")
    return PROFILES[name]

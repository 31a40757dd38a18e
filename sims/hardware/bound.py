"""The fewest cores any mapper could use for a lowered network: a resource lower bound to judge the mapper by.

Why: a core count alone does not say whether a deployment is large because the network is large or because it
is packed badly. The bound counts what the network needs of every per-core resource, as the profile models it
(``sims/hardware/mapper.py``), and divides by the per-core limit:

* **neurons**: the population's neurons / the profile's neurons per core of its neuron variant
  (:meth:`~snn_deploy.graph.profiles.HardwareProfile.neurons_per_core_for`: Loihi 2 packs one-variable graded,
  product and accumulator neurons twice as dense as two-variable LIFs);
* **synaptic memory**: with a :class:`~snn_deploy.graph.profiles.CompilerModel`, the register units of the
  population's synapses stored as few times as any partition can store them (a shared kernel once, every other
  synapse once) and one axon list per distinct input axon (source channel and tap for a shared kernel, source
  neuron otherwise), without rounding lists up to words; without one, those synapses' weight bits / the bytes per
  core;
* **input axons**: the distinct source neurons the population reads (population-coded conv projections: one axon
  per projection), / the fan-in per core.

Output axons are not bounded: the compiler model counts one per (neuron, destination layer), which a partition
cannot reduce below a handful of cores. Limits that a single neuron of a population already breaks are left out
for that population, as the mapper leaves them out of its search (they are violations whatever the partition).

Two bounds, named apart:

* **per population** (:attr:`Bound.cores`): the sum over populations of the largest of the above, each rounded up
  to whole cores. Valid for every mapper that gives each core one population, as this mapper does (and as Intel's
  compiler does on the PilotNet tables): it is what the mapper's cores are judged against;
* **global** (:attr:`Bound.global_cores`): every resource summed over the whole network first and divided once,
  with input axons counted once per source neuron however many populations read it and memory without list
  headers (lists of populations sharing a core could merge). Valid for any mapper, populations sharing cores or
  not.

Both are lower bounds of the mapper's own model, not of Intel's compiler: a resource the model does not count
cannot bind here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from snn_deploy.graph import HardwareProfile
from snn_deploy.graph.hardware import Population
from snn_deploy.sims.hardware.mapper import Mapping, _neuron_violations, _tiling

RESOURCES = ("neurons", "memory", "fan_in")
"""Per-core resources the bound counts (the mapper's metric names; fan-out is not bounded, module docstring)."""
RESOURCE_LABELS = {"neurons": "neurons", "memory": "synaptic memory", "fan_in": "input axons"}


@dataclass(frozen=True)
class PopulationBound:
    """What one population needs, in cores' worth of each resource (fractions), and its bound in whole cores."""

    name: str
    kind: str
    need: dict[str, float]
    """Per resource in :data:`RESOURCES`: the population's use / the per-core limit (0 where left out)."""
    sources: dict[str, int]
    """Distinct source neurons read per source (input axons, for the global bound)."""
    synapse_fraction: float
    """Synapse bits without list headers / one core's synaptic memory (for the global bound)."""

    @property
    def cores(self) -> int:
        return max(1, max(math.ceil(v - 1e-9) for v in self.need.values()))

    @property
    def binding(self) -> str:
        """The resource that sets :attr:`cores` (the first in :data:`RESOURCES` on a tie)."""
        return max(RESOURCES, key=lambda r: (math.ceil(self.need[r] - 1e-9), -RESOURCES.index(r)))


@dataclass(frozen=True)
class Bound:
    """The resource lower bound of one mapped network (module docstring)."""

    populations: tuple[PopulationBound, ...]
    global_need: dict[str, float]

    @property
    def cores(self) -> int:
        """Per-population bound: one population per core (what this mapper's cores are compared with)."""
        return sum(p.cores for p in self.populations)

    @property
    def global_cores(self) -> int:
        """Global bound: valid for any mapper."""
        return max(1, max(math.ceil(v - 1e-9) for v in self.global_need.values())) if self.populations else 0

    @property
    def global_binding(self) -> str:
        return max(RESOURCES, key=lambda r: (math.ceil(self.global_need[r] - 1e-9), -RESOURCES.index(r)))

    def by_kind(self, mapping: Mapping) -> dict[str, dict]:
        """Per population kind: the mapper's cores, the bound, their ratio and how many populations each resource
        binds (what to improve first)."""
        out: dict[str, dict] = {}
        for p in self.populations:
            row = out.setdefault(p.kind, {"cores": 0, "bound": 0, "binding": dict.fromkeys(RESOURCES, 0)})
            row["cores"] += len(mapping.layers[p.name].cores)
            row["bound"] += p.cores
            row["binding"][p.binding] += 1
        for row in out.values():
            row["ratio"] = row["cores"] / row["bound"] if row["bound"] else 1.0
        return out

    def worst(self, mapping: Mapping) -> tuple[str, float]:
        """The population furthest above its bound and its ratio."""
        ratios = [(len(mapping.layers[p.name].cores) / p.cores, p.name) for p in self.populations]
        ratio, name = max(ratios, default=(1.0, ""))
        return name, ratio

    def json(self, mapping: Mapping) -> dict:
        """Plain data for reports and benchmarks."""
        cores = len(mapping.cores)
        return {"cores": self.cores, "binding": _most_binding(self.populations),
                "global_cores": self.global_cores, "global_binding": self.global_binding,
                "mapper_cores": cores, "ratio": cores / self.cores if self.cores else 1.0,
                "by_kind": self.by_kind(mapping),
                "assumes": "per-population bound: one population per core; global bound: any mapper"}


def _most_binding(pops: tuple[PopulationBound, ...]) -> str:
    """The resource binding the most bound cores."""
    cores = dict.fromkeys(RESOURCES, 0)
    for p in pops:
        cores[p.binding] += p.cores
    return max(RESOURCES, key=lambda r: cores[r])


def population_bound(pop: Population, profile: HardwareProfile, sharing: bool = True) -> PopulationBound:
    """The bound of one population: its whole-population tile has the fewest stored synapses, axon lists and
    input axons any partition can have (each is a sum over cores of per-core counts that only grow when split)."""
    ignore, _ = _neuron_violations(pop, profile, sharing)
    whole = _tiling(pop, pop.shape, sharing, profile.compiler)
    compiler = profile.compiler
    if compiler:
        bits_per_core = compiler.synmem_units_per_core * compiler.word_bits
        memory = float(whole.lists.sum() * compiler.list_header_bits + whole.list_bits.sum()) / bits_per_core
    else:
        bits_per_core = 8 * profile.synaptic_memory_bytes_per_core
        memory = float(whole.memory_bits.sum()) / bits_per_core
    need = {"neurons": pop.neurons / profile.neurons_per_core_for(pop.variant),
            "memory": 0.0 if "memory" in ignore else memory,
            "fan_in": 0.0 if "fan_in" in ignore else float(whole.fan_in.sum()) / profile.fan_in_per_core}
    sources: dict[str, int] = {}
    if "fan_in" not in ignore:
        for proj in pop.projections:
            one = _tiling(Population(pop.name, pop.kind, pop.node, pop.shape, (proj,)), pop.shape, sharing, compiler)
            sources[proj.source] = max(sources.get(proj.source, 0), int(one.fan_in.sum()))
    synapses = 0.0 if "memory" in ignore else float(whole.list_bits.sum() if compiler else whole.memory_bits.sum())
    return PopulationBound(pop.name, pop.kind, need, sources, synapses / bits_per_core)


def resource_bound(mapping: Mapping) -> Bound:
    """The lower bound of ``mapping``'s network (its populations, profile and kernel sharing)."""
    profile = mapping.profile
    pops = tuple(population_bound(p, profile, mapping.kernel_sharing) for p in mapping.populations)
    sources: dict[str, int] = {}
    for p in pops:
        for name, n in p.sources.items():
            sources[name] = max(sources.get(name, 0), n)
    global_need = {"neurons": sum(p.neurons / profile.neurons_per_core_for(p.variant) for p in mapping.populations),
                   "memory": sum(p.synapse_fraction for p in pops),
                   "fan_in": sum(sources.values()) / profile.fan_in_per_core}
    return Bound(pops, global_need)

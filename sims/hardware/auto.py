"""``--attention auto``: per spike product, the lowering that minimises one objective, priced by the mapper and the
cost model.

Why a search and not a rule: which lowering of a spike product is cheapest depends on the whole network (a product
moved off the neurocores frees cores, but the chips, the pipeline depth and the step time are the network's). The
search prices whole networks only, with the same :func:`~snn_deploy.sims.hardware.mapper.map_graph` and
:func:`~snn_deploy.sims.hardware.cost.hardware_cost` every report uses:

1. every single lowering of :data:`~snn_deploy.graph.hardware.PRODUCT_MODELS`, for all products at once; the best
   is the starting point (so ``auto`` is never worse than the best single lowering on its objective);
2. then, product by product, every other lowering for that product alone, kept where it lowers the objective;
   repeated until a pass changes nothing.

Objectives (:data:`OBJECTIVES`): ``cores`` (the mapper's cores; ties: chips, then energy), ``latency`` (one
inference on its own, ns, from the cost model; ties: cores), ``energy`` (dynamic + static per inference, pJ; ties:
cores). A mapping with violations is never chosen over one without. Lowerings whose figures leave work out
(``embedded``: the x86 cores' time and energy are not modelled) are chosen for ``latency`` or ``energy`` only where
no complete lowering is left (their figures are lower bounds: they would win by leaving work out); for ``cores``
they compete on equal terms (their cores are counted in full). The choice records it (:attr:`Choice.partial`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snn_deploy.graph import Activity, Graph, HardwareProfile
from snn_deploy.graph.hardware import PRODUCT_MODELS, product_choices, products_text
from snn_deploy.graph.nodes import ATTENTION_LOWERINGS
from snn_deploy.sims.hardware.cost import HardwareCost, hardware_cost
from snn_deploy.sims.hardware.mapper import Mapping, map_graph
from snn_deploy.sims.hardware.stated_activity import stated_activity

OBJECTIVES = ("cores", "latency", "energy")
MAX_PASSES = 4


@dataclass(frozen=True)
class Priced:
    """One whole-network lowering with its figures."""

    products: str
    cores: int
    chips: int
    latency_ns: float
    energy_pj: float
    violations: int
    partial: bool

    def key(self, objective: str) -> tuple:
        """What ``objective`` minimises, violations first."""
        main = {"cores": (self.cores, self.chips, self.energy_pj),
                "latency": (self.latency_ns, self.cores),
                "energy": (self.energy_pj, self.cores)}[objective]
        return (self.violations > 0, self.partial and objective != "cores", *main)


@dataclass
class Choice:
    """What ``auto`` chose: the lowering of every spike product, its figures and everything it priced."""

    objective: str
    choices: dict[str, str]
    priced: Priced
    tried: list[Priced] = field(default_factory=list)

    @property
    def products(self) -> str:
        """The ``products`` text of the choice (what the manifest records)."""
        return products_text(self.choices)

    @property
    def partial(self) -> bool:
        return self.priced.partial

    def manifest(self) -> dict:
        """The manifest's record of the choice."""
        return {"attention": "auto", "optimize": self.objective, "products": self.choices,
                "objective_value": {"cores": self.priced.cores, "latency_ns": self.priced.latency_ns,
                                    "energy_pj": self.priced.energy_pj}[
                    {"cores": "cores", "latency": "latency_ns", "energy": "energy_pj"}[self.objective]],
                "partial": self.partial}


def price(graph: Graph, profile: HardwareProfile, activity: Activity, products: str,
          mapped: tuple[Mapping, HardwareCost] | None = None) -> Priced:
    """The figures of ``graph`` with ``products`` lowered as named (``mapped``: already mapped and costed)."""
    mapping, cost = mapped or _map_and_cost(graph, profile, activity, products)
    return Priced(products, len(mapping.cores), mapping.chips, cost.latency_ns, cost.energy_total_pj,
                  len(mapping.violations), cost.embedded_accumulates is not None)


def _map_and_cost(graph: Graph, profile: HardwareProfile, activity: Activity, products: str):
    mapping = map_graph(graph, profile, products=products)
    return mapping, hardware_cost(graph, mapping, activity)


def choose(graph: Graph, profile: HardwareProfile, activity: Activity, objective: str,
           lowerings: tuple[str, ...] = PRODUCT_MODELS, known: dict[str, Priced] | None = None) -> Choice:
    """The per-product lowering that minimises ``objective`` (module docstring); ``known``: whole networks
    already priced, by ``products`` text (e.g. the single lowerings a table has costed), reused and extended."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    tried: dict[str, Priced] = {} if known is None else known

    def priced(choices: dict[str, str]) -> Priced:
        text = products_text(choices)
        if text not in tried:
            tried[text] = price(graph, profile, activity, text)
        return tried[text]

    names = list(product_choices(graph, lowerings[0]))
    singles = [dict.fromkeys(names, low) for low in lowerings]
    best = min(singles, key=lambda c: priced(c).key(objective))
    for _ in range(MAX_PASSES if len(names) > 1 else 0):
        changed = False
        for name in names:
            for low in lowerings:
                if low == best[name]:
                    continue
                trial = {**best, name: low}
                if priced(trial).key(objective) < priced(best).key(objective):
                    best, changed = trial, True
        if not changed:
            break
    return Choice(objective, best, priced(best), list(tried.values()))


EXPORT_RATE = 0.1
"""The stated firing rate ``export --attention auto`` prices lowerings at (no data set is run at export: the
benchmark's rate, :mod:`~snn_deploy.sims.hardware.stated_activity`)."""


class AutoAttention:
    """``export --attention auto --optimize OBJECTIVE``: called with the lowered graph and the target, chooses among
    the chip lowerings (:data:`~snn_deploy.graph.nodes.ATTENTION_LOWERINGS`: what a bundle can record and Lava can
    build; not ``embedded``) at a stated firing rate, and keeps what it chose for the manifest (:attr:`record`)."""

    def __init__(self, objective: str, rate: float = EXPORT_RATE):
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        self.objective, self.rate = objective, rate
        self.choice: Choice | None = None

    def __call__(self, graph: Graph, profile: HardwareProfile) -> str:
        self.choice = choose(graph, profile, stated_activity(graph, self.rate), self.objective, ATTENTION_LOWERINGS)
        return self.choice.products

    @property
    def record(self) -> dict | None:
        """The manifest's ``attention_auto``: objective, per-product lowering, the objective's value, the rate."""
        if self.choice is None:
            return None
        return {**self.choice.manifest(), "activity": f"stated rate {self.rate}",
                "tried": len(self.choice.tried)}

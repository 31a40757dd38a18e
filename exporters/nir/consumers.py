"""What each third-party NIR importer lacks for a given file, so that a failure names its reason.

The importers fail on snn-deploy's whole Spikformer / QKFormer files with messages that do not say why (snnTorch:
"Unknown node type Scale"; Norse: a bare ``KeyError`` of a node name). :func:`lacks` lists, per importer, the node
types its node map does not handle and the parameters it ignores or refuses, read from each pinned version's source
(the ``node_map`` of ``snntorch/import_nir.py``, ``_import_norse_module`` of ``norse/torch/utils/import_nir.py``,
``_NodeMapper`` of ``spikingjelly/activation_based/nir_exchange/from_nir.py``, ``_import_sinabs_module`` of
``sinabs/nir.py``, ``_convert_nir_to_rockpool_torch`` of ``rockpool/nn/modules/torch/nir.py``; nirtorch 2.6 adds
``SumPool2d`` as ``LPPool2d``, which ignores padding). :func:`load` checks first and then calls the importer, so a
user gets one line instead of a traceback. ``benchmarks/nir_consumers.py`` measures every importer on real files
and ``tests/test_nir_consumers.py`` checks that :func:`lacks` predicts what each installed importer does.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import nir
import numpy as np

from snn_deploy.errors import UserError
from snn_deploy.exporters.nir.io import DT

RUN_WHOLE = ("run the whole file with snn_deploy.exporters.nir.executor.Executor (neurons='snntorch', 'norse' or "
             "'spikingjelly' computes the neurons with that framework's own NIR node map)")


def _snntorch(ir: nir.NIRGraph):
    from snntorch.import_nir import import_from_nir
    return import_from_nir(ir)


def _norse(ir: nir.NIRGraph):
    import norse.torch
    return norse.torch.from_nir(ir, dt=DT, ignore_warnings=True)


def _spikingjelly(ir: nir.NIRGraph):
    from spikingjelly.activation_based.nir_exchange import from_nir
    return from_nir.import_from_nir(ir, dt=DT)


def _sinabs(ir: nir.NIRGraph):
    from sinabs import from_nir
    return from_nir(ir, batch_size=1)


def _rockpool(ir: nir.NIRGraph):
    from rockpool.nn.modules.torch.nir import from_nir
    return from_nir(ir)


@dataclass(frozen=True)
class Importer:
    """A framework's NIR importer and the node types its node map handles (with nirtorch's defaults where it uses
    them). Every one that maps SumPool2d ignores its padding (nirtorch's and Norse's ``LPPool2d``, Sinabs'
    ``SumPool2d``)."""

    label: str
    module: str
    maps: tuple[type, ...]
    load: Callable[[nir.NIRGraph], object]
    uniform_threshold: bool = False
    """Whether every neuron of a node must share one threshold (snnTorch, SpikingJelly)."""


_IO = (nir.Input, nir.Output)
IMPORTERS: dict[str, Importer] = {
    "snntorch": Importer("snnTorch 1.0.0", "snntorch", _IO + (
        nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d, nir.Flatten, nir.AvgPool2d, nir.SumPool2d, nir.IF, nir.LIF,
        nir.CubaLIF), _snntorch, uniform_threshold=True),
    "norse": Importer("Norse 1.1.0", "norse", _IO + (
        nir.Affine, nir.Conv2d, nir.Flatten, nir.Linear, nir.IF, nir.CubaLIF, nir.LIF, nir.SumPool2d), _norse),
    "spikingjelly": Importer("SpikingJelly 2.0.0", "spikingjelly", _IO + (
        nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d, nir.AvgPool2d, nir.SumPool2d, nir.Flatten, nir.IF, nir.LIF,
        nir.CubaLIF), _spikingjelly, uniform_threshold=True),
    "sinabs": Importer("Sinabs 3.1.3", "sinabs", _IO + (
        nir.Affine, nir.Conv1d, nir.Conv2d, nir.LI, nir.IF, nir.LIF, nir.SumPool2d, nir.Flatten), _sinabs),
    "rockpool": Importer("Rockpool 3.1.0", "rockpool", _IO + (nir.LI, nir.LIF, nir.CubaLIF, nir.Linear, nir.Affine),
                         _rockpool),
}
WHAT = {"Scale": "residual sums", "Delay": "the snn_deploy.spike_product extension (SSA's q k^T v)",
        "SumPool2d": "spike max-pools and the readout's token sum", "CubaLIF": "every LIF population",
        "Conv2d": "every synapse layer"}


def lacks(ir: nir.NIRGraph, tool: str) -> list[str]:
    """What ``tool``'s importer lacks to run ``ir`` as written (empty: it maps every node and parameter)."""
    importer = IMPORTERS[tool]
    missing = Counter(type(n).__name__ for n in ir.nodes.values() if not isinstance(n, importer.maps))
    reasons = [f"no {name} ({count} node{'s' * (count > 1)}: {WHAT.get(name, 'a standard node')})"
               for name, count in sorted(missing.items())]
    if nir.SumPool2d in importer.maps:  # every one of them maps it to a pool without padding
        padded = [k for k, n in ir.nodes.items() if isinstance(n, nir.SumPool2d) and np.any(np.asarray(n.padding))]
        if padded:
            reasons.append(f"SumPool2d padding is ignored ({len(padded)} padded pool(s) get the wrong output size)")
    if importer.uniform_threshold:
        mixed = [k for k, n in ir.nodes.items() if isinstance(n, nir.CubaLIF) and np.unique(n.v_threshold).size > 1]
        if mixed:
            reasons.append(f"per-neuron thresholds are refused ({len(mixed)} nodes)")
    return reasons


def load(ir: nir.NIRGraph, tool: str):
    """``tool``'s own NIR import of ``ir``; a :class:`UserError` naming what it lacks where :func:`lacks` finds
    something, or where the importer itself fails."""
    importer = IMPORTERS[tool]
    reasons = lacks(ir, tool)
    if reasons:
        raise UserError(f"{importer.label} cannot import this NIR file: {'; '.join(reasons)}; {RUN_WHOLE}")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # importers print progress and warnings
            return importer.load(ir)
    except ImportError as exc:
        raise UserError(f"{importer.label} is not installed ({exc})") from None
    except Exception as exc:  # the importers raise bare KeyError / ValueError / AssertionError
        raise UserError(f"{importer.label} failed to import this NIR file ({type(exc).__name__}: {exc}); "
                        f"{RUN_WHOLE}") from None

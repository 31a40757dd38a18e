"""``nir_consumers.lacks`` predicts what every installed third-party NIR importer does with our files.

Files: the standard-node chain of ``test_nir_interop`` (Conv2d -> CubaLIF units and a readout) and a whole
exported QKFormer (residual ``Scale`` sums, spike max-pools with padding, the spike-product extension). Where
:func:`lacks` finds nothing the importer must load the file; where it finds something the importer must fail
(or, for padding, load a different network), and ``nir_consumers.load`` must say why in one line.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings

import pytest

from export_testing import quantized
from snn_deploy.errors import UserError
from snn_deploy.exporters.nir import consumers as nir_consumers
from snn_deploy.exporters.nir import io as nir_io
from snn_deploy.exporters.frontends.zoo import lower
from test_nir_interop import standard_chain


@pytest.fixture(scope="module")
def files():
    return {"chain": nir_io.to_nir(standard_chain(steps=4)),
            "qkformer": nir_io.to_nir(lower(quantized("qkformer-tiny-8x8")))}


def _raw_import(tool: str, ir) -> Exception | None:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            nir_consumers.IMPORTERS[tool].load(ir)
        except Exception as exc:  # what the importer raises is its own business: KeyError, ValueError, ...
            return exc
        finally:
            logging.disable(logging.NOTSET)
    return None


@pytest.mark.parametrize("tool", sorted(nir_consumers.IMPORTERS))
def test_lacks_predicts_the_importer(files, tool):
    importer = nir_consumers.IMPORTERS[tool]
    if importlib.util.find_spec(importer.module) is None:
        pytest.skip(f"{importer.label} is not installed")
    for name, ir in files.items():
        reasons = nir_consumers.lacks(ir, tool)
        error = _raw_import(tool, ir)
        print(f"\n{importer.label} on {name}: {'loads' if error is None else type(error).__name__}; lacks {reasons}")
        if any("Scale" in r or "Delay" in r or "no CubaLIF" in r or "no Conv2d" in r for r in reasons):
            assert error is not None, f"{tool} loaded {name} although it lacks {reasons}"
        if not reasons:
            assert error is None, f"{tool} failed on {name}: {error!r}"
            continue
        with pytest.raises(UserError) as refused:
            nir_consumers.load(ir, tool)
        message = str(refused.value)
        assert "\n" not in message and importer.label in message and "nir.executor" in message


def test_the_whole_file_lacks_sums_and_the_extension_everywhere(files):
    for tool in nir_consumers.IMPORTERS:
        reasons = " ".join(nir_consumers.lacks(files["qkformer"], tool))
        assert "no Scale" in reasons and "no Delay" in reasons, tool
    assert not nir_consumers.lacks(files["chain"], "snntorch")

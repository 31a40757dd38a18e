"""The Loihi bundle: a directory holding everything downstream tools need, and nothing from the torch model.

Layout (format ``snn-deploy-bundle``, version :data:`BUNDLE_VERSION`)::

    network.nir         the deployed graph (NIR + exact integers in metadata, see exporters/nir_io.py)
    quantization.json   per-layer quantization choices, clipping and overflow risks (schema_version)
    manifest.json       format, versions, target, T, input encoding and what the chip receives (the layers the
                        host computes), pipeline latency, sizes, sha256 of each file

A bundle is written into a temporary sibling directory and renamed into place, so a failed export leaves
nothing behind; an existing output is replaced only with ``force``.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snn_deploy import __version__
from snn_deploy.errors import UserError
from snn_deploy.exporters.nir import io as nir_io
from snn_deploy.exporters.formats.bundle_check import (
    check_files, check_graph, check_manifest, check_nir_sizes, read_manifest,
)
from snn_deploy.fixedpoint import limits as L
from snn_deploy.graph import (
    DEFAULT_PROFILE, ConvNode, Graph, HardwareProfile, InputNode, LIFNode, ReadoutNode, SpikeProductNode,
    current_bounds, profile,
)
from snn_deploy.io import atomic_directory, sha256_file as sha256, write_json_atomic

BUNDLE_FORMAT = "snn-deploy-bundle"
BUNDLE_VERSION = 1
NETWORK_FILE, QUANT_FILE, MANIFEST_FILE = "network.nir", "quantization.json", "manifest.json"
LIBRARIES = ("torch", "numpy", "nir", "lava-nc", "lava-dl", "onnx", "onnxruntime")


def risk_report(graph: Graph, target: HardwareProfile) -> list[dict[str, Any]]:
    """Per LIF: worst-case input current against Lava's exact range and the target's input register."""
    hw = (1 << (target.input_current_bits - 1)) - 1
    rows = []
    for name, worst in current_bounds(graph).items():
        rows.append({"neuron": name, "worst_case_current": worst,
                     "exceeds_hardware_register": worst > hw, "exceeds_exact_range": worst > L.A_IN_RANGE[1]})
    return rows


def library_versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out


def host_outputs(graph: Graph) -> list[str]:
    """What the host sends the chip, in graph order: the input node and the host LIFs that chip nodes read."""
    off_chip = graph.host | {graph.input.name}
    read = {i for n in graph.nodes if n.name not in graph.host and not isinstance(n, ReadoutNode) for i in n.inputs}
    return [n.name for n in graph.nodes if n.name in off_chip & read]


def _received(inp: InputNode, name: str) -> str:
    if name != inp.name:
        return "binary spikes"
    return "graded payloads" if inp.drive == "current" else "bias mantissas of its layer (not sent as spikes)"


def manifest(graph: Graph, target: HardwareProfile, files: dict[str, str], extra: dict[str, Any]) -> dict[str, Any]:
    depths = graph.depths()
    inp = graph.input
    lifs = graph.of_kind(LIFNode)
    return {
        "format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION, "tool": "snn-deploy", "tool_version": __version__,
        "libraries": library_versions(), "target": target.name, "T": graph.T,
        "input": {"shape": list(inp.shape), "encoding": "graded integer payload = clip(round(x * scale))",
                  "scale": inp.scale, "payload_bits": inp.payload_bits, "signed": inp.signed, "drive": inp.drive,
                  "repeated_every_step": True,
                  "host_layers": [n.name for n in graph.nodes if n.name in graph.host],
                  "chip_receives": {name: _received(inp, name) for name in host_outputs(graph)}},
        "reset_interval": graph.reset_interval, "reset_offset": graph.reset_offset,
        "pipeline_fill": graph.pipeline_fill, "pipeline_latency_steps": max(depths.values()),
        "attention": graph.attention,
        "nodes": len(graph.nodes), "neurons": int(sum(n.neurons for n in lifs)),
        "synapses": int(sum(n.synapses for n in graph.of_kind(ConvNode))),
        "required_extensions": nir_io.required_extensions(graph),
        "files": files, **extra,
    }


def write_bundle(graph: Graph, out: Path, *, target: HardwareProfile, quantization: dict[str, Any],
                 extra: dict[str, Any], force: bool = False) -> Path:
    """Write the bundle directory ``out`` atomically (see the module docstring)."""
    with atomic_directory(out, force=force) as tmp:
        nir_io.write(graph, tmp / NETWORK_FILE)
        quant = dict(quantization, current_risks=risk_report(graph, target))
        write_json_atomic(tmp / QUANT_FILE, quant)
        files = {name: sha256(tmp / name) for name in (NETWORK_FILE, QUANT_FILE)}
        write_json_atomic(tmp / MANIFEST_FILE, manifest(graph, target, files, extra))
    return out


LEGACY_TARGETS = {"loihi": "loihi1"}
"""Manifest targets of older bundles, by the profile they meant."""


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: the graph and the manifest, hashes checked."""

    path: Path
    graph: Graph
    manifest: dict[str, Any]

    @property
    def profile(self) -> HardwareProfile:
        """The hardware profile the bundle was exported for (:data:`~snn_deploy.graph.DEFAULT_PROFILE` where the
        manifest names none; ``loihi``, as bundles written before the profiles were named loihi1 and loihi2 recorded
        Loihi 1, is Loihi 1)."""
        name = self.manifest.get("target", DEFAULT_PROFILE)
        return profile(LEGACY_TARGETS.get(name, name))

    def __repr__(self) -> str:  # the graph's arrays would print megabytes
        return (f"Bundle({str(self.path)!r}, target {self.manifest.get('target')}, {len(self.graph.nodes)} nodes, "
                f"T = {self.graph.T})")


def read_network(path: Path) -> Graph:
    """The graph of a NIR file written by snn-deploy (a bundle's network.nir, or ``export --target nir``): declared
    sizes, node types and metadata checked before anything large is read, then every node and the work it implies
    (:mod:`snn_deploy.exporters.formats.bundle_check`)."""
    check_nir_sizes(path)
    graph = nir_io.read(path)
    check_graph(graph, str(path))
    return graph


def load_bundle(path: Path) -> Bundle:
    """Read a bundle directory, validated by :mod:`snn_deploy.exporters.formats.bundle_check` before anything large is
    read; every problem is a one-line :class:`UserError`."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: not a bundle directory (export one with `snn-deploy export MODEL -o {path}`)")
    data = read_manifest(path, MANIFEST_FILE)
    if data.get("format") != BUNDLE_FORMAT or data.get("format_version") != BUNDLE_VERSION:
        raise UserError(f"{path}: bundle format {data.get('format')!r} version {data.get('format_version')!r} is "
                        f"not {BUNDLE_FORMAT!r} version {BUNDLE_VERSION}; export it again with this snn-deploy")
    check_manifest(path, data, NETWORK_FILE)
    check_files(path, data["files"], MANIFEST_FILE)
    graph = read_network(path / NETWORK_FILE)
    if graph.T != data["T"]:
        raise UserError(f"{path}: manifest T = {data['T']} but the network was exported for T = {graph.T}; the "
                        "bundle is damaged, export it again")
    if data.get("attention", graph.attention) != graph.attention:
        raise UserError(f"{path}: manifest attention {data['attention']!r} but the network records "
                        f"{graph.attention!r}; the bundle is damaged, export it again")
    return Bundle(path, graph, data)

"""The flows the command line and the Python API share, written once: what ``export`` writes for each target
(:data:`EXPORT_TARGETS`) from a model file, a NIR graph or a netx network, where a run's inputs come from and how
many steps it runs (``simulate``, ``report``, ``verify``), which backends verify a model file, a bundle or a netx
network, and how a model file is evaluated. ``snn_deploy.cli`` parses options and prints; ``snn_deploy.api``
takes Python values and returns plain data; both call these functions, so a notebook and a command give the same
numbers and the same errors.

Layer: below the CLI, above ``sims`` (``scripts/check_imports.py``). Imports are inside the functions so that
importing this module (the CLI does at start) costs nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snn_deploy.errors import UserError, lookup

if TYPE_CHECKING:
    import numpy as np
    import torch

    from snn_deploy.exporters.formats.bundle import Bundle
    from snn_deploy.graph import Graph
    from snn_deploy.modelfile import ModelFile
    from snn_deploy.sims.hardware.report import Analysis
    from snn_deploy.sims.runs.verify import VerifyReport
    from snn_deploy.training.runtime import World

ALL_SAMPLES = 2**62
CALIBRATION_SAMPLES = 256
"""Training samples that set a float model's input scale (``quantize``/``export``/``verify --calibrate``)."""


def calibration_inputs(model_file: ModelFile, dataset: str | None, data_dir: str | Path | None):
    """The first :data:`CALIBRATION_SAMPLES` training inputs of ``dataset`` for ``model_file`` (None: none)."""
    if dataset is None:
        return None
    from snn_deploy.data.tensors import dataset_tensors

    return dataset_tensors(model_file.model.config, dataset, "train", CALIBRATION_SAMPLES, data_dir)[0]


# --- export ---------------------------------------------------------------------------------------------------

def _write_nir(graph: Graph, output: Path) -> None:
    from snn_deploy.exporters.nir import io as nir_io
    from snn_deploy.io import atomic_path

    with atomic_path(output) as tmp:
        nir_io.write(graph, tmp)


def _write_onnx(graph: Graph, output: Path) -> None:
    from snn_deploy.exporters.formats.onnx import save_onnx, to_onnx

    save_onnx(to_onnx(graph), output)


def _write_netx(graph: Graph, output: Path) -> None:
    from snn_deploy.exporters.formats.netx import to_netx

    to_netx(graph, output)


@dataclass(frozen=True)
class ExportTarget:
    """One value of ``export --target`` (``sd.export(target=)``)."""

    name: str
    profile: str
    """The hardware profile (:data:`snn_deploy.graph.PROFILES`) the graph is placed on and checked against; the file
    formats carry what Loihi 2 carries (graded spikes)."""
    suffix: str
    """The default output's suffix."""
    writer: Callable[[Graph, Path], None] | None = None
    """Writes the single file; None: a bundle directory."""
    alias_of: str | None = None

    @property
    def bundle(self) -> bool:
        return self.writer is None


EXPORT_TARGETS: dict[str, ExportTarget] = {t.name: t for t in (
    ExportTarget("loihi", "loihi2", ".loihi", alias_of="loihi2"),
    ExportTarget("loihi1", "loihi1", ".loihi"),
    ExportTarget("loihi2", "loihi2", ".loihi"),
    ExportTarget("nir", "loihi2", ".nir", _write_nir),
    ExportTarget("onnx", "loihi2", ".onnx", _write_onnx),
    ExportTarget("netx", "loihi2", ".net", _write_netx),
)}
"""Every export target. ``loihi`` is an alias, of ``loihi2``: it names no hardware profile (those are ``loihi1``
and ``loihi2``), so it means one thing wherever it is written."""
BUNDLE_TARGETS = tuple(name for name, t in EXPORT_TARGETS.items() if t.bundle)


def export_target(name: str) -> ExportTarget:
    """The target called ``name``; a :class:`UserError` listing the targets otherwise."""
    return lookup(EXPORT_TARGETS, name, what="export target", listing="snn-deploy export --help")


@dataclass
class Exported:
    """What :func:`export` wrote: the bundle directory or file, the graph in it, and how it was made."""

    path: Path
    graph: Graph
    target: ExportTarget
    source: str
    """``model`` (a snn-deploy model file), ``nir`` or ``netx``."""
    rewrites: dict[str, Any] = field(default_factory=dict)
    """The rewrites applied to a model (name -> record)."""
    host_layers: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    """LIF nodes of an imported NIR graph that never spike on its calibration data (a silent layer deploys, but
    nothing after it receives anything: a sign of a wrong --dt or a scale problem)."""
    calibration_samples: int = 0


def export(model: Path | ModelFile, target: str, output: Path, *, source_record: dict[str, Any] | None = None,
           calibrate: str | None = None, data_dir: str | Path | None = None, rewrites: tuple[str, ...] = (),
           rewrite_eval: str | None = None, eval_samples: int = CALIBRATION_SAMPLES, input_on_host: bool = False,
           force: bool = False, dt: float | None = None, steps: int | None = None, reset: str | None = None,
           reset_interval: int | None = None, attention: str | None = None, optimize: str | None = None
           ) -> Exported:
    """Export ``model`` (a model file or its path, a NIR graph's path, a lava-dl netx file's path) for ``target``
    to ``output`` (whose place the caller has checked). ``source_record`` names the model file in the bundle's
    manifest (default: ``model``'s path and digest). NIR files take ``dt``, ``steps`` and ``reset``; model files
    the ``calibrate`` data set and ``rewrites``, whose accuracy change ``rewrite_eval``'s test split measures
    (``eval_samples`` samples); netx files are integer already and take ``reset_interval`` (``read_netx``).
    ``attention``: the spike products' chip lowering (``coincidence`` by default; recorded in the graph and the
    bundle manifest, read by every later command); ``auto`` chooses per product the lowering that minimises
    ``optimize`` (``cores``, the default, ``latency`` or ``energy``; :mod:`snn_deploy.sims.hardware.auto`), recorded
    as ``attention_auto`` in the manifest."""
    chosen = export_target(target)
    check_attention(attention, also=("auto",))
    if optimize is not None and attention != "auto":
        raise UserError("--optimize chooses what --attention auto minimises; pass --attention auto")
    if attention == "auto":
        from snn_deploy.sims.hardware.auto import AutoAttention

        attention = AutoAttention(optimize or "cores")
    if attention is not None and not chosen.bundle and chosen.name != "nir":
        raise UserError(f"--attention chooses how a Loihi bundle computes spike products; {chosen.name} files do "
                        "not record it (use --target loihi, loihi2 or nir)")
    if isinstance(model, Path) and model.suffix.lower() == ".nir":
        if rewrites or rewrite_eval:
            raise UserError("--rewrite and --eval apply to snn-deploy model files, not to NIR graphs")
        if reset_interval is not None:
            raise UserError("--reset-interval applies to lava-dl netx input files only (NIR input: --reset)")
        return _export_nir(model, chosen, output, calibrate, data_dir, dt, steps, input_on_host, force, reset,
                           attention)
    if dt is not None or steps is not None or reset is not None:
        raise UserError("--dt, --time-steps and --reset apply to NIR input files only")
    from snn_deploy.exporters.frontends.netx import looks_like_netx

    netx = isinstance(model, Path) and looks_like_netx(model)
    if reset_interval is not None and not netx:
        raise UserError("--reset-interval applies to lava-dl netx input files only")
    if netx:
        if calibrate or rewrites or rewrite_eval or input_on_host:
            raise UserError("a netx network is already integer: --calibrate, --rewrite, --eval and "
                            "--input-on-host apply to snn-deploy model files only")
        return _export_netx(model, chosen, output, force, reset_interval, attention)
    return _export_model(model, chosen, output, source_record, calibrate, data_dir, rewrites, rewrite_eval,
                         eval_samples, input_on_host, force, attention)


def check_attention(attention: str | None, also: tuple[str, ...] = ()) -> None:
    """``--attention``: one of the spike-product lowerings (``snn_deploy.graph.ATTENTION_LOWERINGS``) or of
    ``also`` (export's ``auto``), or None."""
    from snn_deploy.graph import ATTENTION_LOWERINGS

    names = (*ATTENTION_LOWERINGS, *also)
    if attention is not None and attention not in names:
        raise UserError(f"--attention {attention!r} is not one of {', '.join(names)} (docs/attention_lowerings.md)")


def _check_placement(target: ExportTarget, input_on_host: bool) -> None:
    if input_on_host and target.name in ("onnx", "netx"):
        raise UserError(f"--input-on-host places layers of a Loihi deployment; {target.name} has no placement (use "
                        "--target loihi, loihi1, loihi2 or nir)")


def _export_model(model: Path | ModelFile, target: ExportTarget, output: Path, source_record: dict[str, Any] | None,
                  calibrate: str | None, data_dir: str | Path | None, rewrites: tuple[str, ...],
                  rewrite_eval: str | None, eval_samples: int, input_on_host: bool, force: bool,
                  attention: str | None = None) -> Exported:
    from snn_deploy.exporters.formats.bundle import sha256
    from snn_deploy.exporters.frontends import model_file as pipeline
    from snn_deploy.graph import profile
    from snn_deploy.modelfile import load_model

    _check_placement(target, input_on_host)
    hw = profile(target.profile)
    model_file = load_model(model) if isinstance(model, Path) else model
    if source_record is None:
        source_record = ({"path": model.name, "sha256": sha256(model)} if isinstance(model, Path)
                         else {"path": None, "sha256": None})
    calibration = calibration_inputs(model_file, calibrate, data_dir)
    evaluate = _test_accuracy(model_file, rewrite_eval, eval_samples, data_dir) if rewrite_eval else None
    if target.bundle:
        path, graph = pipeline.export_bundle(model_file, output, target=hw, calibration=calibration,
                                             rewrites=list(rewrites), force=force, source=source_record,
                                             evaluate=evaluate, input_on_host=input_on_host, attention=attention)
        manifest = json.loads((path / "manifest.json").read_text())
        return Exported(path, graph, target, "model", manifest["rewrites"], manifest["input"]["host_layers"])
    prepared = pipeline.prepare(model_file, calibration=calibration, rewrites=list(rewrites), evaluate=evaluate)
    graph = pipeline.lower_for_target(prepared, hw, input_on_host=input_on_host, attention=attention)
    target.writer(graph, output)
    return Exported(output, graph, target, "model", prepared.rewrites)


def _test_accuracy(model_file: ModelFile, dataset: str, count: int, data_dir: str | Path | None
                   ) -> Callable[[Any], float]:
    """A model's accuracy on the first ``count`` test samples of ``dataset`` (what measures a rewrite)."""
    import torch

    from snn_deploy.data.tensors import dataset_tensors

    x, y = dataset_tensors(model_file.model.config, dataset, "test", count, data_dir)

    def accuracy(model) -> float:
        with torch.no_grad():
            return float((model.eval()(x).argmax(1) == y).double().mean())
    return accuracy


def _export_nir(path: Path, target: ExportTarget, output: Path, calibrate: str | None, data_dir: str | Path | None,
                dt: float | None, steps: int | None, input_on_host: bool, force: bool, reset: str | None,
                attention: str | None = None) -> Exported:
    """A NIR graph: snn-deploy's own files exactly (the bundle's reader and checks), others imported and
    quantized (``calibrate``: the data set whose training inputs set the scale)."""
    from snn_deploy.data.tensors import Input, dataset_tensors
    from snn_deploy.exporters.formats.bundle import read_network, sha256, write_bundle
    from snn_deploy.exporters.frontends.model_file import place_and_check
    from snn_deploy.exporters.nir import importer as nir_import
    from snn_deploy.exporters.nir import io as nir_io
    from snn_deploy.graph import profile
    from snn_deploy.sims.runs.inputs import check_input_size

    _check_placement(target, input_on_host)
    calibration = None
    if nir_io.written_by_snn_deploy_file(path):  # exact integers: the bundle's own reader and checks
        if dt is not None or steps is not None or reset is not None:
            raise UserError("this NIR file was written by snn-deploy: it carries its own integers, T, dt and "
                            "reset; drop --dt, --time-steps and --reset")
        graph, quantization = read_network(path), {"frontend": nir_import.OWN_FRONTEND}
    else:
        ir = nir_import.load(path)
        if calibrate is not None:
            c, h, w = nir_import.input_layout(ir)
            spec = Input(c, h, nir_import.import_steps(ir, steps))
            check_input_size((c, h, w), CALIBRATION_SAMPLES, spec.T, f"--calibrate {calibrate}")
            calibration = dataset_tensors(spec, calibrate, "train", CALIBRATION_SAMPLES, data_dir)[0]
        graph, quantization = nir_import.to_graph(ir, calibration=calibration, dt=dt, steps=steps,
                                                  reset=reset or "zero")
    graph = place_and_check(graph, profile(target.profile), input_on_host=input_on_host, attention=attention)
    if target.bundle:
        extra = {"arch": None, "source_model": {"path": path.name, "sha256": sha256(path), "format": "nir"},
                 "rewrites": {}}
        write_bundle(graph, output, target=profile(target.profile), quantization=quantization, extra=extra,
                     force=force)
        if calibration is not None:
            from snn_deploy.sims.backends.simulator import simulate as run

            counts = run(graph, calibration).spike_counts
            silent = [name for name, per_step in counts.items() if not per_step.any()]
            return Exported(output, graph, target, "nir", silent=silent, calibration_samples=len(calibration))
    else:
        target.writer(graph, output)
    return Exported(output, graph, target, "nir")


def _export_netx(path: Path, target: ExportTarget, output: Path, force: bool, reset_interval: int | None,
                 attention: str | None = None) -> Exported:
    """A lava-dl netx network, imported exactly (``reset_interval``: its state reset; default lava-dl's)."""
    from snn_deploy.exporters.frontends.netx import netx_bundle, read_netx
    from snn_deploy.graph import profile

    graph = read_netx(path, reset_interval=reset_interval)
    if callable(attention):  # auto: a netx network has no spike products to choose for
        attention = "coincidence"
    if attention is not None:  # netx networks have no spike products: recorded, changes nothing
        graph = dataclasses.replace(graph, attention=attention)
    if target.bundle:
        netx_bundle(graph, path, output, target=profile(target.profile), force=force)
    else:
        target.writer(graph, output)
    return Exported(output, graph, target, "netx")


# --- inputs of a run ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Inputs:
    """Where a run's samples come from: a data set's test split, or an input array (a .npy file: one sample, as
    ``--input`` reads it; a numpy array or tensor: a batch, see :func:`snn_deploy.sims.runs.inputs.shaped_input`),
    with optional ``labels`` for an array. ``steps`` (``--time-steps``) runs that many steps instead of the
    bundle's T; ``layout`` is the array's (``chw`` or Lava's ``whc``)."""

    dataset: str | None = None
    array: Path | np.ndarray | torch.Tensor | None = None
    labels: Any = None
    steps: int | None = None
    layout: str = "chw"

    def __post_init__(self) -> None:
        if (self.dataset is None) == (self.array is None):
            raise UserError("give either a data set (--dataset, dataset=) or an input array (--input, inputs=), "
                            "not both or neither")
        if self.labels is not None and self.array is None:
            raise UserError("labels go with an input array; a data set brings its own")

    @property
    def label(self) -> str:
        """How reports name the inputs."""
        if self.dataset is not None:
            return self.dataset
        return f"array {self.array.name}" if isinstance(self.array, Path) else "inputs"

    @property
    def split(self) -> str:
        return "test" if self.dataset is not None else "input"


def run_inputs(graph: Graph, inputs: Inputs, *, samples: int | None = None,
               data_dir: str | Path | None = None) -> tuple[Graph, torch.Tensor, torch.Tensor | None]:
    """(graph, x [steps, N, C, H, W] or [N, C, H, W], labels or None) of a run. The graph's T becomes the steps
    the inputs hold (``--time-steps``, or a per-step array's length): one inference is that long, for every
    backend and for the cost model."""
    import numpy as np
    import torch

    from snn_deploy.exporters.formats.bundle_check import with_steps
    from snn_deploy.sims.runs.driver import bundle_tensors
    from snn_deploy.sims.runs.inputs import array_input, shaped_input

    if samples is not None and samples < 1:
        raise UserError(f"samples must be positive, got {samples}")
    if inputs.steps is not None and inputs.dataset is not None:  # every backend runs these steps (ONNX unrolls T)
        graph = with_steps(graph, inputs.steps)
    if inputs.dataset is not None:
        x, y = bundle_tensors(graph, inputs.dataset, "test", samples or ALL_SAMPLES, data_dir)
        return graph, x, y
    if isinstance(inputs.array, (str, Path)):
        x = array_input(graph, Path(inputs.array), steps=inputs.steps, layout=inputs.layout)
    else:
        data = inputs.array.detach().cpu().numpy() if isinstance(inputs.array, torch.Tensor) else inputs.array
        if not isinstance(data, np.ndarray):
            raise UserError(f"inputs must be a numpy array, a torch tensor or a .npy path, got "
                            f"{type(inputs.array).__name__}")
        x = shaped_input(graph, data, steps=inputs.steps, layout=inputs.layout, batched=True)
    y = None
    if inputs.labels is not None:
        y = torch.as_tensor(np.asarray(inputs.labels), dtype=torch.int64).reshape(-1)
        if y.numel() != x.shape[1]:
            raise UserError(f"{y.numel()} labels for {x.shape[1]} input samples")
    if samples is not None:
        x, y = x[:, :samples], None if y is None else y[:samples]
    if x.shape[0] != graph.T:
        graph = dataclasses.replace(graph, T=int(x.shape[0]))
    return graph, x, y


# --- simulate and report --------------------------------------------------------------------------------------

def simulate(bundle: Bundle, inputs: Inputs, *, backend: str = "sim", samples: int | None = None,
             batch_size: int = 32, data_dir: str | Path | None = None,
             profile: str | None = None, lowerings: bool = False) -> tuple[Analysis, int]:
    """Run ``bundle`` on ``inputs`` (sharded under torchrun) and price it on ``profile`` (default: the bundle's
    target); returns (analysis, rank). Only rank 0 should report. ``lowerings``: also price every other lowering
    of the spike products at the run's activity (the report's "spike-product lowerings" section)."""
    from snn_deploy.graph import profile as hardware_profile
    from snn_deploy.sims.backends import registry as backends
    from snn_deploy.sims.runs.driver import init_shard, run_dataset
    from snn_deploy.sims.hardware.report import analyse

    backends.get(backend, graph_only=True)  # a missing library fails before any data is read
    hw = hardware_profile(profile) if profile else bundle.profile
    graph, x, y = run_inputs(bundle.graph, inputs, samples=samples, data_dir=data_dir)
    shard = init_shard()
    activity = run_dataset(graph, x, y, backend=backend, batch_size=batch_size, shard=shard)
    return analyse(graph, hw, activity, lowerings=lowerings and shard.rank == 0), shard.rank


def report_data(analysis: Analysis, bundle: Bundle, inputs: Inputs) -> dict[str, Any]:
    """``report.json``'s content for a run of ``bundle`` on ``inputs``."""
    from snn_deploy.sims.hardware.report import build

    return build(analysis, bundle, dataset=inputs.label, split=inputs.split)


# --- verify ---------------------------------------------------------------------------------------------------

def verify(model: Path | Bundle | ModelFile, inputs: Inputs, *, backends: str | list[str] | None = None,
           samples: int = 32, calibrate: str | None = None, data_dir: str | Path | None = None,
           reset_interval: int | None = None, per_layer: bool = False, attention: str | None = None) -> VerifyReport:
    """Run the same inputs through every backend named (the first is the reference) and compare every layer's
    spikes. ``model``: a model file (path or loaded; torch, sim, lava, onnx; a data set), a bundle (directory or
    loaded) or a lava-dl netx file (the graph-only backends, and netx for the file; a data set or an array).
    ``reset_interval``: a netx file's state reset (``read_netx``; default lava-dl's: none). The report states the
    reset each backend ran with (:attr:`~snn_deploy.sims.runs.verify.VerifyReport.resets`). ``per_layer``: Lava
    runs one layer at a time, driven by the simulator's recorded spikes (sim before lava). ``attention``: a model
    file's spike-product lowering (``export --attention``); a bundle keeps its own."""
    from snn_deploy.exporters.formats.bundle import Bundle, load_bundle
    from snn_deploy.exporters.formats.bundle_check import with_steps
    from snn_deploy.exporters.frontends.netx import looks_like_netx, read_netx
    from snn_deploy.modelfile import ModelFile
    from snn_deploy.sims.backends import registry
    from snn_deploy.sims.runs.inputs import check_input_size
    from snn_deploy.sims.runs.verify import run_backends

    if isinstance(model, (str, Path)):
        model = Path(model)
        netx = not model.is_dir() and looks_like_netx(model)
        if model.is_dir():
            model = load_bundle(model)
    else:
        netx = False
    if reset_interval is not None and not netx:
        raise UserError("--reset-interval applies to a netx file" + (
            "; a bundle keeps the reset it was exported with" if isinstance(model, Bundle) else ""))
    check_attention(attention)
    if attention is not None and (isinstance(model, Bundle) or netx):
        raise UserError("--attention applies to a model file; a bundle computes its spike products as it was "
                        "exported (export --attention), a netx network has none")
    if isinstance(model, Bundle) or netx:
        default = f"sim,{registry.NETX}" if netx else "sim,onnx"
        allowed = [*registry.names(graph_only=True), *([registry.NETX] if netx else [])]
        chosen = _backend_list(backends or default)
        if len(chosen) < 2 or any(b not in allowed for b in chosen):
            raise UserError(f"--backend for a {'netx network' if netx else 'bundle'} needs two or more of "
                            f"{', '.join(allowed)} (no torch model exists); got {','.join(chosen)!r}")
        graph = read_netx(model, reset_interval=reset_interval) if netx else model.graph
        if inputs.dataset is not None:  # every backend holds the whole run's inputs at once
            graph = with_steps(graph, inputs.steps) if inputs.steps is not None else graph
            check_input_size(graph.input.shape, samples, graph.T, f"--dataset {inputs.dataset}")
        graph, x, y = run_inputs(graph, inputs, samples=samples, data_dir=data_dir)
        return run_backends(model if netx else None, graph, x, y.tolist() if y is not None else None, chosen,
                            per_layer)
    chosen = _backend_list(backends or model_backends())
    if any(b not in registry.names() for b in chosen) or len(chosen) < 2:
        raise UserError(f"--backend needs two or more of {', '.join(registry.names())}; got {','.join(chosen)!r}")
    if registry.NETX in chosen:
        raise UserError("the netx backend runs a netx file: `snn-deploy export MODEL --target netx -o NET.net`, then "
                        "`snn-deploy verify NET.net --backend sim,netx`")
    if inputs.dataset is None:
        raise UserError("verify of a model file runs a data set: pass --dataset (an input array is for netx networks "
                        "and bundles)")
    if inputs.steps is not None:
        raise UserError("verify of a model file runs the model's T steps; --time-steps applies to bundles and netx "
                        "networks")
    from snn_deploy.data.tensors import dataset_tensors
    from snn_deploy.exporters.frontends.model_file import lower_for_target, prepare
    from snn_deploy.graph import DEFAULT_PROFILE, profile
    from snn_deploy.modelfile import load_model

    model_file = model if isinstance(model, ModelFile) else load_model(model)
    prepared = prepare(model_file, calibration=calibration_inputs(model_file, calibrate, data_dir), rewrites=[])
    graph = lower_for_target(prepared, profile(DEFAULT_PROFILE), attention=attention)
    x, y = dataset_tensors(prepared.model.config, inputs.dataset, "test", samples, data_dir)
    return run_backends(prepared.model, graph, x, y.tolist(), chosen, per_layer)


def model_backends() -> list[str]:
    """What verify runs on a model file by default: every backend but netx (which runs a netx file)."""
    from snn_deploy.sims.backends import registry

    return [b for b in registry.names() if b != registry.NETX]


def _backend_list(backends: str | list[str]) -> list[str]:
    names = backends.split(",") if isinstance(backends, str) else list(backends)
    return [b.strip() for b in names if b.strip()]


# --- evaluate -------------------------------------------------------------------------------------------------

EVAL_SCHEMA = 1


def evaluate(model: Path | ModelFile, dataset: str, *, split: str = "test", neuron: str | None = None,
             batch_size: int = 128, threads: int = 1, data_dir: str | Path | None = None,
             world: World) -> dict[str, Any] | None:
    """Accuracy of a model file on a split of ``dataset`` with its own neurons or ``neuron`` (``integer``: the
    model ``export`` deploys); the ``eval --json`` record on the main process, None on the others."""
    import torch

    from snn_deploy.data import info, open_splits
    from snn_deploy.modelfile import ModelFile, load_model
    from snn_deploy.neurons import set_neuron_mode
    from snn_deploy.training.evaluate import deployed, evaluate as score_split
    from snn_deploy.training.modelsetup import check_fits

    if split not in ("test", "train"):
        raise UserError(f"split must be test or train, got {split!r}")
    data = info(dataset)
    loaded = model if isinstance(model, ModelFile) else load_model(Path(model))
    where = Path(model) if isinstance(model, (str, Path)) else Path(loaded.arch or "model")
    mode = neuron or loaded.neuron_mode
    if neuron is None or neuron == loaded.neuron_mode:
        net = loaded.model
    elif neuron == "integer":
        if loaded.neuron_mode == "float":
            raise UserError(f"{where} holds float neurons: quantize it with `snn-deploy quantize --calibrate "
                            "DATASET` first, then evaluate that file")
        net = deployed(loaded.model)
    elif loaded.neuron_mode == "integer":
        raise UserError(f"{where} holds a quantized (integer) model; it cannot change neuron mode")
    else:
        net = set_neuron_mode(loaded.model, neuron)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    splits = open_splits(dataset, size=net.config.img_size, T=net.config.T, data_dir=data_dir)
    check_fits(net, data, len(splits.train.classes), where)
    score = score_split(net.to(world.device), getattr(splits, split), kind=data.kind, batch_size=batch_size,
                        world=world)
    if not world.main:
        return None
    return {"schema_version": EVAL_SCHEMA, "command": "eval", "model_file": str(where), "arch": loaded.arch,
            "dataset": dataset, "split": split, "neuron_mode": mode, "correct": score.correct, "total": score.total,
            "accuracy": score.accuracy, "loss": score.loss}

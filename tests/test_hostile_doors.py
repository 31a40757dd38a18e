"""Hostile inputs through the doors opened after the bundle and model-file doors (issue 20), one test per kind:
outputs on every command (``--json`` and the output rule), config files, lava-dl netx files, standard and own NIR
files, raw ``--input`` arrays and ``--steps``, and interrupts inside the HDF5 writers.

Every case ends with exit 2 (130 / 143 for signals), one ``error:`` line naming what, where and what to do, no
traceback, nothing partial and nothing replaced (``refused`` of test_hostile_inputs). The size-limit cases run in
a fresh process under a 1 GiB address-space cap (``RLIMIT_AS``): a reader that allocated what a file declares
would fail with a MemoryError traceback instead of the one line.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time
import weakref
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest

from snn_deploy.cli import cli
from snn_deploy.exporters.formats.bundle import NETWORK_FILE
from test_hostile_inputs import EXE, PRETRAIN, TRAIN, crafted_bundle, files, invoke, listing, refused, set_meta
from test_netx_import import _cuba, _small_net, _write

__all__ = ["files"]  # the module-scoped fixture (a model file and a bundle), shared with test_hostile_inputs

MEMORY_CAP = 2**30


def capped(args, *fragments: str, watch: tuple[Path, ...] = ()) -> str:
    """``refused`` in a fresh ``snn-deploy`` process whose address space is capped at :data:`MEMORY_CAP`."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    before = listing(*watch)
    run = subprocess.run([EXE, *map(str, args)], preexec_fn=cap, capture_output=True, text=True, timeout=300)
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    assert run.returncode == 2, run.stdout + run.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stdout + run.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert listing(*watch) == before
    return lines[0]


# ------------------------------------------------------------------------- --json and the output rule everywhere


def command_args(name: str, model: Path, bundle: Path, tmp: Path) -> list:
    """The smallest valid invocation of every command (its outputs under ``tmp``)."""
    return {"doctor": ["doctor"], "demo": ["demo", "-o", tmp / "demo"], "models": ["models"],
            "datasets": ["datasets"], "import": ["import", model, "--arch", "qkformer-tiny", "-o", tmp / "i.pt"],
            "quantize": ["quantize", model, "-o", tmp / "q.pt"], "export": ["export", model, "-o", tmp / "e.loihi"],
            "train": ["train", *TRAIN, "-o", tmp / "t.pt"], "pretrain": ["pretrain", *PRETRAIN, "-o", tmp / "p.pt"],
            "eval": ["eval", model, "--dataset", "digits"], "verify": ["verify", model, "--dataset", "digits"],
            "simulate": ["simulate", bundle, "--dataset", "digits"],
            "report": ["report", bundle, "--dataset", "digits", "-o", tmp / "r"]}[name]


def test_every_command_has_json():
    for name, command in cli.commands.items():
        assert "--json" in [o for p in command.params for o in getattr(p, "opts", [])], name


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_commands_bad_json_path_is_one_line_before_any_work(files, tmp_path, name):
    model, bundle = files
    bad = tmp_path / "missing" / "out.json"
    refused([*command_args(name, model, bundle, tmp_path), "--json", bad], "does not exist", str(bad),
            watch=(tmp_path, model.parent, bundle))


@pytest.mark.parametrize("name", ["models", "datasets", "doctor", "eval", "import", "export", "report", "train"])
def test_an_existing_json_file_needs_force(files, tmp_path, name):
    model, bundle = files
    existing = tmp_path / "out.json"
    existing.write_text("precious")
    refused([*command_args(name, model, bundle, tmp_path), "--json", existing], str(existing), "--force",
            watch=(tmp_path,))


@pytest.mark.parametrize("case", ["eval-model", "export-model", "simulate-manifest", "export-inside-output",
                                  "report-inside-output"])
def test_json_never_replaces_an_input_or_another_output(files, tmp_path, case):
    model, bundle = files
    args, json_path, fragment = {
        "eval-model": (command_args("eval", model, bundle, tmp_path), model, "would overwrite the input"),
        "export-model": (command_args("export", model, bundle, tmp_path), model, "would overwrite the input"),
        "simulate-manifest": (command_args("simulate", model, bundle, tmp_path), bundle / "manifest.json",
                              "would overwrite the input"),
        "export-inside-output": (command_args("export", model, bundle, tmp_path), tmp_path / "e.loihi" / "x.json",
                                 "overlap"),
        "report-inside-output": (command_args("report", model, bundle, tmp_path), tmp_path / "r", "overlap"),
    }[case]
    refused([*args, "--json", json_path, "--force"], fragment, watch=(tmp_path, model.parent, bundle))


def test_json_to_a_directory_and_unsearchable_paths_are_one_line(tmp_path, monkeypatch):
    refused(["models", "--json", tmp_path], "is a directory", watch=(tmp_path,))
    locked = tmp_path / "locked"
    real_stat = Path.stat

    def stat(self, *args, **kwargs):  # a directory this user may not search (as root, chmod cannot show it)
        if str(self).startswith(str(locked)):
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    refused(["models", "--json", locked / "sub" / "x.json"], "Permission denied", "choose an output",
            watch=(tmp_path,))


@pytest.mark.parametrize("error, fragment", [(PermissionError(13, "Permission denied", "/srv/x.pt"),
                                               "cannot access /srv/x.pt: Permission denied"),
                                              (MemoryError("Unable to allocate 477. GiB"), "not enough memory")])
def test_what_escapes_the_checks_is_still_one_line(monkeypatch, error, fragment):
    from snn_deploy.cli import zoo

    def fail(name):
        raise error

    monkeypatch.setattr(zoo, "spec_row", fail)
    refused(["models"], fragment)


def test_json_on_stdout_is_the_only_stdout(files, tmp_path):
    status, out, err = invoke("models", "--json")
    assert status == 0 and isinstance(json.loads(out), list)
    model, _ = files
    status, out, err = invoke("export", model, "--target", "nir", "-o", tmp_path / "m.nir", "--json", "-")
    assert status == 0, err
    record = json.loads(out)
    assert record["command"] == "export" and record["output"] == str(tmp_path / "m.nir") and record["nodes"] > 0


# ---------------------------------------------------------------------------------------------------- config files


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("name, text, fragment", [
    ("list.toml", 'model = ["qkformer-tiny"]\n', 'model = ["qkformer-tiny"] is not a string'),
    ("table.toml", "[model]\nname = 1\n", "is not a string"),
    ("output.toml", "output = 5\n", "output = 5 is not a string"),
    ("fraction.toml", "epochs = 1.5\n", "epochs = 1.5 is not an integer"),
    ("bool.toml", "epochs = true\n", "epochs = true is not an integer"),
    ("number-flag.toml", "augment = 1\n", "augment = 1 is not true or false"),
    ("bool-float.yaml", "lr: true\n", "lr = true is not a number"),
    ("syntax.toml", "epochs = \n", "not valid TOML"),
    ("syntax.yaml", "epochs: [1\n  x: 2\n", "line 2, column 4"),
    ("python.yaml", "epochs: !!python/object/apply:os.system [echo hi]\n", "not valid YAML"),
    ("latin1.toml", b"model = \"caf\xe9\"\n", "not UTF-8"),
    ("huge.toml", "# " + "x" * (1 << 20) + "\n", "larger than"),
    ("laughs.yaml", BILLION_LAUGHS, "YAML aliases"),
])
def test_config_files_are_typed_and_every_error_is_one_line(tmp_path, name, text, fragment):
    config = tmp_path / name
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    line = refused(["train", "--config", config, "--model", "qkformer-tiny-8x8", "--dataset", "digits", "-o",
                    tmp_path / "m.pt", "--print-config"], fragment, str(config), watch=(tmp_path,))
    assert "--config" in line


def test_valid_config_values_still_work(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("epochs: 2\nlr: 1\naugment: false\nmodel: qkformer-tiny-8x8\n")
    status, out, err = invoke("train", "--config", config, "--dataset", "digits", "-o", tmp_path / "m.pt",
                              "--print-config")
    assert status == 0, err
    assert "epochs = 2" in out and "lr = 1.0" in out and "augment = false" in out


# ------------------------------------------------------------------------------------------------ lava-dl netx


NETX_EDITS = {
    "wrapping-shape": (lambda f: f["layer/0"].__delitem__("shape") or f["layer/0"].create_dataset(
        "shape", data=np.array([2**32, 2**32, 1])), "more than"),
    "huge-T": (lambda f: f.attrs.__setitem__("T", 10**12), "must lie in 1..100000"),
    "infinite-T": (lambda f: f.attrs.__setitem__("T", np.inf), "not an integer"),
    "zero-tSample": (lambda f: f.create_dataset("simulation/tSample", data=0), "must lie in 1.."),
    "weight-1e30": (lambda f: f["layer/1/weight"].__setitem__((0, 0, 0, 0), 1e30), "beyond +-2^53"),
    "nan-weight": (lambda f: f["layer/3/weight"].__setitem__((0, 0), np.nan), "NaN or infinite"),
    "neuron-range": (lambda f: f["layer/1/neuron/vThMant"].__setitem__((), 1 << 20), "vThMant"),
}


@pytest.mark.parametrize("case", sorted(NETX_EDITS))
def test_crafted_netx_files_are_one_line(tmp_path, case):
    edit, fragment = NETX_EDITS[case]
    layers = _small_net()
    layers[1]["weight"] = np.ones((3, 2, 3, 3), np.float64)  # float weights, as lava-dl writes them
    layers[3]["weight"] = layers[3]["weight"].astype(np.float64)
    path = _write(tmp_path / "net.net", layers)
    with h5py.File(path, "r+") as f:
        edit(f)
    for command in (["export", path, "-o", tmp_path / "out.loihi"], ["verify", path, "--input", tmp_path / "x.npy"]):
        refused(command, fragment, str(path), watch=(tmp_path,))


def test_onnx_export_of_a_long_netx_network_is_refused_before_unrolling(tmp_path):
    path = _write(tmp_path / "net.net", _small_net())
    with h5py.File(path, "r+") as f:
        f.attrs["T"] = 100_000  # within the step limit: every other backend runs it step by step
    refused(["export", path, "--target", "onnx", "-o", tmp_path / "net.onnx"], "ONNX export unrolls",
            "another backend", watch=(tmp_path,))


def _netx_bundle(tmp_path: Path) -> Path:
    layers = _small_net()
    layers[0]["neuron"] = _cuba()  # a bias-driven input: the array holds the integers themselves (scale 1)
    out = tmp_path / "net.loihi"
    assert invoke("export", _write(tmp_path / "net.net", layers), "-o", out)[0] == 0
    return out


def test_arrays_that_cannot_be_an_input_are_one_line(files, tmp_path):
    _, bundle = files
    np.save(tmp_path / "empty.npy", np.zeros((0, 1, 16, 16)))
    for command in ("simulate", "verify"):
        refused([command, bundle, "--input", tmp_path / "empty.npy"], "0 steps", watch=(tmp_path,))
    refused(["report", bundle, "--input", tmp_path / "empty.npy", "-o", tmp_path / "r"], "0 steps",
            watch=(tmp_path,))
    netx = _netx_bundle(tmp_path)
    np.save(tmp_path / "frac.npy", np.full((2, 4, 4), 2.5))
    refused(["simulate", netx, "--input", tmp_path / "frac.npy"], "fractional values", watch=(tmp_path,))
    np.save(tmp_path / "whole.npy", np.full((2, 4, 4), 2.0))
    assert invoke("simulate", netx, "--input", tmp_path / "whole.npy")[0] == 0
    np.save(tmp_path / "held.npy", np.zeros((1, 16, 16)))
    refused(["simulate", bundle, "--input", tmp_path / "held.npy", "--time-steps", "100001"], "--time-steps",
            "1..100000", watch=(tmp_path,))


# ------------------------------------------------------------------------- NIR: snn-deploy's own and standard


OWN_NIR_EDITS = {
    "T-zero": (lambda f: (f["node/metadata/snn_deploy"].__delitem__("T"),
                          f["node/metadata/snn_deploy"].create_dataset("T", data=0)), "not an integer in 1.."),
    "T-absurd": (lambda f: (f["node/metadata/snn_deploy"].__delitem__("T"),
                            f["node/metadata/snn_deploy"].create_dataset("T", data=10**12)), "not an integer in 1.."),
    "shape": (set_meta("patch_embed1.proj_conv", "shape", np.array([8, 10**9, 16])), "not three integers"),
    "decay": (set_meta("patch_embed1.proj_lif", "du", 99999), "du"),
    "kind": (set_meta("patch_embed1.proj_conv", "kind", "banana"), "unknown snn-deploy kind"),
    "fields": (lambda f: f["node/nodes/patch_embed1.proj_lif/metadata/snn_deploy"].__delitem__("inputs"),
               "damaged snn-deploy metadata"),
}


@pytest.mark.parametrize("case", sorted(OWN_NIR_EDITS))
def test_own_nir_files_imported_as_nir_pass_the_bundle_checks(files, tmp_path, case):
    model, _ = files
    own = tmp_path / "own.nir"
    assert invoke("export", model, "--target", "nir", "-o", own)[0] == 0
    edit, fragment = OWN_NIR_EDITS[case]
    with h5py.File(own, "r+") as f:
        edit(f)
    refused(["export", own, "-o", tmp_path / "out.loihi"], fragment, watch=(tmp_path,))


@pytest.mark.parametrize("extra, fragment", [(["--time-steps", "1000000000"], "steps as an integer in 1..100000"),
                                             (["--time-steps", "0"], "0 is not in the range x>=1"),  # the option's
                                             (["--time-steps", "100000", "--calibrate", "digits"],
                                              "--calibrate digits"),
                                             (["--dt", "nan"], "dt must be a positive number")])
def test_standard_nir_steps_and_dt_are_range_checked_at_import(tmp_path, extra, fragment):
    from test_nir_import import _chain

    nir.write(str(tmp_path / "net.nir"), _chain())
    refused(["export", tmp_path / "net.nir", "-o", tmp_path / "out.loihi", *extra], fragment, watch=(tmp_path,))


def test_a_bundle_with_a_node_type_nir_does_not_know_is_refused(files, tmp_path):
    _, bundle = files

    def banana(f: h5py.File) -> None:
        del f["node/nodes/patch_embed1.proj_conv/type"]
        f["node/nodes/patch_embed1.proj_conv/type"] = b"Banana"

    path = crafted_bundle(bundle, tmp_path / "c.loihi", nir=banana)
    refused(["simulate", path, "--dataset", "digits", "--samples", "2"], "unknown NIR primitive",
            "Banana at node 'patch_embed1.proj_conv'", "export the network again", watch=(tmp_path,))


# --------------------------------------------------------------------- size limits, under a 1 GiB memory cap


def _standard_big_input(path: Path) -> Path:
    one = np.ones((1, 1, 1))
    ir = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([1, 20000, 20000])}),
        "pool": nir.SumPool2d(kernel_size=np.array([20000, 20000]), stride=np.array([20000, 20000]),
                              padding=np.array([0, 0])),
        "lif": nir.LIF(tau=2e-4 * one, r=one, v_leak=0 * one, v_threshold=one, v_reset=0 * one),
        "out": nir.Output(output_type={"output": np.array([1, 1, 1])})},
        edges=[("in", "pool"), ("pool", "lif"), ("lif", "out")], type_check=False)
    nir.write(str(path), ir)
    return path


def _standard_gzip_bomb(path: Path) -> Path:
    from test_nir_import import _chain

    nir.write(str(path), _chain())
    with h5py.File(path, "r+") as f:  # 3.2 GB of float64 zeros in a few kB
        del f["node/nodes/fc/weight"]
        f.create_dataset("node/nodes/fc/weight", shape=(20000, 20000), dtype="f8", chunks=(1000, 1000),
                         compression="gzip", fillvalue=0.0)
    return path


def _netx_dense_bomb(path: Path) -> Path:
    layers = _small_net()
    layers[3]["shape"] = np.array([1 << 16])
    layers[3]["weight"] = np.zeros((1, 12))
    _write(path, layers)
    with h5py.File(path, "r+") as f:  # 2^16 x 12 dense weights are fine; 2^24 + 1 values declared are not
        del f["layer/3/weight"]
        f.create_dataset("layer/3/weight", shape=((1 << 24) + 1,), dtype="i1", chunks=(1 << 20,),
                         compression="gzip", fillvalue=1)
    return path


def _bundle_int8_bomb(bundle: Path, out: Path) -> Path:
    """2e9 int8 values: 2 GB stored (under the 4 GiB limit as stored), 16 GB once widened to int64."""
    return crafted_bundle(bundle, out, nir=lambda f: f.create_dataset(
        "node/nodes/patch_embed1.proj_conv/metadata/snn_deploy/pad", shape=(2 * 10**9,), dtype="i1",
        chunks=(2**22,), compression="gzip", fillvalue=0))


@pytest.mark.parametrize("case", ["nir-input-20000x20000", "nir-gzip-3.2GB", "netx-dense-over-limit",
                                  "bundle-2e9-int8", "yaml-billion-laughs", "verify-steps-1e9",
                                  "simulate-steps-work"])
def test_size_limits_hold_under_a_1_gib_memory_cap(files, tmp_path, case):
    _, bundle = files
    out = tmp_path / "out.loihi"
    if case == "nir-input-20000x20000":
        args, fragment = ["export", _standard_big_input(tmp_path / "big.nir"), "-o", out], "values per sample"
    elif case == "nir-gzip-3.2GB":
        args, fragment = ["export", _standard_gzip_bomb(tmp_path / "bomb.nir"), "-o", out], "declares more than"
    elif case == "netx-dense-over-limit":
        args, fragment = ["export", _netx_dense_bomb(tmp_path / "bomb.net"), "-o", out], "more than"
    elif case == "bundle-2e9-int8":
        args, fragment = ["simulate", _bundle_int8_bomb(bundle, tmp_path / "c.loihi"), "--dataset", "digits"], \
            "declares more than"
    elif case == "yaml-billion-laughs":
        (tmp_path / "laughs.yaml").write_text(BILLION_LAUGHS + "epochs: *i\n")
        args, fragment = ["train", "--config", tmp_path / "laughs.yaml", "--print-config"], "YAML aliases"
    elif case == "verify-steps-1e9":
        args, fragment = ["verify", bundle, "--time-steps", "1000000000", "--dataset", "digits"], "--time-steps"
    else:
        np.save(tmp_path / "held.npy", np.zeros((1, 16, 16)))
        args = ["simulate", bundle, "--input", tmp_path / "held.npy", "--time-steps", "100000"]
        fragment = "--time-steps"
    capped(args, fragment, watch=(tmp_path,))


# ----------------------------------------------------------------------------------------------- interrupts


def test_a_signal_inside_a_garbage_collector_callback_is_delivered_again_not_lost(capfd):
    """A signal that lands in a weakref callback (where h5py's object registry lost it: "Exception ignored", and
    the export went on) stops the command a moment later, without a word on stderr."""
    from snn_deploy.interrupts import Interrupted, signals_as_interrupts

    class Handle:
        pass

    def callback(_ref) -> None:  # run by the interpreter on deallocation: an exception here cannot propagate
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # the handler runs here, inside the callback

    start = time.monotonic()
    with pytest.raises(Interrupted) as info, signals_as_interrupts():
        handle = Handle()
        ref = weakref.ref(handle, callback)
        del handle
        for _ in range(100):
            time.sleep(0.01)
    assert info.value.exit_code == 143 and time.monotonic() - start < 1 and ref() is None
    assert "Exception ignored" not in capfd.readouterr().err
